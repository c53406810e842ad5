"""Tests of the SGD engines' bookkeeping: recording inside the kernels, the
overlaps kept up to date step by step, ``method="auto"``, ``exit=``, and
seeded results pinned to their values before the engines were reworked.

The law of the two engines is tested in ``tests/test_sgd.py``.
"""
import numpy as np
import pytest

import mdlib
from mdlib._random import run_generators
from mdlib.links import Link
from mdlib.sgd import _auto_method, _ChainRun, _FullRun

# ---------------------------------------------------------------- pinned values
#
# Exit times of the exact chain computed on the code before the engines were
# reworked (commit e4b835c), as exact binary floats: the p = 1 exit-time path
# feeds long sweeps and must not move by one bit.

PINNED_EXIT_TIMES = {
    "p1-projected": (dict(p=1, d=3000, gamma=0.1, delta=1e-4), 0.5, "risk", [
        "0x1.1be957336a731p+1", "0x1.39edb51e6dd5dp+1", "0x1.32ce80c699144p+1", "0x1.c248c5ae0fc29p+1",
        "0x1.d00a3d25e4efep+0"]),
    "p1-plain": (dict(p=1, d=500, gamma=0.05, delta=1e-3, spherical=False), 0.5, "risk", [
        "0x1.e3f711342181cp-1", "0x1.250a5312637cdp+0", "0x1.0660ab7c89dc0p-1", "0x1.e1642a3cb911fp-1",
        "0x1.90e488ca2ef5ap-1"]),
    "p1-trained": (dict(p=1, d=500, gamma=0.1, delta=1e-3, train_second_layer=True), 0.5, "max_m", [
        "0x1.03cd940d09f06p+1", "0x1.af217e180d9d8p+1", "0x1.211db228dd001p+0", "0x1.e43f74a54362cp+0",
        "0x1.c4ce53526d4bep+0"]),
    "p1-max_m-noiseless": (dict(p=1, d=1000, gamma=0.1, delta=0.0), 0.3, "max_m", [
        "0x1.52f2d3615e172p+1", "0x1.999853ab250b0p+0", "0x1.9a8f70ea1ad15p+1", "0x1.452d534434325p+1",
        "0x1.6e211974ddae3p+0"]),
    "p3-projected": (dict(p=3, d=200, gamma=0.3, delta=1e-3), 0.3, "risk", [
        "0x1.cb96d01418aa3p-1", "0x1.dc728d6fa0c5cp-1", "0x1.136d0089a1ca1p+0", "0x1.9e8886ba4fbcbp-1",
        "0x1.62018a90104edp-1"]),
    "p3-trained": (dict(p=3, d=200, gamma=0.3, delta=1e-3, train_second_layer=True), 0.3, "max_m", [
        "0x1.d78ed9b88dc3cp-1", "0x1.21dd47097f071p+0", "0x1.21c5083a3cbe7p+0", "0x1.6f33867e14d94p-1",
        "0x1.83166fdebbf4cp-1"]),
    "p20-projected": (dict(p=20, d=1000, gamma=1.0, delta=1e-3), 0.3, "risk", [
        "0x1.5c4dd403bbd8ep-1", "0x1.6b9cc8d118edfp-1", "0x1.86aeab460b7e4p-1", "0x1.6a9c425378839p-1",
        "0x1.c523ed4a29c1ep-1"]),
}


@pytest.mark.parametrize("case", list(PINNED_EXIT_TIMES))
def test_chain_exit_times_are_bitwise_pinned(case):
    kw, T, criterion, hexes = PINNED_EXIT_TIMES[case]
    pb = mdlib.Problem(**kw)
    init = mdlib.random_init(pb, 5, seed=42)
    e = mdlib.sgd_exit_times(pb, init, T, 20.0, method="exact", seed=7, criterion=criterion)
    assert [float(x).hex() for x in e] == hexes


