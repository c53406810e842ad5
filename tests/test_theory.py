"""Tests of mdlib.theory: exit-time formulas against independently integrated ODEs,
optimal learning rates, the overparametrization gain and the OU exit time (Eq. 52).

The full spherical ODE used as the reference for p >= 2 is written here from first
principles (Isserlis/Wick moments of the local fields, spherical projection of Eq. 21),
independently of mdlib, and is itself checked against a brute-force pairing sum and,
at p = 1, against Eq. 7.
"""
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import integrate, optimize, stats

import mdlib.theory as th
from mdlib.problem import Problem, random_init
from mdlib.risk import population_risk

# ---------------------------------------------------------------------------
# independent reference: the d -> infinity spherical ODE at a = 1
# ---------------------------------------------------------------------------

def _omega(m, Q):
    p = len(m)
    om = np.empty((p + 1, p + 1))
    om[:p, :p] = Q
    om[:p, p] = om[p, :p] = m
    om[p, p] = 1.0
    return om


def unconstrained_drift(m, Q, gamma, delta):
    """(Psi, Phi) of Eq. 17 for a = 1, SGD sign (gradient *descent*), |x|^2 -> 1.

    E = sum_s c_s lambda_s^2 (+ noise) with c = (1/p, ..., 1/p, -1) over (lambda, lambda*).
    Psi_j   = -2 E[E lambda_j lambda*]
    Phi_jl  = -4 E[E lambda_j lambda_l] + (4 gamma / p) E[E^2 lambda_j lambda_l]
    Isserlis: E[E lambda_a lambda_b] = (c.D) Om_ab + 2 (Om C Om)_ab and
    E[E^2 lambda_a lambda_b] = Om_ab[(c.D)^2 + 2 c'(Om*Om)c + Delta] + 4 (c.D)(Om C Om)_ab
                               + 8 (Om C Om C Om)_ab.
    """
    p = len(m)
    om = _omega(m, Q)
    c = np.r_[np.full(p, 1.0 / p), -1.0]
    C = np.diag(c)
    cD = c @ np.diag(om)
    oco = om @ C @ om
    first = cD * om + 2 * oco
    second = om * (cD**2 + 2 * c @ (om**2) @ c + delta) + 4 * cD * oco + 8 * oco @ C @ om
    psi = -2 * first[:p, p]
    phi = -4 * first[:p, :p] + 4 * gamma / p * second[:p, :p]
    return psi, phi, om, c, second


def spherical_drift(m, Q, gamma, delta):
    """Projected-SGD ODE (Eqs. 21, 30-31): dm = Psi - m Phi_jj / 2, dQ = Phi - Q (Phi_jj + Phi_ll) / 2."""
    psi, phi, *_ = unconstrained_drift(m, Q, gamma, delta)
    dg = np.diag(phi)
    return psi - m * dg / 2, phi - Q * (dg[:, None] + dg[None, :]) / 2


def _pairings(idx):
    if not idx:
        yield []
        return
    a = idx[0]
    for i in range(1, len(idx)):
        rest = idx[1:i] + idx[i + 1:]
        for pr in _pairings(rest):
            yield [(a, idx[i])] + pr


def _gauss_moment(indices, om):
    return sum(np.prod([om[a, b] for a, b in pr]) for pr in _pairings(list(indices)))


def test_reference_drift_matches_bruteforce_isserlis():
    rng = np.random.default_rng(0)
    p, gamma, delta = 3, 0.3, 0.7
    A = rng.standard_normal((p + 1, p + 1))
    om = A @ A.T
    om /= np.sqrt(np.outer(np.diag(om), np.diag(om)))  # unit diagonal
    m, Q = om[:p, p], om[:p, :p]
    _, _, om2, c, second = unconstrained_drift(m, Q, gamma, delta)
    for j, l in [(0, 1), (1, 1), (2, 0)]:
        brute = sum(c[s] * c[t] * _gauss_moment([j, l, s, s, t, t], om2)
                    for s in range(p + 1) for t in range(p + 1)) + delta * om2[j, l]
        assert brute == pytest.approx(second[j, l], rel=1e-12)


def test_reference_drift_p1_is_eq7():
    for m in [0.05, 0.4, 0.9]:
        for gamma, delta in [(0.1, 0.0), (0.05, 1.0)]:
            dm, dQ = spherical_drift(np.array([m]), np.eye(1), gamma, delta)
            assert dm[0] == pytest.approx(m * (4 * (1 - 6 * gamma) * (1 - m**2) - 2 * gamma * delta), rel=1e-12)
            assert abs(dQ[0, 0]) < 1e-12  # the norm is conserved


def _ode_exit_time(m0, Q0, gamma, delta, T, t_max):
    """Exit time (Eq. 9) of the reference spherical ODE from (m0, Q0)."""
    p = len(m0)
    iu = np.triu_indices(p, 1)

    def unpack(y):
        Q = np.eye(p)
        Q[iu] = y[p:]
        Q[iu[1], iu[0]] = y[p:]
        return y[:p], Q

    def rhs(t, y):
        m, Q = unpack(y)
        dm, dQ = spherical_drift(m, Q, gamma, delta)
        return np.r_[dm, dQ[iu]]

    def excess(y):
        m, Q = unpack(y)
        return population_risk(m, Q, np.ones(p), delta) - delta / 2

    target = (1 - T) * excess(np.r_[m0, Q0[iu]])

    def event(t, y):
        return excess(y) - target
    event.terminal, event.direction = True, -1
    sol = integrate.solve_ivp(rhs, (0, t_max), np.r_[m0, Q0[iu]], method="DOP853",
                              rtol=1e-10, atol=1e-14, events=event)
    return sol.t_events[0][0] if sol.t_events[0].size else np.inf


