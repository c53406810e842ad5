"""Tests of Problem/State, the exact chain and full-dimensional SGD.

Distributional checks use fixed seeds, two-sample tests and means compared
with standard errors.  The larger version of the chain-vs-full comparison
(>= 1000 runs per case) is ``benchmarks/chain_vs_full.py``, whose output is
kept in ``benchmarks/chain_vs_full.txt``.
"""
import dataclasses
import warnings

import numpy as np
import pytest
from numba import njit
from scipy import stats

import mdlib
from mdlib.chain import _chisquare, _chisquare_consts
from mdlib.sgd import _ChainRun

# ---------------------------------------------------------------- validation

@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(p=0, d=10, gamma=0.1), "p"),
        (dict(p=1.5, d=10, gamma=0.1), "p"),
        (dict(p=1, d=100.0, gamma=0.1), "d"),
        (dict(p=2, d=3, gamma=0.1), "d"),
        (dict(p=1, d=10, gamma=0.0), "gamma"),
        (dict(p=1, d=10, gamma=-1.0), "gamma"),
        (dict(p=1, d=10, gamma=float("nan")), "gamma"),
        (dict(p=1, d=10, gamma=0.1, delta=-1e-3), "delta"),
        (dict(p=1, d=10, gamma=0.1, spherical="yes"), "spherical"),
        (dict(p=1, d=10, gamma=0.1, train_second_layer=1), "train_second_layer"),
    ],
)
def test_problem_rejects_bad_values_naming_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        mdlib.Problem(**kwargs)


def test_problem_is_immutable_and_time_step():
    pb = mdlib.Problem(p=4, d=1000, gamma=0.2)
    assert pb.dt == pytest.approx(0.2 / 4000)
    assert pb.steps(1.0) == 20000
    with pytest.raises(dataclasses.FrozenInstanceError):
        pb.p = 3


def test_random_init_bad_arguments():
    pb = mdlib.Problem(p=1, d=10, gamma=0.1)
    with pytest.raises(ValueError, match="n_runs"):
        mdlib.random_init(pb, n_runs=-2)
    with pytest.raises(ValueError, match="n_runs"):
        mdlib.random_init(pb, n_runs=2.5)
    with pytest.raises(ValueError, match="a_init"):
        mdlib.random_init(pb, a_init="zeros")


def test_random_init_has_the_exact_finite_d_law():
    """d m_j² follows d·Beta(1/2, (d-1)/2) (projection of a uniform unit
    vector), Q_jl likewise, Q_jj = 1; sqrt(d) m -> N(0, 1) (Eq. 19)."""
    d = 30
    pb = mdlib.Problem(p=3, d=d, gamma=0.1)
    s = mdlib.random_init(pb, 4000, seed=11)
    np.testing.assert_allclose(np.diagonal(s.Q, axis1=1, axis2=2), 1.0, atol=1e-12)
    beta = stats.beta(0.5, (d - 1) / 2)
    assert stats.kstest(s.m[:, 0] ** 2, beta.cdf).pvalue > 0.01
    assert stats.kstest(s.Q[:, 0, 2] ** 2, beta.cdf).pvalue > 0.01
    # symmetric: as many positive as negative overlaps
    assert abs(np.mean(s.m > 0) - 0.5) < 4 * 0.5 / np.sqrt(s.m.size)


def test_random_init_gaussian_weights_when_not_spherical():
    d = 50
    pb = mdlib.Problem(p=2, d=d, gamma=0.1, spherical=False)
    s = mdlib.random_init(pb, 4000, seed=12)
    # |w_j|²/d with w_j ~ N(0, I_d): d Q_jj ~ χ²(d)
    assert stats.kstest(d * s.Q[:, 1, 1], stats.chi2(d).cdf).pvalue > 0.01
    # m_j = w_j·w*/d with |w*| = sqrt(d): sqrt(d) m_j ~ N(0, 1) exactly
    assert stats.kstest(np.sqrt(d) * s.m[:, 0], stats.norm.cdf).pvalue > 0.01


def test_random_init_reproducible_and_bernoulli_second_layer():
    pb = mdlib.Problem(p=5, d=100, gamma=0.1)
    a = mdlib.random_init(pb, 3, seed=7)
    b = mdlib.random_init(pb, 3, seed=7)
    np.testing.assert_array_equal(a.m, b.m)
    s = mdlib.random_init(pb, 200, seed=8, a_init="bernoulli")
    assert set(np.unique(s.a)) == {0.0, 1.0}