def test_chain_trajectory_is_bitwise_pinned():
    """m and a of recorded chain trajectories did not move either."""
    pb = mdlib.Problem(p=3, d=200, gamma=0.3, delta=1e-3)
    tr = mdlib.simulate_sgd(pb, mdlib.random_init(pb, 3, seed=1), 2.0, method="exact", seed=3)
    assert tr.t.size == 357
    assert [[float(x).hex() for x in r] for r in tr.m[:, -1]] == [
        ["-0x1.ec319edaef598p-1", "-0x1.e70c182c9ff22p-1", "-0x1.d3b551e081186p-1"],
        ["0x1.e7acfceb1c0e7p-1", "-0x1.c451b445a5ac0p-1", "0x1.e8a9d4e8c6342p-1"],
        ["-0x1.dfa7e8e0af136p-1", "-0x1.df3865850b47cp-1", "0x1.305fdb4e7e147p-3"]]
    pb = mdlib.Problem(p=1, d=500, gamma=0.1, delta=1e-3, spherical=False, train_second_layer=True)
    tr = mdlib.simulate_sgd(pb, mdlib.random_init(pb, 3, seed=1), 2.0, method="exact", seed=3)
    assert [float(x).hex() for x in tr.m[:, -1, 0]] == [
        "-0x1.204e5f8f1eb93p+0", "-0x1.01e2229545deep+0", "-0x1.20bd4df007922p+0"]
    assert [float(x).hex() for x in tr.a[:, -1, 0]] == [
        "0x1.7cda67b1d7374p-1", "0x1.802504bea29e4p-1", "0x1.7669cd27ffe3ep-1"]


@pytest.mark.parametrize("link, risk_end, risk_first, q", [
    (None, ["0x1.3317a38edf600p-4", "0x1.00fc31f9c1c30p-4", "0x1.3e8824f5b0570p-4"],
     ["0x1.03bf98339dd93p+0", "0x1.03c1d074b0a70p+0", "0x1.03a373733a146p+0"],
     ["-0x1.bbe1dff953caep-1", "-0x1.ba04c6da2751cp-1", "-0x1.4b784faeccd5dp-5"]),
    (Link.hermite(3, normalized=True), ["0x1.03b1b620c7167p-1", "0x1.022c22e0f7b12p-1", "0x1.03546b129a416p-1"],
     ["0x1.044080bf2a453p-1", "0x1.04516fa3b937dp-1", "0x1.044491c60056ep-1"],
     ["0x1.107f1660a4fc0p-5", "-0x1.07470df5f2a84p-8", "-0x1.6435e1bc9df4ep-5"]),
], ids=["z2", "He3"])
def test_chain_recorded_risk_and_overlaps_are_pinned(link, risk_end, risk_first, q):
    """The risk and Q that the chain records at p = 60 (the overlaps kept by rank-one updates, the
    large-p recomputation at the first save, the risk of Eq. 6 or of the link from them), against
    their values before the kept overlaps were packed into a triangle (e71b262).  They are bitwise
    equal on the development machine; the test allows 1e-12 because the rank-one updates are
    compiled with fused multiply-adds, which another CPU may round differently (the trajectory
    itself never reads these overlaps, so such differences stay at rounding level, while a wrong
    index would be off by O(1))."""
    pb = mdlib.Problem(p=60, d=400, gamma=3.0, delta=1e-4, link=link)
    tr = mdlib.simulate_sgd(pb, mdlib.random_init(pb, 3, seed=0), 2.0, method="exact", seed=1, store_Q=True)

    def close(values, hexes):
        np.testing.assert_allclose(values, [float.fromhex(h) for h in hexes], rtol=1e-12, atol=0)

    close(tr.risk[:, -1], risk_end)
    close(tr.risk[:, 1], risk_first)
    close([tr.Q[0, -1, 59, 0], tr.Q[0, -1, 59, 58], tr.Q[1, 5, 30, 29]], q)
    assert np.array_equal(tr.Q, np.swapaxes(tr.Q, -1, -2))


# ------------------------------------------------------------------ recording

def _grid(n_total):
    """Save steps dense at first (every step), then sparse: both ways of
    keeping the overlaps (step by step, recomputed at the save) get used."""
    return np.unique(np.concatenate([np.arange(0, 40), np.arange(40, n_total + 1, 97), [n_total]]))


