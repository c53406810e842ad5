"""SGD, ODE and SDE for polynomial links (Problem.link, beyond the paper).

* ``Problem.link``: validation, equality, repr; the paper's z² stays the default.
* The kernels' link path: one exact step of the chain and of full SGD against a
  hand-written numpy step on the same random draws; z² through the link path
  against the paper's path (bitwise for the chain, to rounding for full SGD);
  the risk the kernels record against :func:`mdlib.links.population_risk`.
* The law: the exact chain against full d-dimensional SGD in distribution at
  k* = 3 and 4 (two-sample KS and a z-test of means, 300 runs, fixed seeds),
  and the exact p = 1 drift and diffusion of :mod:`mdlib.links` against the
  increments of the chain itself (Monte Carlo over many runs of a few steps).
* The ODE and SDE of a link through ``integrate_ode`` / ``integrate_sde``.

Tolerances: exact arithmetic agrees to 1e-12 relative (or bitwise, where
stated); Monte Carlo comparisons use the standard errors of the samples and
fail beyond 4.5 of them (fixed seeds); distribution tests at p > 0.001.
"""
import dataclasses

import numpy as np
import pytest
from scipy import stats
from scipy.integrate import solve_ivp

import mdlib
from mdlib import Exit, Problem, make_state, random_init
from mdlib.chain import _chisquare, _chisquare_consts, link_arrays
from mdlib.links import (
    Link,
    bagj_learning_rate,
    diffusion_p1,
    drift_p1,
    drift_polynomial,
    ode_exit_time_p1,
    population_risk,
    sde_exit_times_p1,
)
from mdlib.sgd import _ChainRun, _FullRun

Z_MAX = 4.5
HE3, HE4 = Link.hermite(3, normalized=True), Link.hermite(4, normalized=True)
MIXED = Link((0.3, -0.5, 0.2, 1.0, 0.4))  # every parity, k* = 1, a constant term


# --------------------------------------------------------------------------- #
# Problem.link
# --------------------------------------------------------------------------- #
def test_problem_link_field():
    pb = Problem(1, 100, 0.1)
    assert pb.link is None and repr(pb) == ("Problem(p=1, d=100, gamma=0.1, delta=0.0, spherical=True, "
                                            "train_second_layer=False)")
    # the paper's link is the default: stored as None, equal, same hash and repr
    paper = Problem(1, 100, 0.1, link=Link.paper())
    assert paper.link is None and paper == pb and hash(paper) == hash(pb) and repr(paper) == repr(pb)
    he3 = Problem(1, 100, 0.1, link=HE3)
    assert he3 != pb and he3 == Problem(1, 100, 0.1, link=Link.hermite(3, normalized=True))
    assert repr(he3).endswith(", link=Link(0.408248 He₃))")
    assert dataclasses.replace(pb, link=HE3) == he3
    with pytest.raises(ValueError, match=r"\blink\b"):
        Problem(1, 100, 0.1, link=(0, 0, 0, 1))
    with pytest.raises(ValueError, match=r"\blink\b.*spherical"):
        Problem(1, 100, 0.1, spherical=False, link=HE3)


def test_functions_written_for_z2_refuse_a_link_naming_it():
    pb = Problem(1, 100, 0.1, link=HE3)
    init = make_state(pb, 0.1)
    for call in (lambda: mdlib.ode_drift(pb, 0.1), lambda: mdlib.increment_covariance(pb, 0.1),
                 lambda: mdlib.jacobian_at_mediocrity(pb), lambda: mdlib.ito_correction_size(pb, 0.1)):
        with pytest.raises(ValueError, match=r"problem\.link"):
            call()
    with pytest.raises(ValueError, match="ito_correction"):
        mdlib.integrate_sde(pb, init, 1.0, ito_correction=True)
    pb2 = Problem(2, 100, 0.1, link=HE3)
    with pytest.raises(ValueError, match="p = 1"):
        mdlib.integrate_ode(pb2, random_init(pb2, 1, seed=0), 1.0)
    with pytest.raises(ValueError, match="p = 1"):
        mdlib.integrate_sde(Problem(1, 100, 0.1, train_second_layer=True, link=HE3), init, 1.0)