def _eq7_exit_time_numeric(m0, gamma, delta, T, t_max=200.0):
    a, w = 4 * (1 - 6 * gamma), 4 * (1 - 6 * gamma) - 2 * gamma * delta
    u1 = T + (1 - T) * m0**2

    def event(t, y):
        return y[0] ** 2 - u1
    event.terminal, event.direction = True, 1
    sol = integrate.solve_ivp(lambda t, y: y * (w - a * y**2), (0, t_max), [m0], method="DOP853",
                              rtol=1e-12, atol=1e-15, events=event)
    return sol.t_events[0][0] if sol.t_events[0].size else np.inf


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("call, name", [
    (lambda: th.exit_time_annealed(1, 1000, 0.05, 0.0, 1.0), "T"),
    (lambda: th.exit_time_annealed(1, 1000, 0.05, 0.0, 0.0), "T"),
    (lambda: th.exit_time_annealed(2, 3, 0.05, 0.0, 0.1), "d"),
    (lambda: th.exit_time_annealed(0, 100, 0.05, 0.0, 0.1), "p"),
    (lambda: th.exit_time_annealed(1.5, 100, 0.05, 0.0, 0.1), "p"),
    (lambda: th.exit_time_annealed(2.0, 100, 0.05, 0.0, 0.1), "p"),
    (lambda: th.exit_time_annealed(1, 100, 0.0, 0.0, 0.1), "gamma"),
    (lambda: th.exit_time_annealed(1, 100, -0.1, 0.0, 0.1), "gamma"),
    (lambda: th.exit_time_annealed(1, 100, 0.05, -1.0, 0.1), "delta"),
    (lambda: th.exit_time_annealed(1, 100, 0.2, 0.0, 0.1), "gamma"),      # omega_M <= 0
    (lambda: th.exit_time_annealed(2, 100, 0.6, 0.0, 0.1), "gamma"),      # omega_Q <= 0
    (lambda: th.exit_time_quenched(3, 100, 5.0, 0.0, 0.1), "gamma"),
    (lambda: th.exit_time_quenched_p1(100, 0.05, 0.0, 0.1, law="normal"), "law"),
    (lambda: th.asymptotic_excess_risk(0.16, 1.0), "gamma"),
    (lambda: th.steps_to_exit(1, 100, 0.05, 0.0, 0.1, kind="exact"), "kind"),
    (lambda: th.ou_exit_time(1.0, 0.0, 0.1), "sigma2"),
    (lambda: th.ou_exit_time(1.0, 1.0, 1.5), "T"),
    (lambda: th.ou_exit_time_numeric(1.0, 1.0, 0.1, method="euler"), "method"),
    (lambda: th.exit_time_ode_p1(1.0, 0.05, 0.0, 0.1), "m0"),
    (lambda: th.exit_time_given_init(2, 100, 0.1, 0.0, 0.1, 0.0, 1.0), "mu0"),
    (lambda: th.sample_mu_tau(2, 100, 0), "n_samples"),
])
def test_bad_arguments_raise(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ---------------------------------------------------------------------------
# linearisation (Eqs. 38-42)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("gamma, delta", [(0.05, 0.0), (0.3, 0.4), (2.0, 1.0)])
def test_rates_are_the_linearised_reference_drift(p, gamma, delta):
    """Eqs. 38-39 hold whatever the sign of the rates (e.g. omega_M < 0 at p = 1, gamma = 0.3)."""
    eps = 1e-7
    m = np.zeros(p)
    m[0] = eps
    dm, _ = spherical_drift(m, np.eye(p), gamma, delta)
    assert dm[0] / eps == pytest.approx(th.omega_m(p, gamma, delta), rel=1e-6)
    if p > 1:
        Q = np.eye(p)
        Q[0, 1] = Q[1, 0] = eps
        _, dQ = spherical_drift(np.zeros(p), Q, gamma, delta)
        assert -dQ[0, 1] / eps == pytest.approx(th.omega_q(p, gamma), rel=1e-6)


def test_eq42_is_eq6_on_the_sphere():
    prob = Problem(p=4, d=50, gamma=0.1)
    s = random_init(prob, n_runs=20, seed=1)
    off = s.Q - np.eye(4)
    eq42 = 1 + 1 / 4 + np.sum(off**2, axis=(1, 2)) / 16 - 2 / 4 * np.sum(s.m**2, axis=1)
    np.testing.assert_allclose(population_risk(s.m, s.Q, s.a, 0.3) - 0.15, eq42, rtol=1e-12)


def test_omega_q_implied_by_omega_m_for_p_ge_7_and_at_gamma_opt():
    """App. E.2: for p > 6, omega_M > 0 implies omega_Q > 0; and gamma_opt always has omega_Q > 0."""
    for delta in [0.0, 0.5, 3.0]:
        for p in range(2, 40):
            if p >= 7:
                assert th.gamma_max(p, delta) <= p * p / 8
            assert th.omega_q(p, th.gamma_opt(p, delta)) > 0
    # and it fails for some p <= 6 at delta = 0
    assert th.gamma_max(6, 0.0) > 36 / 8 and th.gamma_max(2, 0.0) > 4 / 8


# ---------------------------------------------------------------------------
# initial conditions
# ---------------------------------------------------------------------------

def test_sample_mu_tau_moments_and_law():
    p, d = 3, 7
    mu, tau = th.sample_mu_tau(p, d, 40_000, seed=3)
    assert mu.mean() == pytest.approx(p, abs=4 * mu.std() / 200)
    assert tau.mean() == pytest.approx(p * (p - 1), abs=4 * tau.std() / 200)
    # direct construction from d-dimensional unit vectors
    rng = np.random.default_rng(4)
    n = 20_000
    v = rng.standard_normal((n, d))
    u = rng.standard_normal((n, p, d))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    u /= np.linalg.norm(u, axis=2, keepdims=True)
    mu_d = d * np.sum(np.einsum("npd,nd->np", u, v) ** 2, axis=1)
    g = np.einsum("npd,nqd->npq", u, u)
    tau_d = 2 * d * sum(g[:, j, l] ** 2 for j in range(p) for l in range(j + 1, p))
    assert stats.ks_2samp(mu, mu_d).pvalue > 1e-3
    assert stats.ks_2samp(tau, tau_d).pvalue > 1e-3
    # p = 1: mu0/d ~ Beta(1/2, (d-1)/2)
    mu1, tau1 = th.sample_mu_tau(1, d, 20_000, seed=5)
    assert np.all(tau1 == 0)
    assert stats.kstest(mu1 / d, stats.beta(0.5, (d - 1) / 2).cdf).pvalue > 1e-3


# ---------------------------------------------------------------------------
# p = 1: formulas against Eq. 7
# ---------------------------------------------------------------------------

def test_exact_p1_exit_time_matches_integrated_eq7():
    for m0 in [0.01, 0.03, 0.2]:
        for gamma, delta, T in [(0.1, 0.0, 0.01), (0.05, 0.5, 0.3), (0.02, 2.0, 0.7)]:
            assert th.exit_time_ode_p1(m0, gamma, delta, T) == pytest.approx(
                _eq7_exit_time_numeric(m0, gamma, delta, T), rel=1e-8)
    # threshold above the fixed point: never exits
    assert th.exit_time_ode_p1(0.1, 0.05, 5.0, 0.9) == np.inf


@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_annealed_p1_is_linearised_ode_from_mean_init(delta):
    """Eq. 10 (annealed) = exit time of Eq. 7 from m0^2 = E[m0^2] = 1/d, up to O(T).

    At Delta = 0 the nonlinear ODE exits *exactly* -log(1-T)/(2 omega) later."""
    d, gamma = 10_000, 0.05
    w = th.omega_m(1, gamma, delta)
    gaps = []
    for T in [1e-3, 1e-2, 0.1, 0.3, 0.6]:
        t_ann = th.exit_time_annealed_p1(d, gamma, delta, T)
        t_ode = _eq7_exit_time_numeric(1 / math.sqrt(d), gamma, delta, T)
        gap = t_ode - t_ann
        gaps.append(gap / t_ode)
        if delta == 0:
            assert gap == pytest.approx(-math.log(1 - T) / (2 * w), rel=1e-6)
        assert 0 < gap < 2 * (-math.log(1 - T)) / (2 * w) * (1 + 2 * gamma * delta)
    assert gaps[0] < 1e-3                      # O(T): 0.04 % at T = 1e-3
    assert np.all(np.diff(gaps) > 0)            # and departs as T grows


def test_quenched_p1_is_ode_average():
    """Eq. 10 (quenched) with the exact finite-d law = average over m0 of the linearised
    Eq. 7; the nonlinear ODE average differs by O(T) (exactly -log(1-T)/(2w) at Delta = 0)."""
    d, gamma = 2000, 0.1
    rng = np.random.default_rng(6)
    m0 = np.sqrt(rng.beta(0.5, (d - 1) / 2, size=200_000))
    for delta, T in [(0.0, 0.01), (0.0, 0.2), (1e-2, 0.01)]:
        w = th.omega_m(1, gamma, delta)
        t_ode = th.exit_time_ode_p1(m0, gamma, delta, T)
        mean, se = t_ode.mean(), t_ode.std() / math.sqrt(t_ode.size)
        t_q = th.exit_time_quenched_p1(d, gamma, delta, T, law="exact")
        shift = -math.log(1 - T) / (2 * w)
        if delta == 0:
            assert mean == pytest.approx(t_q + shift, abs=4 * se)
        assert abs(mean - t_q) < 1.1 * shift + 4 * se


def test_quenched_p1_quadrature_against_monte_carlo():
    d, gamma, delta, T = 500, 0.08, 0.2, 0.05
    rng = np.random.default_rng(7)
    w2 = 2 * th.omega_m(1, gamma, delta)
    for law, mu in [("chi2", rng.chisquare(1, 400_000)), ("exact", d * rng.beta(0.5, (d - 1) / 2, 400_000))]:
        t = np.log(T * d / mu + 1 - T) / w2
        assert th.exit_time_quenched_p1(d, gamma, delta, T, law=law) == pytest.approx(
            t.mean(), abs=4 * t.std() / math.sqrt(t.size))
    # the two laws agree as d grows (difference O(1/d))
    a = th.exit_time_quenched_p1(10**6, gamma, delta, T, law="chi2")
    b = th.exit_time_quenched_p1(10**6, gamma, delta, T, law="exact")
    assert abs(a - b) < 1e-5


def test_general_p_formulas_reduce_to_p1():
    for d, gamma, delta, T in [(100, 0.05, 0.0, 0.1), (3000, 0.1, 1e-4, 0.01)]:
        assert th.exit_time_annealed(1, d, gamma, delta, T) == th.exit_time_annealed_p1(d, gamma, delta, T)
        assert th.exit_time_annealed_p1(d, gamma, delta, T) == pytest.approx(
            math.log(T * d + 1 - T) / (8 * (1 - 6 * gamma) - 4 * gamma * delta), rel=1e-14)
        assert th.exit_time_quenched(1, d, gamma, delta, T) == th.exit_time_quenched_p1(
            d, gamma, delta, T, law="exact")


def test_asymptotic_excess_risk_is_long_time_limit_of_eq7():
    for gamma, delta in [(0.05, 0.5), (0.1, 0.2), (0.01, 3.0)]:
        a, w = 4 * (1 - 6 * gamma), 4 * (1 - 6 * gamma) - 2 * gamma * delta
        sol = integrate.solve_ivp(lambda t, y: y * (w - a * y**2), (0, 60 / w), [0.01], rtol=1e-12, atol=1e-14)
        m_inf = sol.y[0, -1]
        assert 2 * (1 - m_inf**2) == pytest.approx(th.asymptotic_excess_risk(gamma, delta), rel=1e-8)


def test_erratum_learning_rate_bound():
    """Sec. 2 says gamma < 1/6 is the bound; with Delta > 0 the exact bound is 2/(12 + Delta)."""
    delta, gamma = 1.0, 0.16
    assert gamma < 1 / 6                                   # the paper's condition holds ...
    assert th.gamma_max(1, delta) == pytest.approx(2 / 13)  # ... but gamma > 2/(12 + Delta)
    a, w = 4 * (1 - 6 * gamma), 4 * (1 - 6 * gamma) - 2 * gamma * delta
    sol = integrate.solve_ivp(lambda t, y: y * (w - a * y**2), (0, 200.0), [0.1], rtol=1e-10, atol=1e-14)
    assert sol.y[0, -1] < 1e-3                              # m -> 0: nothing is learned
    with pytest.raises(ValueError, match="gamma"):
        th.exit_time_annealed_p1(1000, gamma, delta, 0.1)
    # just below the corrected bound, learning happens
    g2 = 0.99 * 2 / 13
    sol = integrate.solve_ivp(lambda t, y: y * (4 * (1 - 6 * g2) - 2 * g2 * delta - 4 * (1 - 6 * g2) * y**2),
                              (0, 5000.0), [0.1], rtol=1e-10, atol=1e-14)
    assert sol.y[0, -1] > 0.05


# ---------------------------------------------------------------------------
# p >= 2: formulas against the linearised system and the full reference ODE
# ---------------------------------------------------------------------------

def test_erratum_eq44_scaling():
    """Eq. 44 at t = 0 must equal the risk (Eq. 42/6) of the initial condition; with the printed
    d*tau0, d*mu0 it is off by orders of magnitude, with tau0/d, mu0/d it is exact."""
    p, d, delta = 3, 1000, 0.2
    s = random_init(Problem(p=p, d=d, gamma=0.1), n_runs=50, seed=8)
    mu0 = d * np.sum(s.m**2, axis=1)
    off = s.Q - np.eye(p)
    tau0 = d * np.sum(off**2, axis=(1, 2))
    exact = population_risk(s.m, s.Q, s.a, delta) - delta / 2
    printed = 1 + 1 / p + d * tau0 / p**2 - 2 * d * mu0 / p
    corrected = 1 + 1 / p + tau0 / (d * p**2) - 2 * mu0 / (d * p)
    np.testing.assert_allclose(corrected, exact, rtol=1e-12)
    assert np.min(np.abs(printed - exact)) > 10


def test_linearized_exact_threshold_vs_eq46():
    """Eq. 46 drops the decaying tau0 term; it agrees with the exact linearised threshold
    crossing when T d >> 1 and differs when T d is O(1)."""
    p, gamma, delta = 3, 0.4, 0.1
    mu0, tau0 = th.sample_mu_tau(p, 10**5, 50, seed=9)
    big = th.exit_time_linearized(p, 10**5, gamma, delta, 0.05, mu0, tau0)
    f46 = th.exit_time_given_init(p, 10**5, gamma, delta, 0.05, mu0, tau0)
    np.testing.assert_allclose(f46, big, rtol=2e-4)
    small = th.exit_time_linearized(p, 200, gamma, delta, 0.01, mu0[:5], tau0[:5])
    f46s = th.exit_time_given_init(p, 200, gamma, delta, 0.01, mu0[:5], tau0[:5])
    assert np.max(np.abs(f46s / small - 1)) > 1e-2


@pytest.mark.parametrize("p", [2, 3])
def test_eq46_per_sample_and_quenched_vs_full_ode(p):
    """Quenched formula (Eq. 46) vs the full ODE solved per initial condition and averaged.

    Initial conditions are exact draws (Eq. 86, via mdlib.problem.random_init); at
    d = 1e5, T = 0.01 the per-sample exit times agree to O(T) + O(1/sqrt(d))."""
    d, delta, T = 100_000, 0.1, 0.01
    gamma = th.gamma_opt(p, delta)
    s = random_init(Problem(p=p, d=d, gamma=gamma), n_runs=12, seed=10 + p)
    mu0 = d * np.sum(s.m**2, axis=1)
    tau0 = d * np.sum((s.Q - np.eye(p)) ** 2, axis=(1, 2))
    formula = th.exit_time_given_init(p, d, gamma, delta, T, mu0, tau0)
    ode = np.array([_ode_exit_time(s.m[r], s.Q[r], gamma, delta, T, 10 * formula[r]) for r in range(s.n_runs)])
    rel = np.abs(ode / formula - 1)
    assert np.max(rel) < 0.03
    assert abs(ode.mean() / formula.mean() - 1) < 0.015
    # the quenched Monte Carlo average is the same quantity on many more samples
    tq, se = th.exit_time_quenched(p, d, gamma, delta, T, n_samples=40_000, seed=1, return_stderr=True)
    assert tq == pytest.approx(formula.mean(), abs=4 * formula.std() / np.sqrt(formula.size) + 4 * se)


@pytest.mark.parametrize("p", [2, 4])
def test_annealed_vs_full_ode_from_mean_init(p):
    """Eq. 47 = linearised exit time from (mu0, tau0) = (p, p(p-1)): start the full ODE at
    m_j = 1/sqrt(d), Q_jl = 1/sqrt(d) and compare at small and larger T.  The small-T gap,
    0.3-0.6 % at d = 1e5, is the O(1/sqrt(d)) coupling m_l Q_jl neglected in Eq. 40."""
    d, delta = 100_000, 0.0
    gamma = th.gamma_opt(p, delta) / 2
    m0 = np.full(p, 1 / math.sqrt(d))
    Q0 = np.eye(p) + (1 - np.eye(p)) / math.sqrt(d)
    errs = []
    for T in [0.003, 0.03, 0.3]:
        t_ann = th.exit_time_annealed(p, d, gamma, delta, T)
        t_ode = _ode_exit_time(m0, Q0, gamma, delta, T, 10 * t_ann)
        errs.append(t_ode / t_ann - 1)
    assert abs(errs[0]) < 1e-2
    assert np.all(np.diff(errs) > 0)  # the nonlinear ODE departs upwards as T grows


@pytest.mark.parametrize("p", [1, 2, 3, 5, 10, 30])
def test_quenched_at_least_annealed(p):
    for d, T in [(1000, 0.01), (10_000, 0.1)]:
        gamma = th.gamma_opt(p, 0.0)
        n = 20_000 if p < 10 else 3000
        tq, se = th.exit_time_quenched(p, d, gamma, 0.0, T, n_samples=n, seed=p, return_stderr=True)
        ta = th.exit_time_annealed(p, d, gamma, 0.0, T)
        assert tq >= ta - 3 * se


def test_quenched_minus_annealed_vanishes_with_width():
    """E[-log(mu0/p)] ~ 1/p: the two formulas coincide for wide networks (Sec. 3)."""
    d, T = 10_000, 0.01
    diffs = []
    for p in [1, 4, 16, 64]:
        gamma = th.gamma_opt(p, 0.0)
        diffs.append(th.exit_time_quenched(p, d, gamma, 0.0, T, n_samples=4000 if p < 64 else 2000, seed=0)
                     - th.exit_time_annealed(p, d, gamma, 0.0, T))
    assert np.all(np.diff(diffs) < 0)
    assert diffs[0] == pytest.approx((np.euler_gamma + math.log(2)) / 4, rel=1e-3)  # p = 1, 2 w_M = 4
    assert diffs[-1] < 0.02


def _final_risk(p, gamma, d=100_000, t_end=40.0):
    m0 = np.full(p, 1 / math.sqrt(d))
    Q0 = np.eye(p) + (1 - np.eye(p)) / math.sqrt(d)
    iu = np.triu_indices(p, 1)

    def rhs(t, y):
        Q = np.eye(p)
        Q[iu] = y[p:]
        Q[iu[1], iu[0]] = y[p:]
        dm, dQ = spherical_drift(y[:p], Q, gamma, 0.0)
        return np.r_[dm, dQ[iu]]
    y = integrate.solve_ivp(rhs, (0, t_end), np.r_[m0, Q0[iu]], rtol=1e-9, atol=1e-13).y[:, -1]
    Q = np.eye(p)
    Q[iu] = y[p:]
    Q[iu[1], iu[0]] = y[p:]
    return float(population_risk(y[:p], Q, np.ones(p), 0.0))


def test_gamma_opt_escapes_but_does_not_learn_for_p_ge_2():
    """Caveat (not an erratum): gamma_opt minimises the steps to *escape*, but for p >= 2 with a = 1
    the ODE at gamma_opt then settles at a bad state (p = 2: R ~ 1.08) or collapses onto
    w_1 = ... = w_p, m = 0 (p = 4: R -> 2, worse than at initialisation); gamma_opt/2 learns."""
    assert _final_risk(1, th.gamma_opt(1, 0.0)) < 1e-6
    assert _final_risk(2, th.gamma_opt(2, 0.0)) > 1.0
    assert _final_risk(4, th.gamma_opt(4, 0.0)) > 1.9
    assert _final_risk(2, th.gamma_opt(2, 0.0) / 2) < 1e-3
    assert _final_risk(4, th.gamma_opt(4, 0.0) / 2) < 0.05


# ---------------------------------------------------------------------------
# learning rates, steps and gain
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1, 2, 3, 5, 10])
@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_gamma_opt_is_numeric_minimum_of_steps(p, delta):
    d, T = 5000, 0.01
    hi = th.gamma_max(p, delta, include_omega_q=True)
    for kind in ["annealed", "quenched"]:
        res = optimize.minimize_scalar(
            lambda g: th.steps_to_exit(p, d, g, delta, T, kind=kind, n_samples=2000, seed=0),
            bounds=(1e-6 * hi, (1 - 1e-9) * hi), method="bounded", options={"xatol": 1e-10})
        assert res.x == pytest.approx(th.gamma_opt(p, delta), rel=1e-5)
    assert th.gamma_opt(p, delta) == pytest.approx(th.gamma_max(p, delta) / 2, rel=1e-14)
    # at gamma_opt, 2 omega_M = 4 (the 1/4 prefactor of Sec. 3)
    assert 2 * th.omega_m(p, th.gamma_opt(p, delta), delta) == pytest.approx(4.0, rel=1e-14)