RECORDING_CASES = [
    ("exact", dict(p=1, d=300, gamma=0.1, delta=1e-3)),
    ("exact", dict(p=5, d=100, gamma=0.5, delta=1e-3, spherical=False, train_second_layer=True)),
    ("exact", dict(p=40, d=400, gamma=2.0, delta=1e-3)),
    ("exact", dict(p=40, d=400, gamma=1.0, delta=1e-3, train_second_layer=True)),
    ("full", dict(p=1, d=100, gamma=0.1, delta=1e-3)),
    ("full", dict(p=4, d=60, gamma=0.4, delta=1e-3, train_second_layer=True)),
    ("full", dict(p=4, d=60, gamma=0.2, delta=1e-3, spherical=False)),
]


@pytest.mark.parametrize("method, kw", RECORDING_CASES,
                         ids=[f"{m}-p{kw['p']}-{'sph' if kw.get('spherical', True) else 'plain'}"
                              f"{'-trained' if kw.get('train_second_layer') else ''}" for m, kw in RECORDING_CASES])
def test_recorded_values_are_the_state_at_that_step(method, kw):
    """What the kernel writes at a save step is what stepping the same run
    (same generator) to that step and reading its state gives."""
    pb = mdlib.Problem(**kw)
    n_total = 600
    steps = _grid(n_total)
    init = mdlib.random_init(pb, 2, seed=5)
    tr = mdlib.simulate_sgd(pb, init, n_total * pb.dt, method=method, seed=11, t_save=steps * pb.dt)
    np.testing.assert_array_equal(tr.t, steps * pb.dt)
    engine = _ChainRun if method == "exact" else _FullRun
    for r, rng in enumerate(run_generators(11, 2)):
        run = engine(pb, init.coords[r], init.a[r], rng)
        for k, s in enumerate(steps):
            run.advance(int(s) - run.step)
            m, Q, a = run.stats()
            np.testing.assert_array_equal(tr.m[r, k], m)
            np.testing.assert_array_equal(tr.a[r, k], a)
            np.testing.assert_allclose(tr.Q[r, k], Q, rtol=0, atol=1e-13)
            np.testing.assert_allclose(tr.risk[r, k], mdlib.population_risk(m, Q, a, pb.delta), rtol=1e-13)
    # the kernels' risk is population_risk's formula (mdlib.risk._risk)
    np.testing.assert_allclose(tr.risk, mdlib.population_risk(tr.m, tr.Q, tr.a, pb.delta), rtol=1e-14)


def test_recording_without_Q_and_nothing_recorded():
    pb = mdlib.Problem(p=3, d=100, gamma=0.3, delta=1e-3)
    init = mdlib.random_init(pb, 2, seed=0)
    full = mdlib.simulate_sgd(pb, init, 1.0, seed=4)
    noQ = mdlib.simulate_sgd(pb, init, 1.0, seed=4, store_Q=False)
    assert noQ.Q is None
    np.testing.assert_array_equal(noQ.m, full.m)
    np.testing.assert_array_equal(noQ.risk, full.risk)
    empty = mdlib.simulate_sgd(pb, init, 1.0, seed=4, t_save=())
    assert empty.t.shape == (0,) and empty.m.shape == (2, 0, 3) and empty.risk.shape == (2, 0)


def test_population_risk_and_the_kernels_formula_agree():
    rng = np.random.default_rng(0)
    for p in (1, 2, 7, 60):
        m = 0.3 * rng.standard_normal((20, p))
        X = rng.standard_normal((20, p, p + 5))
        Q = X @ X.transpose(0, 2, 1) / (p + 5)
        a = rng.standard_normal((20, p))
        diag = np.diagonal(Q, axis1=1, axis2=2)
        reference = ((0.1 + 3) / 2 - np.sum(a * (diag + 2 * m**2), axis=1) / p
                     + (np.sum(a * diag, axis=1) ** 2 + 2 * np.einsum("rj,rjl,rl->r", a, Q**2, a)) / (2 * p**2))
        np.testing.assert_allclose(mdlib.population_risk(m, Q, a, 0.1), reference, rtol=1e-13)
    assert np.isnan(mdlib.population_risk([np.nan], [[1.0]], [1.0], 0.0))