def test_make_state_validates_and_reconstructs():
    pb = mdlib.Problem(p=2, d=100, gamma=0.1)
    s = mdlib.make_state(pb, [0.3, -0.1], Q=[[1, 0.2], [0.2, 1]], a=[1.0, 0.5])
    omega = s.coords[0] @ s.coords[0].T
    np.testing.assert_allclose(omega[1:, 0], [0.3, -0.1])
    np.testing.assert_allclose(omega[1:, 1:], [[1, 0.2], [0.2, 1]])
    with pytest.raises(ValueError, match="shape"):
        mdlib.make_state(pb, [0.1])
    with pytest.raises(ValueError, match="semi-definite"):
        mdlib.make_state(pb, [0.9, 0.9], Q=[[1, -0.9], [-0.9, 1]])
    with pytest.raises(ValueError, match="Q_jj"):
        mdlib.make_state(pb, [0.1, 0.1], Q=[[2, 0], [0, 1]])
    # degenerate but valid: a neuron exactly on the teacher, two equal neurons
    s = mdlib.make_state(pb, [1.0, 1.0], Q=[[1, 1], [1, 1]])
    assert np.all(np.isfinite(s.coords))


def test_population_risk_special_cases():
    # p = 1 on the sphere: R = 2 (1 - m²) + Δ/2
    m = np.linspace(-1, 1, 7)[:, None]
    R = mdlib.population_risk(m, np.ones((7, 1, 1)), np.ones((7, 1)), 0.3)
    np.testing.assert_allclose(R, 2 * (1 - m[:, 0] ** 2) + 0.15)
    # at a teacher-student match the risk is Δ/2
    assert mdlib.population_risk([1.0, 1.0], np.ones((2, 2)), [1.0, 1.0], 0.2) == pytest.approx(0.1)


# --------------------------------------------------------- chi-square sampler

@njit
def _draw_chi2(rng, dof, n):
    dd, c = _chisquare_consts(dof)
    out = np.empty(n)
    for i in range(n):
        out[i] = _chisquare(rng, dd, c)
    return out


@pytest.mark.parametrize("dof", [1.0, 2.0, 7.0, 2998.0, 1e7 - 2])
def test_chisquare_sampler_has_the_right_law(dof):
    x = _draw_chi2(np.random.default_rng(3), dof, 20000)
    assert stats.kstest(x, stats.chi2(dof).cdf).pvalue > 0.01


# ------------------------------------------------------- simulation contract

def test_simulate_sgd_bad_input():
    pb = mdlib.Problem(p=2, d=50, gamma=0.1)
    init = mdlib.random_init(pb, 2, seed=0)
    with pytest.raises(ValueError, match="t_max"):
        mdlib.simulate_sgd(pb, init, 0.0)
    with pytest.raises(ValueError, match="method"):
        mdlib.simulate_sgd(pb, init, 1.0, method="fast")
    other = mdlib.random_init(mdlib.Problem(p=3, d=50, gamma=0.1), 2, seed=0)
    with pytest.raises(ValueError, match="p = 3"):
        mdlib.simulate_sgd(pb, other, 1.0)
    with pytest.raises(ValueError, match="init"):
        mdlib.simulate_sgd(pb, np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="T"):
        mdlib.sgd_exit_times(pb, init, 1.5, 1.0)
    with pytest.raises(ValueError, match="criterion"):
        mdlib.sgd_exit_times(pb, init, 0.5, 1.0, criterion="loss")


@pytest.mark.parametrize("method", ["exact", "full"])
def test_bitwise_reproducible_whatever_the_threads(method):
    pb = mdlib.Problem(p=2, d=40, gamma=0.2, delta=0.01, train_second_layer=True)
    init = mdlib.random_init(pb, 4, seed=1)
    a = mdlib.simulate_sgd(pb, init, 0.5, method=method, seed=5, n_threads=1)
    b = mdlib.simulate_sgd(pb, init, 0.5, method=method, seed=5, n_threads=2)
    np.testing.assert_array_equal(a.m, b.m)
    np.testing.assert_array_equal(a.a, b.a)
    c = mdlib.simulate_sgd(pb, init, 0.5, method=method, seed=6)
    assert not np.array_equal(a.m, c.m)
    # a SeedSequence object gives the same streams every time it is passed
    ss = np.random.SeedSequence(5)
    e1 = mdlib.simulate_sgd(pb, init, 0.5, method=method, seed=ss)
    e2 = mdlib.simulate_sgd(pb, init, 0.5, method=method, seed=ss)
    np.testing.assert_array_equal(e1.m, e2.m)