def test_gamma_opt_p1_against_exact_ode_steps():
    """Minimise (d/gamma) E[t_ODE] over gamma with the exact exit time of Eq. 7."""
    d, T = 3000, 0.01
    rng = np.random.default_rng(11)
    m0 = np.sqrt(rng.beta(0.5, (d - 1) / 2, size=20_000))
    for delta in [0.0, 0.5, 2.0]:
        res = optimize.minimize_scalar(
            lambda g: d / g * th.exit_time_ode_p1(m0, g, delta, T).mean(),
            bounds=(1e-4, 0.999 * th.gamma_max(1, delta)), method="bounded", options={"xatol": 1e-10})
        target = 1 / (12 + delta)
        if delta == 0:  # the nonlinear correction -log(1-T)/(2w) has the same gamma-dependence
            assert res.x == pytest.approx(target, rel=1e-5)
        else:
            assert res.x == pytest.approx(target, rel=5 * T)


def test_gamma_opt_p2_against_full_ode_steps():
    p, d, delta, T = 2, 100_000, 0.0, 0.01
    m0 = np.full(p, 1 / math.sqrt(d))
    Q0 = np.eye(p) + (1 - np.eye(p)) / math.sqrt(d)
    res = optimize.minimize_scalar(
        lambda g: p * d / g * _ode_exit_time(m0, Q0, g, delta, T, 50.0),
        bounds=(0.1, 0.49), method="bounded", options={"xatol": 1e-5})
    assert res.x == pytest.approx(th.gamma_opt(p, delta), rel=0.02)


