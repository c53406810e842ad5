"""The noise at mediocrity and the noisy-linear model of the exit time (mdlib.noise).

References: the exact increment covariance of mdlib.sde (an independent implementation
through generating functions), Monte Carlo averages over the fields, Eq. 52 (mdlib.theory,
through mpmath's 2F2), quadrature of Dawson's function, SGD itself (the exact chain), and
the chapters' former implementations run once (pinned values).
"""
import math

import numpy as np
import pytest
from scipy import integrate, special

import mdlib
from mdlib import noise, theory


# --------------------------------------------------------------------------- #
# the noise at mediocrity
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("p", [1, 2, 3, 5, 8])
def test_noise_variances_equal_the_exact_increment_covariance(p):
    """sigma_M^2 and sigma_Q^2 are the diagonal of the projected covariance (Eq. 54, App. G) at mediocrity."""
    for gamma, delta in ((0.05 * p, 1e-3), (0.3 * p, 0.7)):
        pb = mdlib.Problem(p, 5000, gamma, delta)
        cov = mdlib.increment_covariance(pb, np.zeros(p), projected=True)
        s_m, s_q = mdlib.noise_variances(p, gamma, delta)
        assert s_m == pytest.approx(cov[0, 0], rel=1e-10)
        if p == 1:
            assert s_q == 0.0
        else:
            assert s_q == pytest.approx(cov[p, p], rel=1e-10)  # the first off-diagonal Q_01


def test_noise_variances_p1_is_app_f_and_monte_carlo_p3():
    # p = 1: sigma_M^2 = 4 (12 + Delta), and sigma^2 = (gamma/d) sigma_M^2 is ou_parameters_p1 (App. F)
    for delta in (0.0, 1e-4, 2.5):
        s_m, _ = mdlib.noise_variances(1, 0.1, delta)
        assert s_m == pytest.approx(4 * (12 + delta), rel=1e-14)
        assert theory.ou_parameters_p1(3000, 0.1, delta)[1] == pytest.approx(0.1 / 3000 * s_m, rel=1e-14)
    # p = 3: Monte Carlo over independent standard fields (mediocrity), within 4 SE
    p, gamma, delta, n = 3, 0.6, 0.3, 2_000_000
    rng = np.random.default_rng(21)
    lam = rng.standard_normal((n, p))
    lam_s, z = rng.standard_normal((2, n))
    E = np.sum(lam**2, axis=1) / p - lam_s**2 - math.sqrt(delta) * z
    M = -2 * E * lam[:, 0] * lam_s
    Q = -4 * E * lam[:, 0] * lam[:, 1] + 4 * gamma / p * E**2 * lam[:, 0] * lam[:, 1]
    s_m, s_q = mdlib.noise_variances(p, gamma, delta)
    for x, s in ((M, s_m), (Q, s_q)):
        se = np.std(x**2) / math.sqrt(n)  # the means are exactly 0
        assert abs(np.mean(x**2) - s) < 4 * se, (np.mean(x**2), s, se)


def test_noise_variances_pinned_to_the_width_chapter():
    """The width chapter's former noise_variances, run once at p = 5, gamma = 0.25, Delta = 1e-4."""
    s_m, s_q = mdlib.noise_variances(5, 0.25, 1e-4)
    assert s_m == pytest.approx(36.480399999999996, rel=1e-14)
    assert s_q == pytest.approx(56.69505664119999, rel=1e-14)


# --------------------------------------------------------------------------- #
# the noisy-linear model
# --------------------------------------------------------------------------- #
def test_dawson_integral_by_quadrature():
    v = np.array([0.0, 0.3, 1.0, 2.5, 10.0, 80.0, 700.0])
    ref = [integrate.quad(special.dawsn, 0, x, limit=400, epsabs=1e-13, epsrel=1e-12)[0] for x in v]
    assert np.allclose(noise._dawson_integral(v), ref, rtol=1e-9, atol=1e-12)
    # beyond the table, G(v) = G(v_max) + log(v / v_max)/2: continuous and with slope 1/(2v)
    g = noise._dawson_integral(np.array([1e7 * (1 - 1e-9), 1e7, 4e7]))
    assert g[1] - g[0] == pytest.approx(0.5 * 1e-9, rel=1e-3)
    assert g[2] - g[1] == pytest.approx(0.5 * math.log(4), rel=1e-9)


def test_exact_p1_from_zero_is_eq52():
    """At m0 = 0 the Dawson-integral formula is Eq. 52 (theory.ou_exit_time, mpmath 2F2)."""
    for d, gamma, delta, T in ((3000, 0.1, 1e-4, 0.01), (500, 0.05, 1.0, 0.1), (10**6, 0.12, 0.0, 0.001)):
        mu, s2 = theory.ou_parameters_p1(d, gamma, delta)
        t = mdlib.noisy_linear_exit_time(1, d, gamma, delta, T, 0.0)
        assert t == pytest.approx(theory.ou_exit_time(mu, s2, T), rel=1e-7)