def test_link_arrays():
    L = link_arrays(HE4)  # He_4/sqrt(24) = (z^4 - 6 z^2 + 3)/sqrt(24)
    np.testing.assert_allclose(L[0], np.array([3, 0, -6, 0, 1]) / np.sqrt(24), rtol=1e-15)
    np.testing.assert_allclose(L[1], np.array([0, -6, 0, 2, 0]) / np.sqrt(24), rtol=1e-15)  # sigma'/2
    np.testing.assert_allclose(L[2], [0, 0, 0, 0, 1], atol=1e-15)  # kappa(rho) = rho^4
    assert link_arrays(None).shape == (3, 0)


# --------------------------------------------------------------------------- #
# one exact step against numpy
# --------------------------------------------------------------------------- #
def _numpy_chain_step(pb, link, C, a, rng):
    """One step of the exact chain written from the update rule, on the same draws as the kernel:
    the fields (λ*, λ) = C g, |ξ_⊥|² = s² ~ χ²(d - p - 1), E = (1/p) Σ a_j σ(λ_j) - σ(λ*) - sqrt(Δ) z;
    the rows of [C, 0] move by -(γ/d)(1/p) E a_j σ'(λ_j) (g, s) and are projected back to norm 1."""
    p, d, n = pb.p, pb.d, pb.p + 1
    g = np.array([rng.standard_normal() for _ in range(n)])
    s2 = _chisquare(rng, *_chisquare_consts(float(d - n)))
    lam = C @ g
    E = np.sum(a * link(lam[1:])) / p - link(lam[0])
    if pb.delta > 0:
        E -= np.sqrt(pb.delta) * rng.standard_normal()
    rows = np.hstack([C, np.zeros((n, 1))])
    u = pb.gamma / d / p * E * a * link.derivative(lam[1:])
    rows[1:] -= np.outer(u, np.append(g, np.sqrt(s2)))
    a_new = a - pb.gamma / (p * d) * E * link(lam[1:]) if pb.train_second_layer else a
    rows[1:] /= np.linalg.norm(rows[1:], axis=1, keepdims=True)
    omega = rows @ rows.T
    return omega[0, 1:], omega[1:, 1:], a_new