def test_min_steps():
    d, T = 10_000, 0.01
    for delta in [0.0, 1.0]:
        vals = []
        for p in [1, 2, 3, 5, 10, 100, 1000]:
            s = th.min_steps(p, d, delta, T)
            assert s == pytest.approx(th.steps_to_exit(p, d, th.gamma_opt(p, delta), delta, T), rel=1e-13)
            vals.append(s)
        assert np.all(np.diff(vals) < 0)  # monotonically decreasing in p (App. E.4)
        assert th.min_steps(math.inf, d, delta, T) < vals[-1]
        assert th.min_steps(10**7, 10**8, delta, T) == pytest.approx(th.min_steps(math.inf, 10**8, delta, T), rel=1e-5)


def test_overparametrization_gain_limit():
    for delta in [0.0, 0.3, 2.0]:
        g = th.overparam_gain(delta)
        assert g == pytest.approx((12 + delta) / (2 + delta))
        for d, T in [(1000, 0.01), (10**6, 0.5)]:
            ratio = th.overparam_gain_finite(math.inf, d, delta, T) / g
            assert ratio == pytest.approx(math.log(T * d + 1 - T) / math.log((T * d + 1 - T) / 2), rel=1e-12)
        # p -> infinity, then d -> infinity (only logarithmically fast)
        assert th.overparam_gain_finite(10**6, 10**100, delta, 0.1) == pytest.approx(g, rel=5e-3)
        assert th.overparam_gain_finite(1, 100, delta, 0.1) == 1.0