# ---------------------------------------------- overlaps kept up to date

@pytest.mark.parametrize("kw", [dict(p=6, d=40, gamma=0.6, delta=1e-2),
                                dict(p=6, d=40, gamma=0.3, delta=1e-2, spherical=False, train_second_layer=True)],
                         ids=["projected", "plain-trained"])
def test_full_sgd_overlaps_kept_incrementally_match_W_Wt(kw):
    """The O(p²) update of W_j·W_l (exact given λ_j and |x|²) stays equal to
    W Wᵀ/d, before and after its periodic recomputation (every d steps) and
    through the renormalisations of projected SGD."""
    pb = mdlib.Problem(**kw)
    init = mdlib.random_init(pb, 1, seed=2)
    run = _FullRun(pb, init.coords[0], init.a[0], np.random.default_rng(3))
    saves = (np.array([10**9]), np.zeros((1, pb.p)), np.zeros((1, pb.p)), np.zeros(1), np.zeros((0, pb.p, pb.p)), False)
    for stop in (pb.d - 1, 5 * pb.d + 7, 40 * pb.d):
        assert run.run(stop, saves) == 0
        W = run.W * (np.sqrt(pb.d / run.norms2)[:, None] if pb.spherical else 1.0)
        _, Q, _ = run.stats()
        np.testing.assert_allclose(Q, W @ W.T / pb.d, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(p=12, d=200, gamma=1.0, delta=1e-2),
                                dict(p=12, d=200, gamma=0.5, delta=1e-2, spherical=False, train_second_layer=True)],
                         ids=["projected", "plain-trained"])
def test_chain_overlaps_kept_incrementally_match_the_coordinates(kw):
    """Recording at every step keeps the chain's overlaps by rank-one updates
    (buffered, with the projection's rescalings); they stay equal to C Cᵀ."""
    pb = mdlib.Problem(**kw)
    init = mdlib.random_init(pb, 1, seed=2)
    run = _ChainRun(pb, init.coords[0], init.a[0], np.random.default_rng(3))
    n = 3000
    steps = np.arange(n + 1)
    Q_out = np.zeros((n + 1, pb.p, pb.p))
    saves = (steps, np.zeros((n + 1, pb.p)), np.zeros((n + 1, pb.p)), np.zeros(n + 1), Q_out, True)
    assert run.run(n, saves) == 0
    assert run.pos[2] == 1 and run.pos[3] > 100  # kept step by step for a while (recomputed every 64 (p+1) steps)
    np.testing.assert_allclose(Q_out[-1], run.stats()[1], rtol=0, atol=1e-13)


# --------------------------------------------------------------- method="auto"

def test_auto_picks_the_cheaper_method_and_says_so():
    assert _auto_method(1, 3000) == "exact"
    assert _auto_method(500, 10_000) == "exact"
    # the p = 1 chain beats full SGD even with three coordinates (benchmarks/perf.txt: 103-113 ns
    # against 146 ns per step at (1, 3)); at p = 5 eight coordinates are cheaper to move
    assert _auto_method(1, 3) == "exact"
    assert _auto_method(5, 8) == "full"
    pb = mdlib.Problem(p=2, d=50, gamma=0.1)
    init = mdlib.random_init(pb, 2, seed=0)
    assert mdlib.simulate_sgd(pb, init, 0.5, seed=1).method == "sgd-" + _auto_method(2, 50)
    tiny = mdlib.Problem(p=5, d=8, gamma=0.05)
    assert mdlib.simulate_sgd(tiny, mdlib.random_init(tiny, 2, seed=0), 0.5, seed=1).method == "sgd-full"
    auto = mdlib.simulate_sgd(pb, init, 0.5, seed=1)
    same = mdlib.simulate_sgd(pb, init, 0.5, seed=1, method=auto.method[4:])
    np.testing.assert_array_equal(auto.m, same.m)


