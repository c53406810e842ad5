"""Exit-time moments of the 1-d diffusion by the Dynkin quadrature (mdlib.diffusion).

References: closed forms (Eq. 52 for the Ornstein-Uhlenbeck process, Brownian motion),
the SDE integrated by Euler-Maruyama (mdlib.integrate_sde with exit=), and the
stochasticity chapter's former implementation run once (pinned values).
"""
import math

import numpy as np
import pytest

import mdlib
from mdlib.diffusion import DiffusionP1, dynkin_tables


def test_tables_reproduce_eq52_for_the_ou_process():
    """Linear drift, constant noise: E[t | 0] = J(sqrt T) is Eq. 52 (theory.ou_exit_time) to 1e-5."""
    d, gamma, delta, T = 3000, 0.1, 1e-4, 0.01
    mu, sigma2 = mdlib.ou_parameters_p1(d, gamma, delta)
    x = np.linspace(0.0, 1.2 * np.sqrt(T), 20001)
    J, _ = dynkin_tables(x, mu * x, np.full_like(x, sigma2))
    for T_ in (T / 10, T / 3, T):
        assert np.interp(np.sqrt(T_), x, J) == pytest.approx(mdlib.ou_exit_time(mu, sigma2, T_), rel=1e-5)


def test_tables_reproduce_brownian_motion_moments():
    """b = 0, sigma^2 = 1 on (-a, a): E[t | x] = a^2 - x^2 and E[t^2 | x] = (5a^4 - 6a^2x^2 + x^4)/3."""
    a = 0.7
    x = np.linspace(0.0, a, 20001)
    J, L = dynkin_tables(x, np.zeros_like(x), np.ones_like(x))
    x0 = np.array([0.0, 0.2, 0.5])
    Ja, J0 = np.interp(a, x, J), np.interp(x0, x, J)
    La, L0 = np.interp(a, x, L), np.interp(x0, x, L)
    assert np.allclose(Ja - J0, a**2 - x0**2, rtol=1e-8)
    assert np.allclose(2 * (Ja * (Ja - J0) - La + L0), (5 * a**4 - 6 * a**2 * x0**2 + x0**4) / 3, rtol=1e-7)


def test_diffusion_p1_pinned_to_the_stochasticity_chapter():
    """The stochasticity chapter's former Diffusion class, run once at its defaults."""
    dif = DiffusionP1(mdlib.Problem(1, 3000, 0.1, 1e-4), 0.13)
    mean, var = dif.moments(np.array([0.0, 0.02]), 0.01)
    assert np.allclose(mean, [1.3190371153225242, 1.1120885130238214], rtol=1e-12, atol=0)
    assert np.allclose(var, [0.46129506591655867, 0.4318222278279946], rtol=1e-12, atol=0)
    # the variance rate is (gamma/d) Var[dm], Var[dm] = 48 + 4 Delta at m = 0 (App. F)
    assert dif.s2[0] == pytest.approx(0.1 / 3000 * (48 + 4e-4), rel=1e-12)


@pytest.mark.slow
def test_diffusion_p1_against_the_sde():
    """Mean and variance of the exit time from a fixed start: 600 SDE runs (Euler-Maruyama,
    dt = 1e-3, stopped at their exits) against the exact moments of the diffusion, within
    4 SE (plus, for the mean, the delay of monitoring the barrier at the steps only)."""
    d, gamma, delta, T, dt = 3000, 0.1, 1e-4, 0.01, 1e-3
    pb = mdlib.Problem(1, d, gamma, delta)
    m0 = 0.6 / math.sqrt(d)
    dif = DiffusionP1(pb, 1.3 * math.sqrt(T))
    mean, var = dif.moments(m0, T)
    tr = mdlib.integrate_sde(pb, mdlib.make_state(pb, m0).repeat(600), 30.0, dt=dt, seed=9, t_save=(),
                             exit=mdlib.Exit(T))
    te = tr.t_exit
    assert np.all(np.isfinite(te))
    bias = float(dif.monitoring_bias(math.sqrt(T + (1 - T) * m0**2), dt))
    assert 0 < bias < 0.01
    se = te.std(ddof=1) / math.sqrt(te.size)
    assert abs(te.mean() - mean) < 4 * se + bias, (te.mean(), se, mean, bias)
    v = te.var(ddof=1)
    v_se = math.sqrt(np.mean((te - te.mean()) ** 4) - v**2) / math.sqrt(te.size)
    assert abs(v - var) < 4 * v_se, (v, v_se, var)