@pytest.mark.parametrize("p, train, link", [(1, False, HE3), (1, True, MIXED), (3, False, HE4), (3, True, MIXED)])
def test_one_chain_step_is_the_update_rule(p, train, link):
    pb = Problem(p, 50, 0.3, 0.2, train_second_layer=train, link=link)
    init = random_init(pb, 1, seed=4)
    a0 = np.array([0.7, 1.3, -0.4][:p]) if train else init.a[0]
    for step in range(3):  # from the start and after a few steps (not a special state)
        run = _ChainRun(pb, init.coords[0], a0, np.random.default_rng(9))
        run.advance(step)
        m, Q, a = run.stats()
        C = np.linalg.cholesky(np.block([[np.ones((1, 1)), m[None, :]], [m[:, None], Q]]))
        rng = np.random.default_rng(9)
        ref = _ChainRun(pb, init.coords[0], a0, rng)
        ref.advance(step)  # the same stream, up to the step being compared
        m_ref, Q_ref, a_ref = _numpy_chain_step(pb, link, C, a, rng)
        run.advance(1)
        m1, Q1, a1 = run.stats()
        np.testing.assert_allclose(m1, m_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(Q1, Q_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a1, a_ref, rtol=0, atol=1e-14)


@pytest.mark.parametrize("p, train", [(1, False), (2, True)])
def test_one_full_sgd_step_is_the_update_rule(p, train):
    pb = Problem(p, 30, 0.3, 0.2, train_second_layer=train, link=MIXED)
    init = random_init(pb, 1, seed=4)
    run = _FullRun(pb, init.coords[0], init.a[0], np.random.default_rng(2))
    W = run.W.copy() * np.sqrt(pb.d / run.norms2)[:, None]  # the weights, on the sphere of radius sqrt(d)
    a = run.a.copy()
    rng = np.random.default_rng(2)
    x = np.array([rng.standard_normal() for _ in range(pb.d)]) / np.sqrt(pb.d)
    z = rng.standard_normal()
    lam, lam_s = W @ x, np.sqrt(pb.d) * x[0]  # the teacher is sqrt(d) e_0
    E = np.sum(a * MIXED(lam)) / p - MIXED(lam_s) - np.sqrt(pb.delta) * z
    W1 = W - pb.gamma / p * np.outer(E * a * MIXED.derivative(lam), x)
    W1 *= np.sqrt(pb.d) / np.linalg.norm(W1, axis=1, keepdims=True)
    a1 = a - pb.gamma / (p * pb.d) * E * MIXED(lam) if train else a
    run.advance(1)
    m, Q, a_k = run.stats()
    np.testing.assert_allclose(m, W1[:, 0] / np.sqrt(pb.d), rtol=0, atol=1e-12)
    np.testing.assert_allclose(Q, W1 @ W1.T / pb.d, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a_k, a1, rtol=0, atol=1e-14)


# --------------------------------------------------------------------------- #
# z² through the link path, and the recorded risk
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("engine, p", [(_ChainRun, 1), (_ChainRun, 4), (_FullRun, 1), (_FullRun, 3)])
def test_z2_through_the_link_path_is_the_papers_path(engine, p):
    """The kernels' link path with the paper's link (sigma = z^2, sigma'/2 = z by Horner, exact) makes the
    operations of the paper's path: bitwise the same chain (a = 1); full SGD's link step is a separate
    fastmath copy, equal to rounding."""
    pb = Problem(p, 300 if engine is _ChainRun else 50, 0.3 if p > 1 else 0.1, 1e-3)
    init = random_init(pb, 1, seed=3)
    paper = engine(pb, init.coords[0], init.a[0], np.random.default_rng(1))
    link = engine(pb, init.coords[0], init.a[0], np.random.default_rng(1), L=link_arrays(Link.paper()))
    for _ in range(4):
        paper.advance(2000 if engine is _FullRun else 20000)
        link.advance(2000 if engine is _FullRun else 20000)
        (m0, Q0, _), (m1, Q1, _) = paper.stats(), link.stats()
        if engine is _ChainRun:
            np.testing.assert_array_equal(m1, m0)
            np.testing.assert_array_equal(Q1, Q0)
        else:
            np.testing.assert_allclose(m1, m0, rtol=0, atol=1e-11)
            np.testing.assert_allclose(Q1, Q0, rtol=0, atol=1e-11)


@pytest.mark.parametrize("method, p, train", [("exact", 1, False), ("exact", 1, True), ("exact", 3, False),
                                              ("exact", 40, True), ("full", 1, False), ("full", 3, True)])
def test_recorded_risk_is_the_links_population_risk(method, p, train):
    pb = Problem(p, 400 if method == "exact" else 40, 0.05 * p, 1e-2, train_second_layer=train, link=MIXED)
    init = random_init(pb, 2, seed=1)
    t = np.unique(np.concatenate([np.arange(30) * pb.dt, np.linspace(0, 1.0, 40)]))
    tr = mdlib.simulate_sgd(pb, init, 1.0, method=method, seed=2, t_save=t)
    assert np.all(np.isfinite(tr.risk))
    ref = population_risk(MIXED, tr.m, tr.Q, tr.a, pb.delta)
    np.testing.assert_allclose(tr.risk, ref, rtol=1e-12)
    np.testing.assert_allclose(np.diagonal(tr.Q, axis1=2, axis2=3), 1.0, atol=1e-12)
    # the risk moves (the check is not on a constant)
    assert np.ptp(tr.risk) > 1e-3


def test_risk_exit_criterion_is_the_links():
    """Exit(T) ('risk') with a link: the first step at which the link's excess risk falls to (1 - T) times
    its start, read off the same runs saved at every step."""
    pb = Problem(1, 60, 0.05, 1e-3, link=MIXED)
    init = random_init(pb, 6, seed=5)
    n = 20000
    tr = mdlib.simulate_sgd(pb, init, n * pb.dt, seed=6, t_save=np.arange(n + 1) * pb.dt)
    direct = mdlib.sgd_exit_times(pb, init, 0.2, n * pb.dt, seed=6)
    assert np.sum(np.isfinite(direct)) >= 4
    np.testing.assert_allclose(direct, mdlib.exit_time(tr, 0.2), rtol=0, atol=1e-9)
    ex = Exit(0.2)
    level = ex.level(init.m, init.Q, init.a, pb.delta, link=MIXED)
    np.testing.assert_allclose(level, 0.8 * (population_risk(MIXED, init.m, init.Q, init.a, 0.0)), rtol=1e-14)
    assert np.all(ex.gap(init.m, init.Q, init.a, pb.delta, level, link=MIXED) > 0)


# --------------------------------------------------------------------------- #
# the law: chain against full SGD, and the drift and diffusion of the chain
# --------------------------------------------------------------------------- #
@pytest.mark.slow
@pytest.mark.parametrize("link, kw, T, criterion", [
    (HE3, dict(p=1, d=24), 0.25, "max_m"),  # the BAGJ learning rate (below); d = 24: full SGD's cost is
                                            # (d + 1) normals per step, and the chain is exact at any d
    (HE4, dict(p=1, d=24, gamma=0.05, delta=1e-3), 0.25, "max_m"),
    (HE3, dict(p=2, d=30, gamma=0.05, delta=1e-3), 0.3, "risk"),
    (HE4, dict(p=2, d=24, gamma=0.05, delta=1e-3, train_second_layer=True), 0.3, "risk"),  # max_m: heavy tail
], ids=["He3-p1-bagj", "He4-p1", "He3-p2-risk", "He4-p2-trained-risk"])
def test_chain_matches_full_sgd_in_distribution(link, kw, T, criterion):
    """As tests/test_sgd.py for z²: 300 exit times from the same random starts, independent SGD noise."""
    kw = dict(kw)
    kw.setdefault("gamma", bagj_learning_rate(link, kw["d"]))
    pb = Problem(**kw, link=link)
    init = random_init(pb, 300, seed=100)
    e_chain = mdlib.sgd_exit_times(pb, init, T, 1e4, method="exact", seed=101, criterion=criterion)
    e_full = mdlib.sgd_exit_times(pb, init, T, 1e4, method="full", seed=102, criterion=criterion)
    assert np.all(np.isfinite(e_chain)) and np.all(np.isfinite(e_full))
    ks = stats.ks_2samp(e_chain, e_full)
    z = abs(e_chain.mean() - e_full.mean()) / (np.hypot(e_chain.std(ddof=1), e_full.std(ddof=1)) / np.sqrt(300))
    assert ks.pvalue > 1e-3 and z < 4, (ks.pvalue, z)


@pytest.mark.slow
@pytest.mark.parametrize("link, m0, gamma, delta, K, check_var", [(HE3, 0.3, 0.2, 0.0, 2000, True),
                                                                  (HE4, -0.5, 0.1, 0.05, 2000, False),
                                                                  (MIXED, 0.2, 0.05, 0.01, 500, False)])
def test_links_drift_and_diffusion_are_the_chains(link, m0, gamma, delta, K, check_var):
    """R runs of the chain from m0, K steps each, at d = 10^7: (m_K - m0)/t estimates the drift of
    mdlib.links (with SE from the runs), t = K dt. Biases, bounded and far below the SE: the drift
    changes along the path, b b' t/2 (asserted < 0.05 SE; K is smaller for the mixed link, whose
    drift is large), and finite-d terms are O(1/d) = 1e-7.

    The variance: (m_K - m0) has variance t × diffusion_p1 (variance per unit time). It is checked
    for He3 only: for He4 and the mixed link Var[X] lives in rare large draws of the fields (a
    polynomial of degree 14 and more in a Gaussian) that 6·10^6 draws do not sample (the sample
    variance is 4 times below Var[X] for He4 here); tests/test_links.py checks Var[X] exactly
    against quadrature and the exact increments against X on the same draws."""
    d, R = 10**7, 3000
    pb = Problem(1, d, gamma, delta, link=link)
    t = K * pb.dt
    tr = mdlib.simulate_sgd(pb, make_state(pb, m0).repeat(R), t, seed=7, t_save=(0.0, t))
    dm = tr.m[:, -1, 0] - m0
    b = float(drift_p1(link, m0, gamma, delta))
    db = float(drift_polynomial(link, gamma, delta).deriv()(m0))
    mean, se = dm.mean() / t, dm.std(ddof=1) / t / np.sqrt(R)
    assert abs(b * db * t / 2) < 0.05 * se  # the path bias is negligible
    assert abs(mean - b) < Z_MAX * se, (mean, b, se)
    assert abs(mean - drift_p1(link, m0, 0.0, 0.0)) > Z_MAX * se or not check_var, "no power to see the O(γ) term"
    if check_var:
        var, var_ref = dm.var(ddof=1) / t, float(diffusion_p1(link, m0, gamma, delta, d=d))
        kurt = stats.kurtosis(dm, fisher=False)
        se_var = var * np.sqrt((kurt - 1) / R)
        assert abs(var - var_ref) < Z_MAX * se_var, (var, var_ref, se_var)


# --------------------------------------------------------------------------- #
# ODE and SDE through integrate_ode / integrate_sde
# --------------------------------------------------------------------------- #
def test_integrate_ode_of_a_link():
    pb = Problem(1, 400, bagj_learning_rate(HE3, 400), 0.0, link=HE3)
    m0 = np.array([0.02, 0.06, 0.1, -0.05])
    init = make_state(pb, m0[:, None])
    ex = Exit(0.25, "max_m")
    tr = mdlib.integrate_ode(pb, init, 60.0, t_save=np.linspace(0, 60, 121), exit=ex)
    assert tr.method == "ode" and tr.m.shape == (4, 121, 1)
    np.testing.assert_array_equal(tr.t_exit, np.where(ode_exit_time_p1(HE3, m0, pb.gamma, 0.0, ex) <= 60,
                                                      ode_exit_time_p1(HE3, m0, pb.gamma, 0.0, ex), np.inf))
    # below m_c the ODE returns to mediocrity, above it escapes
    assert np.isinf(tr.t_exit[0]) and np.isinf(tr.t_exit[3]) and np.all(np.isfinite(tr.t_exit[1:3]))
    ref = solve_ivp(lambda t, y: drift_p1(HE3, y, pb.gamma), (0, 60), m0, t_eval=tr.t, rtol=1e-11, atol=1e-13).y
    ok = np.isfinite(tr.m[:, :, 0])
    np.testing.assert_allclose(tr.m[:, :, 0][ok], ref[ok], rtol=0, atol=1e-7)
    assert np.all(np.isnan(tr.m[1, tr.t > tr.t_exit[1]]))
    np.testing.assert_allclose(tr.risk, population_risk(HE3, tr.m, np.ones_like(tr.Q), tr.a, 0.0), rtol=1e-14)


def test_integrate_sde_of_a_link_is_sde_exit_times_p1_and_z2_is_integrate_sde():
    pb = Problem(1, 300, 0.01, 1e-3, link=HE3)
    init = random_init(pb, 6, seed=1)
    ex = Exit(0.25, "max_m")
    tr = mdlib.integrate_sde(pb, init, 200.0, seed=3, t_save=np.linspace(0, 200, 11), exit=ex)
    direct = sde_exit_times_p1(HE3, dataclasses.replace(pb, link=None), init, ex, 200.0, seed=3)
    assert np.sum(np.isfinite(direct)) >= 3
    # the saves split the steps differently from t_save=(): same law, not the same path; the same saves
    # with and without exit give the same path up to the exit
    free = mdlib.integrate_sde(pb, init, 200.0, seed=3, t_save=np.linspace(0, 200, 11))
    ok = np.isfinite(tr.m)
    np.testing.assert_array_equal(tr.m[ok], free.m[ok])
    np.testing.assert_array_equal(mdlib.integrate_sde(pb, init, 200.0, seed=3, t_save=(), exit=ex).t_exit, direct)
    # the paper's z²: the link SDE and mdlib.integrate_sde (Eqs. 34, 54) give the same paths
    pz = Problem(1, 300, 0.1, 1e-3)
    iz = random_init(pz, 4, seed=2)
    ts = np.linspace(0, 3, 31)
    a = mdlib.links.integrate_sde_p1(pz, iz, 3.0, seed=5, t_save=ts)
    b = mdlib.integrate_sde(pz, iz, 3.0, seed=5, t_save=ts)
    np.testing.assert_allclose(a.m, b.m, rtol=0, atol=1e-10)