@pytest.mark.slow
def test_exact_and_simulated_p1_are_the_same_model():
    """The any-p simulation of the width chapter and the exact p = 1 formula of the escape_p1
    chapter compute the same model: at p = 1 the simulated mean (4000 noise paths per start, in 50
    independent batches whose spread gives the SE) agrees with the exact one within 4 SE plus the
    bias of monitoring the threshold at the simulation steps only (a barrier moved out by
    0.5826 sigma sqrt(dt), i.e. a delay of at most 0.5826 sigma sqrt(dt) / (omega_M b) in time)."""
    d, gamma, delta, T, dt = 3000, 0.1, 1e-4, 0.01, 0.005
    m0 = np.array([0.0, 0.004, -0.02, 0.05])
    exact = mdlib.noisy_linear_exit_time(1, d, gamma, delta, T, m0)
    n = 50
    sims = np.stack([mdlib.noisy_linear_exit_time(1, d, gamma, delta, T, m0, method="simulate", n_noise=80, dt=dt,
                                                  seed=s) for s in np.random.SeedSequence(5).spawn(n)])
    mean, se = sims.mean(axis=0), sims.std(axis=0, ddof=1) / math.sqrt(n)
    mu, s2 = theory.ou_parameters_p1(d, gamma, delta)
    b = np.sqrt(T + (1 - T) * m0**2)
    bias = 0.5826 * math.sqrt(s2 * dt) / (mu * b)
    assert np.all(np.abs(mean - exact) < 4 * se + bias), (mean, exact, se, bias)
    assert np.all(exact > 0) and np.all(np.diff(exact[1:]) < 0)  # a larger start exits earlier


def test_simulated_model_without_effective_noise_is_the_linearised_exit():
    """Far from mediocrity (m0 = 0.05 per unit at d = 1e6, a noise overlap 50 times smaller) the
    noise shifts the exit time by a relative O(s^2/(d m0^2)) ~ 1e-3: the simulation is then
    exit_time_linearized (Eq. 44 solved exactly) to within that and the step error."""
    p, d, gamma, delta, T = 4, 10**6, 0.2, 1e-3, 0.05
    m0 = np.array([[0.05, -0.05, 0.05, 0.05], [0.05, 0.0, 0.0, 0.05]])
    tau0 = np.array([0.3 * d * 12 / d, 0.0])
    sim = mdlib.noisy_linear_exit_time(p, d, gamma, delta, T, m0, tau0, n_noise=200, seed=1)
    lin = mdlib.exit_time_linearized(p, d, gamma, delta, T, d * np.sum(m0**2, axis=1), tau0)
    assert np.allclose(sim, lin, rtol=3e-3), (sim, lin)


def test_simulated_model_pinned_to_the_width_chapter():
    """The width chapter's former noisy_linear_exit, run once (seed 3, 50 paths per start)."""
    pb = mdlib.Problem(5, 3000, 0.25, 1e-4)
    m = np.array([[0.02, -0.01, 0.015, 0.0, 0.005], [0.001, 0.002, -0.03, 0.01, 0.0]])
    Q = np.eye(5) + 0.01 * (np.ones((5, 5)) - np.eye(5))
    _, tau0 = mdlib.mu_tau(m, np.stack([Q, Q]), pb.d)
    t = mdlib.noisy_linear_exit_time(5, 3000, 0.25, 1e-4, 0.01, m, tau0, seed=3, n_noise=50)
    assert np.allclose(t, [0.4458327512841068, 0.43365544688466073], rtol=1e-12, atol=0)


@pytest.mark.slow
def test_noisy_model_from_mu0_has_the_law_of_the_model_from_the_overlaps():
    """The noise is isotropic in the m_j, so the exit time depends on m(0) only through mu0: the
    model started from sqrt(mu0/d) e_1 (noisy_linear_exit_time_mu0) and from the random overlaps
    themselves have the same mean exit time per start (2000 paths each, within 4 SE of the difference);
    the noise shift is resolved (it is many SE from zero), so the test can fail."""
    p, d, gamma, delta, T = 5, 2000, 0.25, 1e-4, 0.01
    init = mdlib.random_init(mdlib.Problem(p, d, gamma, delta), 3, seed=4)
    mu0, tau0 = mdlib.mu_tau(init.m, init.Q, d)
    n, batches = 40, 50
    a = np.stack([mdlib.noisy_linear_exit_time(p, d, gamma, delta, T, init.m, tau0, n_noise=n, seed=s)
                  for s in np.random.SeedSequence(7).spawn(batches)])
    b = np.stack([mdlib.noisy_linear_exit_time_mu0(p, d, gamma, delta, T, mu0, tau0, n_noise=n, seed=s)
                  for s in np.random.SeedSequence(8).spawn(batches)])
    se = np.hypot(a.std(axis=0, ddof=1), b.std(axis=0, ddof=1)) / math.sqrt(batches)
    assert np.all(np.abs(a.mean(axis=0) - b.mean(axis=0)) < 4 * se), (a.mean(axis=0), b.mean(axis=0), se)
    shift = a.mean(axis=0) - mdlib.exit_time_linearized(p, d, gamma, delta, T, mu0, tau0)
    assert np.all(np.abs(shift) > 5 * se), (shift, se)