def test_gain_approaches_its_limit_from_above():
    """The finite-d gain grows with p towards its p = infinity value, which exceeds the limit
    (12 + Delta)/(2 + Delta) and falls towards it as d grows (the width chapter's reading)."""
    for delta, T in [(1e-4, 0.01), (0.5, 0.1)]:
        limit = th.overparam_gain(delta)
        for d in [1000, 5000, 10**6]:
            gains = [th.overparam_gain_finite(p, d, delta, T) for p in (1, 2, 5, 20, 100, 500, math.inf)]
            assert gains[0] == 1.0 and np.all(np.diff(gains) > 0) and gains[-1] > limit
        at_inf = [th.overparam_gain_finite(math.inf, d, delta, T) for d in (10**3, 10**4, 10**6, 10**8)]
        assert np.all(np.diff(at_inf) < 0)


def test_annealed_exit_time_decreases_with_width_at_fixed_gamma_over_p():
    """Sec. 3: t_ext is a decreasing function of the width (gamma/p fixed), but grows as log d at every p."""
    widths = [1, 2, 5, 10, 20, 50, 100, 200, 500]
    for d in [1000, 10**4, 10**6]:
        t = [th.exit_time_annealed(p, d, 0.05 * p, 1e-4, 0.01) for p in widths]
        assert np.all(np.diff(t) < 0)
    for p in widths:
        wm = th.omega_m(p, 0.05 * p, 1e-4)
        slope = (th.exit_time_annealed(p, 10**9, 0.05 * p, 1e-4, 0.01)
                 - th.exit_time_annealed(p, 10**8, 0.05 * p, 1e-4, 0.01)) / math.log(10)
        assert slope == pytest.approx(1 / (2 * wm), rel=1e-6)