# ---------------------------------------------------------------------- exit=

@pytest.mark.parametrize("method", ["exact", "full"])
def test_exit_stops_each_run_and_fills_t_exit(method):
    pb = mdlib.Problem(p=2, d=80, gamma=0.2, delta=1e-3)
    init = mdlib.random_init(pb, 6, seed=3)
    ex = mdlib.Exit(0.3)
    t_save = np.linspace(0, 8, 8001)
    tr = mdlib.simulate_sgd(pb, init, 8.0, method=method, seed=4, t_save=t_save, exit=ex)
    assert tr.exit == ex and tr.t_exit.shape == (6,)
    assert np.all(np.isfinite(tr.t_exit))
    # the same runs as sgd_exit_times, which records nothing
    np.testing.assert_array_equal(tr.t_exit, mdlib.sgd_exit_times(pb, init, 0.3, 8.0, method=method, seed=4))
    for r in range(6):
        before = tr.t <= tr.t_exit[r]
        assert np.all(np.isfinite(tr.risk[r, before])) and np.all(np.isnan(tr.risk[r, ~before]))
        assert np.all(np.isnan(tr.m[r, ~before])) and np.all(np.isnan(tr.Q[r, ~before]))
    # the recorded trajectory up to the exit is the trajectory without exit=
    free = mdlib.simulate_sgd(pb, init, 8.0, method=method, seed=4, t_save=t_save)
    ok = ~np.isnan(tr.risk)
    np.testing.assert_array_equal(tr.m[ok], free.m[ok])
    # and its crossing, read off the saved points, is the exit time
    np.testing.assert_allclose(mdlib.exit_time(free, 0.3), tr.t_exit, atol=2e-3)


def test_exit_time_inf_when_not_exited_and_nan_when_diverged():
    pb = mdlib.Problem(p=1, d=2000, gamma=0.1)
    init = mdlib.random_init(pb, 3, seed=0)
    tr = mdlib.simulate_sgd(pb, init, 0.05, seed=0, t_save=(), exit=mdlib.Exit(0.9))
    assert np.all(np.isinf(tr.t_exit))
    bad = mdlib.Problem(p=2, d=50, gamma=5.0, spherical=False)
    with pytest.warns(RuntimeWarning, match="diverged"):
        tr = mdlib.simulate_sgd(bad, mdlib.random_init(bad, 3, seed=0), 5.0, seed=0, exit=mdlib.Exit(0.99))
    assert np.all(np.isnan(tr.t_exit)) and tr.diverged.all()


def test_exit_reproducible_whatever_the_threads():
    pb = mdlib.Problem(p=3, d=60, gamma=0.3, delta=1e-3, train_second_layer=True)
    init = mdlib.random_init(pb, 5, seed=1)
    runs = [mdlib.simulate_sgd(pb, init, 20.0, seed=2, exit=mdlib.Exit(0.3, "max_m"), n_threads=k) for k in (1, 3)]
    np.testing.assert_array_equal(runs[0].t_exit, runs[1].t_exit)
    np.testing.assert_array_equal(runs[0].m, runs[1].m)


def test_simulate_sgd_argument_checks():
    pb = mdlib.Problem(p=1, d=50, gamma=0.1)
    init = mdlib.random_init(pb, 2, seed=0)
    with pytest.raises(ValueError, match="exit"):
        mdlib.simulate_sgd(pb, init, 1.0, exit=0.5)
    with pytest.raises(ValueError, match="t_save"):
        mdlib.simulate_sgd(pb, init, 1.0, t_save=[0.5, 0.2])
    with pytest.raises(ValueError, match="t_save"):
        mdlib.simulate_sgd(pb, init, 1.0, t_save=[0.5, 2.0])
    with pytest.raises(ValueError, match="check_every"):
        mdlib.simulate_sgd(pb, init, 1.0, exit=mdlib.Exit(0.5), check_every=0)
    with pytest.raises(ValueError, match="method"):
        mdlib.simulate_sgd(pb, init, 1.0, method="chain")