def test_noisy_model_from_mu0_checks_and_p1():
    t = mdlib.noisy_linear_exit_time_mu0(1, 3000, 0.1, 0.0, 0.01, [0.0, 1.5])
    assert np.allclose(t, mdlib.noisy_linear_exit_time(1, 3000, 0.1, 0.0, 0.01, [0.0, -math.sqrt(1.5 / 3000)]),
                       rtol=1e-14)
    for bad in ([-1.0], [[1.0]], [np.nan]):
        with pytest.raises(ValueError, match="mu0"):
            mdlib.noisy_linear_exit_time_mu0(2, 3000, 0.1, 0.0, 0.01, bad)


def test_exit_time_sgd_p1_decomposition_and_pins():
    d, gamma, delta, T = 3000, 0.1, 1e-4, 0.01
    m0 = np.array([0.005, -0.02, 0.1])
    t = mdlib.exit_time_sgd_p1(m0, d, gamma, delta, T)
    # the escape_p1 chapter's former lin_noise_exit_time, run once
    assert np.allclose(t, [1.304546148573172, 1.1121416425384016, 0.227092130801805], rtol=1e-12, atol=0)
    # = exact noisy-linear time + (ODE exit time - its linearisation)
    mu = theory.omega_m(1, gamma, delta)
    t_lin = np.log((T + (1 - T) * m0**2) / m0**2) / (2 * mu)
    ref = mdlib.noisy_linear_exit_time(1, d, gamma, delta, T, m0) + theory.exit_time_ode_p1(m0, gamma, delta, T) - t_lin
    assert np.allclose(t, ref, rtol=1e-13)
    # far from mediocrity the noise does not matter: the ODE exit time, up to O(1/(k m0)^2)
    k2 = theory.ou_parameters_p1(d, gamma, delta)
    k2 = k2[0] / k2[1]
    assert abs(mdlib.exit_time_sgd_p1(0.05, d, gamma, delta, T) - theory.exit_time_ode_p1(0.05, gamma, delta, T)) \
        < 2 / (mu * k2 * 0.05**2)
    assert isinstance(mdlib.exit_time_sgd_p1(0.05, d, gamma, delta, T), float)


@pytest.mark.slow
def test_exit_time_sgd_p1_predicts_sgd():
    """The linear-noise prediction against 400 SGD runs (exact chain) from one start at p = 1:
    within 3 SE plus the model error 1/(T d) (finite-d drift and the m-dependence of the noise,
    which the model neglects)."""
    d, gamma, delta, T = 3000, 0.1, 1e-4, 0.01
    pb = mdlib.Problem(1, d, gamma, delta)
    m0 = 0.4 / math.sqrt(d)
    te = mdlib.sgd_exit_times(pb, mdlib.make_state(pb, m0).repeat(400), T, 20.0, seed=4)
    pred = mdlib.exit_time_sgd_p1(m0, d, gamma, delta, T)
    se = te.std(ddof=1) / math.sqrt(te.size)
    assert abs(te.mean() - pred) < 3 * se + 1 / (T * d), (te.mean(), se, pred)
    # and the ODE alone is excluded: the noise shifts the exit by many SE from this small start
    assert abs(te.mean() - theory.exit_time_ode_p1(m0, gamma, delta, T)) > 5 * se


def test_noisy_linear_validation():
    with pytest.raises(ValueError, match="method"):
        mdlib.noisy_linear_exit_time(2, 100, 0.1, 0.0, 0.01, np.zeros((1, 2)), method="exact")
    with pytest.raises(ValueError, match="method"):
        mdlib.noisy_linear_exit_time(1, 100, 0.1, 0.0, 0.01, 0.0, method="euler")
    with pytest.raises(ValueError, match="m0"):
        mdlib.noisy_linear_exit_time(2, 100, 0.1, 0.0, 0.01, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="tau0"):
        mdlib.noisy_linear_exit_time(2, 100, 0.1, 0.0, 0.01, np.zeros((1, 2)), -1.0)
    with pytest.raises(ValueError, match="gamma"):
        mdlib.noisy_linear_exit_time(1, 100, 0.2, 0.0, 0.01, 0.0)  # omega_M < 0: no escape
    with pytest.raises(ValueError, match="m0"):
        mdlib.exit_time_sgd_p1(0.0, 100, 0.1, 0.0, 0.01)
    with pytest.raises(ValueError, match="p"):
        mdlib.noise_variances(0, 0.1, 0.0)