def test_default_threads_are_numbas_count(monkeypatch):
    """With no n_threads (or workers), runs are spread over the cores the process may use, as numba
    counts them: the affinity mask, or the environment variable NUMBA_NUM_THREADS (make test sets 1)."""
    import numba

    from mdlib import sgd

    for n in (1, 3):
        monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", n)
        assert sgd._default_threads() == n
        assert sgd._n_threads(None, 10) == n and sgd._n_threads(None, 2) == min(n, 2)
    assert sgd._n_threads(4, 10) == 4


def test_trajectory_shapes_and_initial_point():
    pb = mdlib.Problem(p=3, d=100, gamma=0.3, delta=0.1)
    init = mdlib.random_init(pb, 2, seed=3)
    tr = mdlib.simulate_sgd(pb, init, 1.0, seed=0)
    assert tr.method == "sgd-exact" and tr.t[0] == 0 and tr.t[-1] == pytest.approx(1.0)
    assert tr.m.shape == (2, tr.t.size, 3) and tr.Q.shape == (2, tr.t.size, 3, 3)
    np.testing.assert_allclose(tr.m[:, 0], init.m, atol=1e-12)
    np.testing.assert_allclose(tr.risk[:, 0], mdlib.population_risk(init.m, init.Q, init.a, 0.1))
    # projected SGD keeps every neuron on the sphere
    np.testing.assert_allclose(np.diagonal(tr.Q, axis1=2, axis2=3), 1.0, atol=1e-12)


def test_exit_times_agree_with_the_saved_trajectory():
    """sgd_exit_times stops each run at its exit; the same RNG stream in
    simulate_sgd gives the same crossing, up to the save-grid resolution."""
    pb = mdlib.Problem(p=1, d=300, gamma=0.1, delta=1e-3)
    init = mdlib.random_init(pb, 6, seed=2)
    t_save = np.linspace(0, 6, 6001)
    tr = mdlib.simulate_sgd(pb, init, 6.0, seed=9, t_save=t_save)
    from_traj = mdlib.exit_time(tr, 0.3)
    direct = mdlib.sgd_exit_times(pb, init, 0.3, 6.0, seed=9)
    assert np.all(np.isfinite(direct))
    np.testing.assert_allclose(direct, from_traj, atol=2e-3)


def test_max_m_exit_times_with_a_trained_second_layer_agree_with_the_saved_trajectory():
    """The App. I criterion on max_j m_j^2 with a trained second layer: the exit read off a saved
    trajectory (linear interpolation on its grid) against the step-exact stop of sgd_exit_times
    (same seed, hence the same runs). The grid can only miss a crossing that is undone before the
    next saved time, so t_traj >= t_exact - spacing always, and typically they agree to one spacing."""
    pb = mdlib.Problem(p=5, d=300, gamma=0.25, delta=1e-4, train_second_layer=True)
    init = mdlib.random_init(pb, 16, seed=3, a_init="bernoulli")
    tr = mdlib.simulate_sgd(pb, init, 3.0, seed=4)
    from_traj = mdlib.exit_time(tr, 0.01, criterion="max_m")
    direct = mdlib.sgd_exit_times(pb, init, 0.01, 3.0, seed=4, criterion="max_m")
    assert np.all(np.isfinite(direct))
    spacing = np.max(np.diff(tr.t[tr.t <= 2 * direct.max()]))
    assert np.all(from_traj >= direct - spacing * (1 + 1e-9))
    assert np.median(np.abs(from_traj - direct)) < spacing


def test_p1_kernel_agrees_with_the_general_kernel():
    """The p = 1 loop and the Givens loop draw the same random numbers and
    must give the same trajectory up to rounding."""
    pb = mdlib.Problem(p=1, d=500, gamma=0.1, delta=0.01, spherical=False, train_second_layer=True)
    init = mdlib.random_init(pb, 1, seed=4)
    fast = _ChainRun(pb, init.coords[0], init.a[0], np.random.default_rng(1))
    slow = _ChainRun(pb, init.coords[0], init.a[0], np.random.default_rng(1), generic=True)
    for _ in range(20):
        fast.advance(500)
        slow.advance(500)
        mf, Qf, af = fast.stats()
        ms, Qs, as_ = slow.stats()
        np.testing.assert_allclose([mf[0], Qf[0, 0], af[0]], [ms[0], Qs[0, 0], as_[0]], rtol=1e-9, atol=1e-12)