def test_erratum_sec3_minimal_exit_time():
    """Sec. 3 prints 1/4 log(T(p+1)d + (p+1)(1-T)/2p); Eq. 47 at gamma_opt divides the whole sum by 2p."""
    d, T, delta = 5000, 0.01, 0.3
    for p in [2, 5, 20]:
        t47 = th.exit_time_annealed(p, d, th.gamma_opt(p, delta), delta, T)
        printed = 0.25 * math.log(T * (p + 1) * d + (p + 1) * (1 - T) / (2 * p))
        corrected = 0.25 * math.log((T * (p + 1) * d + (p + 1) * (1 - T)) / (2 * p))
        assert t47 == pytest.approx(corrected, rel=1e-13)
        assert abs(printed - t47) > 0.1


# ---------------------------------------------------------------------------
# Ornstein-Uhlenbeck exit time (App. F, Eq. 52)
# ---------------------------------------------------------------------------

def _hyp2f2_exact(z):
    """₂F₂(1, 1; 3/2, 2; z) by its power series in exact rational arithmetic: an independent
    check of the mpmath evaluation used by theory.ou_exit_time.

    Term ratio: ``t_{n+1}/t_n = z (n+1) / ((n + 3/2)(n + 2))``; summed until the terms are
    below 1e-20 of the running sum past the peak.
    """
    zf = Fraction(z)
    term = Fraction(1)
    total = Fraction(1)
    n = 0
    while True:
        term = term * zf * (n + 1) / (Fraction(2 * n + 3, 2) * (n + 2))
        total += term
        n += 1
        if n > abs(z) + 10 and abs(term) < Fraction(1, 10**20) * max(abs(total), Fraction(1, 10**300)):
            break
        assert n <= 100_000, "series did not converge"
    return float(total)