def test_monitoring_bias_scales_as_sqrt_dt():
    dif = DiffusionP1(mdlib.Problem(1, 3000, 0.1, 1e-4), 0.13)
    b1, b4 = dif.monitoring_bias(0.1, 1e-3), dif.monitoring_bias(0.1, 4e-3)
    assert b1 > 0 and b4 / b1 == pytest.approx(2.0, rel=1e-2)


def test_diffusion_validation():
    with pytest.raises(ValueError, match="p = 1"):
        DiffusionP1(mdlib.Problem(2, 3000, 0.1), 0.1)
    with pytest.raises(ValueError, match="x_max"):
        DiffusionP1(mdlib.Problem(1, 3000, 0.1), 1.5)
    dif = DiffusionP1(mdlib.Problem(1, 3000, 0.1), 0.1, n_grid=201, n_sigma=11)
    with pytest.raises(ValueError, match="beyond the grid"):
        dif.moments(0.0, 0.5)
    with pytest.raises(ValueError, match="T"):
        dif.moments(0.0, 1.5)
    with pytest.raises(ValueError, match="s2"):
        dynkin_tables(np.linspace(0, 1, 5), np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="grid"):
        dynkin_tables(np.linspace(1, 2, 5), np.zeros(5), np.ones(5))


def test_random_start_exit_averages_the_conditional_moments():
    """random_start_exit is DiffusionP1.moments and the ODE's closed form averaged over exact samples of m0."""
    pb = mdlib.Problem(1, 3000, 0.1, 1e-4)
    r = mdlib.diffusion.random_start_exit(pb, 0.01, 5000, seed=4)
    mu0, _ = mdlib.sample_mu_tau(1, 3000, 5000, seed=4)
    m0 = np.sqrt(mu0 / 3000)
    u, v = r.diffusion.moments(m0, 0.01)
    t_ode = mdlib.exit_time_ode_p1(m0, 0.1, 1e-4, 0.01)
    assert (r.mean, r.within, r.between, r.ode_mean, r.ode_var) == (u.mean(), v.mean(), u.var(), t_ode.mean(),
                                                                     t_ode.var())
    assert r.shift == r.mean - r.ode_mean
    assert r.diffusion.x[-1] >= np.sqrt(0.01 + 0.99 * m0.max() ** 2)  # the grid reaches every exit level
    with pytest.raises(ValueError, match="T must be"):
        mdlib.diffusion.random_start_exit(pb, 1.0)


def test_random_start_exit_reaches_the_linear_picture_at_large_d():
    """At large d the noise acts as a Gaussian kick of the start, z0 -> z0 + s xi (App. F linearised):
    the mean shift tends to -log(1 + s^2)/(2 mu) and the ODE's variance to pi^2/(8 mu^2) (Var log chi^2_1
    = pi^2/2); with 2e5 samples the Monte Carlo errors are ~2e-3 (shift) and ~1 % (variance)."""
    d, gamma, delta = 10**6, 0.1, 1e-4
    mu, sigma2 = mdlib.ou_parameters_p1(d, gamma, delta)
    s2 = d * sigma2 / (2 * mu)
    r = mdlib.diffusion.random_start_exit(mdlib.Problem(1, d, gamma, delta), 0.01, seed=5)
    assert r.shift == pytest.approx(-math.log1p(s2) / (2 * mu), abs=0.005)
    assert r.ode_var == pytest.approx(math.pi**2 / (8 * mu**2), rel=0.02)
    assert r.within + r.between == pytest.approx(r.ode_var, rel=0.02)  # same total variance (both log chi^2_1)