# ------------------------------------------- the chain is exactly full SGD

def _compare(pb, n_runs, T, t_max, criterion, seed):
    init = mdlib.random_init(pb, n_runs, seed=seed)
    e_chain = mdlib.sgd_exit_times(pb, init, T, t_max, method="exact", seed=seed + 1, criterion=criterion)
    e_full = mdlib.sgd_exit_times(pb, init, T, t_max, method="full", seed=seed + 2, criterion=criterion)
    assert np.all(np.isfinite(e_chain)) and np.all(np.isfinite(e_full))
    ks = stats.ks_2samp(e_chain, e_full)
    se = np.hypot(e_chain.std(ddof=1), e_full.std(ddof=1)) / np.sqrt(n_runs)
    return ks.pvalue, abs(e_chain.mean() - e_full.mean()) / se


@pytest.mark.slow
@pytest.mark.parametrize(
    "kw, T, t_max, criterion",
    [
        (dict(p=1, d=60, gamma=0.1, delta=1e-3), 0.5, 30.0, "risk"),
        (dict(p=3, d=40, gamma=0.3, delta=1e-3), 0.3, 30.0, "risk"),
        (dict(p=1, d=60, gamma=0.05, spherical=False), 0.3, 30.0, "risk"),
        (dict(p=3, d=40, gamma=0.3, delta=1e-2, train_second_layer=True), 0.3, 30.0, "max_m"),
    ],
    ids=["p1-projected", "p3-projected", "p1-plain", "p3-trained"],
)
def test_chain_matches_full_sgd_in_distribution(kw, T, t_max, criterion):
    """Small version (300 runs); the 1000-run version is benchmarks/chain_vs_full.py."""
    pvalue, z = _compare(mdlib.Problem(**kw), 300, T, t_max, criterion, seed=100)
    assert pvalue > 0.001 and z < 4


# ------------------------------------------------------ stability and blow-up

def test_chain_stable_when_aligned_and_at_huge_d():
    pb = mdlib.Problem(p=3, d=10**7, gamma=0.3, delta=1e-4)
    e = 1 - 1e-13
    init = mdlib.make_state(pb, [1.0, 1.0, e], Q=[[1, 1, e], [1, 1, e], [e, e, 1]])
    tr = mdlib.simulate_sgd(pb, init, 0.01, seed=0)
    assert np.all(np.isfinite(tr.Q)) and np.all(np.isfinite(tr.m))
    np.testing.assert_allclose(np.diagonal(tr.Q, axis1=2, axis2=3), 1.0, atol=1e-12)
    assert np.all(np.abs(tr.m) <= 1 + 1e-12)
    # near the minimum, well after the escape, |m| stays close to 1
    pb1 = mdlib.Problem(p=1, d=1000, gamma=0.1)
    tr1 = mdlib.simulate_sgd(pb1, mdlib.make_state(pb1, 1.0), 5.0, seed=1)
    assert np.all(np.isfinite(tr1.m)) and np.min(np.abs(tr1.m)) > 0.9


@pytest.mark.parametrize("method", ["exact", "full"])
def test_divergence_is_reported_not_silent(method):
    pb = mdlib.Problem(p=2, d=50, gamma=5.0, spherical=False)
    init = mdlib.random_init(pb, 3, seed=0)
    with pytest.warns(RuntimeWarning, match="diverged"):
        tr = mdlib.simulate_sgd(pb, init, 5.0, method=method, seed=0)
    assert tr.diverged.all()
    with pytest.warns(RuntimeWarning, match="diverged"):
        e = mdlib.sgd_exit_times(pb, init, 0.5, 5.0, method=method, seed=0)
    assert np.all(np.isnan(e))


def test_no_warning_when_nothing_diverges():
    pb = mdlib.Problem(p=1, d=100, gamma=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mdlib.simulate_sgd(pb, mdlib.random_init(pb, 2, seed=0), 1.0, seed=0)