def ou_exit_time_mc(mu, sigma2, T, n_paths=20_000, dt=None, seed=None):
    r"""Monte Carlo mean exit time of the OU process of Eq. 51 from ``m = 0``, with its SE.

    Exact OU transitions on a grid of step ``dt`` (default ``10^{-2} min(T/σ², 1/|μ|)``), with
    a Brownian-bridge correction for crossings between grid points (a crossing of the barrier
    ``b`` between ``x`` and ``y`` is accepted with probability ``exp(-2(b - x)(b - y)/(σ² dt))``),
    which removes the O(√dt) bias of discrete monitoring.
    """
    a = math.sqrt(T)
    if dt is None:
        dt = 1e-2 * (T / sigma2 if mu == 0 else min(T / sigma2, 1.0 / abs(mu)))
    rng = np.random.default_rng(seed)
    if mu != 0:
        decay = math.exp(mu * dt)
        sd = math.sqrt(sigma2 * math.expm1(2 * mu * dt) / (2 * mu))
    else:
        decay, sd = 1.0, math.sqrt(sigma2 * dt)
    x = np.zeros(n_paths)
    times = np.full(n_paths, np.nan)
    alive = np.arange(n_paths)
    step = 0
    while alive.size:
        step += 1
        xo = x[alive]
        xn = xo * decay + sd * rng.standard_normal(alive.size)
        out = np.abs(xn) >= a
        inside = ~out
        # bridge crossing probability for paths that stayed inside at both ends
        p_up = np.exp(-2.0 * (a - xo[inside]) * (a - xn[inside]) / (sigma2 * dt))
        p_dn = np.exp(-2.0 * (a + xo[inside]) * (a + xn[inside]) / (sigma2 * dt))
        crossed = rng.random(inside.sum()) < 1.0 - (1.0 - p_up) * (1.0 - p_dn)
        out[np.nonzero(inside)[0][crossed]] = True
        done = alive[out]
        times[done] = step * dt - 0.5 * dt  # exit within the step; mid-step bias O(dt)
        x[alive] = xn
        alive = alive[~out]
        assert step <= 10**8, "OU Monte Carlo did not terminate"
    return float(times.mean()), float(times.std(ddof=1) / math.sqrt(n_paths))


OU_CASES = [(1.6, 0.0016, 0.01), (1.6, 0.0016, 0.001), (0.5, 1.0, 0.5), (-1.0, 0.5, 0.3), (4.0, 0.02, 0.2)]


@pytest.mark.parametrize("mu, sigma2, T", OU_CASES)
def test_eq52_ou_formula_vs_backward_equation(mu, sigma2, T):
    f = th.ou_exit_time(mu, sigma2, T)
    assert th.ou_exit_time_numeric(mu, sigma2, T, method="quad") == pytest.approx(f, rel=1e-9)
    assert th.ou_exit_time_numeric(mu, sigma2, T, method="bvp") == pytest.approx(f, rel=1e-7)
    # an exact-rational series agrees with mpmath
    assert _hyp2f2_exact(-mu * T / sigma2) * T / sigma2 == pytest.approx(f, rel=1e-12)
    # sanity: a sign-flipped argument would not pass this check
    if mu * T / sigma2 > 1:
        flipped = T / sigma2 * _hyp2f2_exact(+mu * T / sigma2)
        assert abs(flipped / f - 1) > 0.5


@pytest.mark.parametrize("mu, sigma2, T", [(1.6, 0.0016, 0.01), (-1.0, 0.5, 0.3)])
def test_eq52_ou_formula_vs_monte_carlo(mu, sigma2, T):
    mean, se = ou_exit_time_mc(mu, sigma2, T, n_paths=20_000, seed=12)
    assert abs(mean - th.ou_exit_time(mu, sigma2, T)) < 3 * se


def test_ou_limits_and_parameters():
    # Brownian limit mu -> 0: exit time of (-a, a) from 0 is a^2 / sigma^2
    assert th.ou_exit_time(1e-12, 2.0, 0.3) == pytest.approx(0.15, rel=1e-9)
    mu, s2 = th.ou_parameters_p1(3000, 0.1, 1e-4)
    assert mu == pytest.approx(th.omega_m(1, 0.1, 1e-4))
    # sigma^2 = (gamma/d) Var[2 E lambda lambda*] at m = 0 (Eq. 55: 48 + 4 Delta)
    rng = np.random.default_rng(13)
    lam, lams, z = rng.standard_normal((3, 1_000_000))
    delta = 0.7
    inc = -2 * (lam**2 - lams**2 - math.sqrt(delta) * z) * lam * lams
    var = inc.var()
    se = np.std((inc - inc.mean()) ** 2) / math.sqrt(inc.size)
    assert var == pytest.approx(48 + 4 * delta, abs=4 * se)
    assert th.ou_parameters_p1(100, 0.05, delta)[1] == pytest.approx(0.05 / 100 * (48 + 4 * delta))


# ---------------------------------------------------------------------------
# cross-checks with mdlib.ode (written independently by another module)
# ---------------------------------------------------------------------------

def _mdlib_ode():
    return pytest.importorskip("mdlib.ode")


def test_reference_drift_agrees_with_mdlib_ode():
    ode = _mdlib_ode()
    rng = np.random.default_rng(14)
    for p in [1, 2, 4]:
        prob = Problem(p=p, d=1000, gamma=0.3, delta=0.2)
        s = random_init(Problem(p=p, d=10, gamma=0.3), n_runs=3, seed=rng.integers(1 << 30))
        for r in range(3):
            dm, dQ, _ = ode.ode_drift(prob, s.m[r], s.Q[r])
            rm, rQ = spherical_drift(s.m[r], s.Q[r], 0.3, 0.2)
            np.testing.assert_allclose(dm, rm, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(dQ, rQ, rtol=1e-10, atol=1e-12)
        if p > 1:
            wm, wq = ode.mediocrity_rates(prob)
            assert wm == pytest.approx(th.omega_m(p, 0.3, 0.2), rel=1e-5)
            assert wq == pytest.approx(th.omega_q(p, 0.3), rel=1e-5)


@pytest.mark.parametrize("p", [2, 5])
def test_quenched_formula_vs_mdlib_ode_exit_times(p):
    """Eq. 46 per sample and averaged, against mdlib.ode.ode_exit_time on exact initial conditions."""
    ode = _mdlib_ode()
    d, delta, T = 100_000, 0.0, 0.01
    gamma = th.gamma_opt(p, delta)
    prob = Problem(p=p, d=d, gamma=gamma, delta=delta)
    s = random_init(prob, n_runs=8, seed=15)
    mu0 = d * np.sum(s.m**2, axis=1)
    tau0 = d * np.sum((s.Q - np.eye(p)) ** 2, axis=(1, 2))
    formula = th.exit_time_given_init(p, d, gamma, delta, T, mu0, tau0)
    t_ode = ode.ode_exit_time(prob, s, T, t_max=20.0)
    assert np.max(np.abs(t_ode / formula - 1)) < 0.03
    assert abs(t_ode.mean() / formula.mean() - 1) < 0.015


# ---------------------------------------------------------------------------
# mu0, tau0 of given starts (Eq. 43) and the second layer on the mediocrity manifold (App. I)
# ---------------------------------------------------------------------------

def test_mu_tau_of_random_starts():
    """mu0 = d sum_j m_j^2 and tau0 = d sum_{j != l} Q_jl^2 have the means p and p(p - 1) over
    exact random starts (m_j^2 and Q_jl^2 have mean 1/d exactly), within 4 SE, and tau0 is
    twice the sum over j < l (the form of sample_mu_tau)."""
    p, d = 4, 300
    init = random_init(Problem(p, d, 0.1), 20_000, seed=31)
    mu0, tau0 = th.mu_tau(init.m, init.Q, d)
    for x, target in ((mu0, p), (tau0, p * (p - 1))):
        assert abs(x.mean() - target) < 4 * x.std(ddof=1) / math.sqrt(x.size)
    ju, lu = np.triu_indices(p, 1)
    np.testing.assert_allclose(tau0, 2 * d * np.sum(init.Q[:, ju, lu] ** 2, axis=1), rtol=1e-13)
    with pytest.raises(ValueError, match="shape"):
        th.mu_tau(init.m[0], init.Q[0], d)


@pytest.mark.parametrize("p", [2, 5])
def test_second_layer_plateau_is_the_ode_on_the_manifold(p):
    """Started exactly at m = 0, Q = I, the ODE with a trained second layer stays there and its
    risk, mean and spread of a follow the closed form (integrate_ode: Eqs. 17, 21 with da/dt)."""
    from mdlib.ode import integrate_ode
    from mdlib.problem import make_state

    pr = Problem(p, 1000, 0.1 * p, 1e-3, train_second_layer=True)
    rng = np.random.default_rng(p)
    a0 = np.vstack([np.ones(p), rng.integers(0, 2, (2, p)).astype(float), rng.uniform(0, 2, p)])
    t = np.linspace(0, 3 * p, 41)
    ode = integrate_ode(pr, make_state(pr, np.zeros((4, p)), np.eye(p), a0), t[-1], t_save=t, rtol=1e-11, atol=1e-13)
    assert np.abs(ode.m).max() < 1e-12 and np.abs(ode.Q - np.eye(p)).max() < 1e-12  # it stays on the manifold
    R, abar, V = th.second_layer_plateau(a0, t[None, :])
    np.testing.assert_allclose(ode.excess_risk, R, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ode.a.mean(axis=2), abar, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ode.a.var(axis=2), V, rtol=1e-7, atol=1e-10)
    # the plateaus: 1 + 1/p for a = 1 at t = 0, 1 + 1/(p + 2) at the end of the relaxation
    assert R[0, 0] == pytest.approx(1 + 1 / p)
    assert th.second_layer_plateau(np.ones(p), 1e3)[0][0] == pytest.approx(1 + 1 / (p + 2), rel=1e-12)
