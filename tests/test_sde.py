"""The SDE (mdlib.sde): exact increment covariance (Eq. 54) against Monte
Carlo and the paper's Eq. 55, the App. F noise, the Itô terms of App. D.2,
and the Euler–Maruyama integrator against the ODE and against exact p = 1
projected SGD."""
import functools

import numpy as np
import pytest
from _states import random_state  # noqa: E402  (shared with the other dynamics tests)

from mdlib import Exit, Problem, exit_time, make_state, random_init
from mdlib.moments import displacement_moment_series, displacement_weights, field_covariance
from mdlib.ode import integrate_ode, ode_drift
from mdlib.sde import (
    finite_d_drift_correction,
    increment_covariance,
    increment_labels,
    increment_mean,
    integrate_sde,
    ito_correction,
    ito_correction_size,
    p1_covariance_eq55,
    projected_covariance,
)


def increment_samples(rng, problem, m, Q, a, n):
    """Samples of (M_j, 𝒬_jl (j <= l), A_j) in the order of increment_labels."""
    p, gamma = problem.p, problem.gamma
    lam = rng.multivariate_normal(np.zeros(p + 1), field_covariance(m, Q), size=n)
    lj, ls = lam[:, :p], lam[:, p]
    E = (lj**2 @ a) / p - ls**2 - np.sqrt(problem.delta) * rng.standard_normal(n)
    cols = [-2 * a[j] * E * lj[:, j] * ls for j in range(p)]
    for j, l in zip(*np.triu_indices(p)):
        cols.append(-2 * (a[j] + a[l]) * E * lj[:, j] * lj[:, l]
                    + 4 * gamma / p * a[j] * a[l] * E**2 * lj[:, j] * lj[:, l])
    if problem.train_second_layer:
        cols += [-E * lj[:, j] ** 2 for j in range(p)]
    return np.stack(cols, axis=1)


# --------------------------------------------------------------------------- #
# increment moments
# --------------------------------------------------------------------------- #
def test_labels():
    pr = Problem(2, 100, 0.1, train_second_layer=True)
    assert increment_labels(pr) == [("m", 0), ("m", 1), ("Q", 0, 0), ("Q", 0, 1), ("Q", 1, 1), ("a", 0), ("a", 1)]
    assert increment_labels(pr, projected=True) == [("m", 0), ("m", 1), ("Q", 0, 1), ("a", 0), ("a", 1)]


@pytest.mark.parametrize("spherical,train", [(True, False), (False, False), (True, True), (False, True)])
def test_increment_mean_is_the_ode_drift(spherical, train):
    rng = np.random.default_rng(0)
    p = 3
    pr = Problem(p, 100, 0.3, 0.2, spherical=spherical, train_second_layer=train)
    m, Q, a = random_state(rng, p, spherical)
    dm, dQ, da = ode_drift(pr, m, Q, a)
    iu = np.triu_indices(p, 1 if spherical else 0)
    packed = np.concatenate([dm, dQ[iu]] + ([da] if train else []))
    if spherical:
        assert np.allclose(increment_mean(pr, m, Q, a, projected=True), packed)
    else:
        assert np.allclose(increment_mean(pr, m, Q, a), packed)


def test_kernel_covariance_matches_numpy_series():
    rng = np.random.default_rng(1)
    p, gamma, delta = 3, 0.2, 0.4
    pr = Problem(p, 100, gamma, delta, spherical=False, train_second_layer=True)
    m, Q, a = random_state(rng, p, False)
    C = increment_covariance(pr, m, Q, a)
    m2, m4 = displacement_moment_series(field_covariance(m, Q), displacement_weights(a), delta)
    coefs = []
    for lab in increment_labels(pr):
        if lab[0] == "m":
            coefs.append(((lab[1], p), -2 * a[lab[1]], 0.0))
        elif lab[0] == "Q":
            j, l = lab[1], lab[2]
            coefs.append(((j, l), -2 * (a[j] + a[l]), 4 * gamma / p * a[j] * a[l]))
        else:
            coefs.append(((lab[1], lab[1]), -1.0, 0.0))
    mean = np.array([c1 * m2[1][u] + c2 * m2[2][u] for u, c1, c2 in coefs])
    ref = np.array([[c1 * d1 * m4[2][u + v] + (c1 * d2 + c2 * d1) * m4[3][u + v] + c2 * d2 * m4[4][u + v]
                     for v, d1, d2 in coefs] for u, c1, c2 in coefs]) - np.outer(mean, mean)
    assert np.allclose(C, ref, rtol=1e-12, atol=1e-9)
    assert np.allclose(C, C.T)


@pytest.mark.parametrize("train", [False, True])
def test_covariance_matches_monte_carlo(train):
    """Sample covariance of the increments at a random Ω, p = 2, within 4 SE."""
    rng = np.random.default_rng(2 + train)
    p = 2
    pr = Problem(p, 100, 0.3, 0.5, spherical=False, train_second_layer=train)
    m, Q, a = random_state(rng, p, False)
    C = increment_covariance(pr, m, Q, a)
    X = increment_samples(rng, pr, m, Q, a, 600_000)
    Xc = X - X.mean(axis=0)
    for i in range(C.shape[0]):
        for j in range(i, C.shape[0]):
            prod = Xc[:, i] * Xc[:, j]
            se = prod.std() / np.sqrt(prod.size)
            assert abs(prod.mean() - C[i, j]) < 4 * se, (i, j, prod.mean(), C[i, j], se)


def test_projected_covariance_is_psd_and_consistent():
    rng = np.random.default_rng(4)
    for p in (1, 2, 3):
        pr = Problem(p, 100, 0.4, 0.1)
        m, Q, a = random_state(rng, p, True)
        Cp = increment_covariance(pr, m, Q, a, projected=True)
        assert np.linalg.eigvalsh(Cp).min() > -1e-9 * np.abs(Cp).max()
        # direct: covariance of the linearly projected samples
        X = increment_samples(rng, pr, m, Q, a, 50)
        C = increment_covariance(pr, m, Q, a)
        iq = {lab[1:]: k for k, lab in enumerate(increment_labels(pr)) if lab[0] == "Q"}
        rows = []
        for lab in increment_labels(pr, projected=True):
            row = np.zeros(C.shape[0])
            if lab[0] == "m":
                j = lab[1]
                row[j] = 1
                row[iq[(j, j)]] -= m[j] / 2
            else:
                j, l = lab[1], lab[2]
                row[iq[(j, l)]] = 1
                row[iq[(j, j)]] -= Q[j, l] / 2
                row[iq[(l, l)]] -= Q[j, l] / 2
            rows.append(row)
        P = np.array(rows)
        assert np.allclose(Cp, P @ C @ P.T)
        del X


def test_app_f_noise_at_mediocrity():
    """App. F: at m = 0 the projected p = 1 noise variance is γ/(pd)(48 + 4Δ)."""
    for delta in (0.0, 1e-3, 0.7):
        pr = Problem(1, 3000, 0.1, delta)
        Cp = increment_covariance(pr, [0.0], projected=True)
        assert pr.dt * Cp[0, 0] == pytest.approx(pr.dt * (48 + 4 * delta))
        assert increment_mean(pr, [0.0], projected=True)[0] == 0.0


def test_eq55_var_M_matches():
    rng = np.random.default_rng(5)
    for _ in range(10):
        m, gamma, delta = rng.uniform(-1, 1), rng.uniform(0.01, 0.5), rng.uniform(0, 2)
        C = increment_covariance(Problem(1, 100, gamma, delta), [m])
        assert C[0, 0] == pytest.approx(p1_covariance_eq55(m, gamma, delta)[0, 0])


def test_erratum_eq55_gamma_terms():
    """Eq. 55's Cov[M, 𝒬] and Var[𝒬] are the exact covariance with γ → γ/2
    (every γ^k coefficient is 2^k times too small), i.e. they correspond to
    a weight 2γ/p instead of 4γ/p on the E² term of 𝒬 — the weight that
    Eq. 7 (checked in test_ode.py) requires.  Var[M] has no γ and is right."""
    rng = np.random.default_rng(6)
    for _ in range(10):
        m, gamma, delta = rng.uniform(-1, 1), rng.uniform(0.05, 0.5), rng.uniform(0, 2)
        exact = increment_covariance(Problem(1, 100, gamma, delta), [m])
        paper = p1_covariance_eq55(m, gamma, delta)
        halved = increment_covariance(Problem(1, 100, gamma / 2, delta), [m])
        assert np.allclose(paper, halved, rtol=1e-10, atol=1e-8)
        assert not np.allclose(paper[1, 1], exact[1, 1], rtol=1e-3)
    # the γ-free parts agree: at γ → 0 the two coincide
    exact0 = increment_covariance(Problem(1, 100, 1e-12, 0.3), [0.4])
    assert np.allclose(exact0, p1_covariance_eq55(0.4, 1e-12, 0.3), rtol=1e-9)


# --------------------------------------------------------------------------- #
# Itô terms of the projection (App. D.2, G.2)
# --------------------------------------------------------------------------- #
def test_erratum_appD2_ito_uses_var_Q():
    """The second-order remainder of the normalised step, averaged, is
    ``-½E[M𝒬] + ⅜ m E[𝒬²]``: the m-term carries the second moment of 𝒬
    (App. D.2 prints ``dq² = (γ/d) σ_m²``; it is ``σ_Q²``).  The Itô
    correction keeps the covariance part of these second moments."""
    rng = np.random.default_rng(7)
    pr = Problem(1, 100, 0.2, 0.3)
    m = 0.5
    X = increment_samples(rng, pr, np.array([m]), np.eye(1), np.ones(1), 400_000)
    M, q = X[:, 0], X[:, 1]
    h = 1e-5
    rem = ((m + h * M) / np.sqrt(1 + h * q) - m - h * (M - m * q / 2)) / h**2
    mean, se = rem.mean(), rem.std() / np.sqrt(rem.size)
    C = increment_covariance(pr, [m])
    mu = increment_mean(pr, [m])
    right = -0.5 * (C[0, 1] + mu[0] * mu[1]) + 0.375 * m * (C[1, 1] + mu[1] ** 2)
    wrong = -0.5 * (C[0, 1] + mu[0] * mu[1]) + 0.375 * m * (C[0, 0] + mu[0] ** 2)
    assert abs(mean - right) < 4 * se
    assert abs(mean - wrong) > 6 * se
    corr = ito_correction(pr, [m])
    assert corr[0] == pytest.approx(pr.dt * (-0.5 * C[0, 1] + 0.375 * m * C[1, 1]))


def test_ito_correction_p2_formula():
    rng = np.random.default_rng(8)
    pr = Problem(2, 500, 0.2, 0.1)
    m, Q, a = random_state(rng, 2, True)
    C = increment_covariance(pr, m, Q, a)
    i = {lab: k for k, lab in enumerate(increment_labels(pr))}
    jj, ll, jl = i[("Q", 0, 0)], i[("Q", 1, 1)], i[("Q", 0, 1)]
    corr = ito_correction(pr, m, Q, a)
    assert corr[2] == pytest.approx(pr.dt * (Q[0, 1] / 8 * (3 * C[jj, jj] + 3 * C[ll, ll] + 2 * C[jj, ll])
                                             - 0.5 * (C[jl, jj] + C[jl, ll])))
    assert corr[1] == pytest.approx(pr.dt * (-0.5 * C[1, ll] + 0.375 * m[1] * C[ll, ll]))
    assert np.all(ito_correction(Problem(2, 500, 0.2, 0.1, spherical=False), m, Q, a) == 0)


def test_ito_correction_size_scales_as_one_over_d():
    s1 = ito_correction_size(Problem(1, 1000, 0.1, 1e-3), [0.05])
    s2 = ito_correction_size(Problem(1, 2000, 0.1, 1e-3), [0.05])
    assert s1 == pytest.approx(2 * s2)
    assert s1 < 1e-2


# --------------------------------------------------------------------------- #
# integration
# --------------------------------------------------------------------------- #
def test_integrate_sde_reproducible_and_shapes():
    pr = Problem(2, 1000, 0.2, 1e-3)
    init = random_init(pr, 1, seed=1).repeat(6)
    t_save = np.linspace(0, 1, 11)
    a = integrate_sde(pr, init, 1.0, dt=1e-2, seed=5, t_save=t_save)
    b = integrate_sde(pr, init, 1.0, dt=1e-2, seed=5, t_save=t_save)
    c = integrate_sde(pr, init, 1.0, dt=1e-2, seed=6, t_save=t_save)
    assert np.array_equal(a.m, b.m) and not np.array_equal(a.m, c.m)
    assert a.method == "sde" and a.m.shape == (6, 11, 2) and a.Q.shape == (6, 11, 2, 2)
    assert np.all(np.diagonal(a.Q, axis1=2, axis2=3) == 1.0)  # spherical: exactly on the sphere
    assert np.allclose(a.Q, np.swapaxes(a.Q, 2, 3))
    assert np.array_equal(a.m[:, 0], init.m) and not a.diverged.any()


def test_sde_small_noise_follows_the_ode():
    """At huge d the noise vanishes and Euler–Maruyama tracks the ODE."""
    for pr in (Problem(2, 10**12, 0.2, 1e-3), Problem(2, 10**12, 0.1, 1e-3, spherical=False, train_second_layer=True)):
        init = random_init(Problem(2, 1000, 0.2), 3, seed=2)
        init = make_state(pr, init.m, init.Q, init.a) if pr.spherical else make_state(pr, init.m, init.Q * 1.1, init.a)
        t_save = np.linspace(0, 3, 7)
        sde = integrate_sde(pr, init, 3.0, dt=1e-3, seed=0, t_save=t_save)
        ode = integrate_ode(pr, init, 3.0, t_save=t_save)
        assert np.allclose(sde.m, ode.m, rtol=2e-2, atol=2e-4)
        assert np.allclose(sde.Q, ode.Q, rtol=2e-2, atol=2e-4)
        assert np.allclose(sde.a, ode.a, rtol=2e-2, atol=2e-4)


def _exact_projected_sgd_p1(rng, d, gamma, delta, m0, n_runs, t):
    """Exact p = 1 projected SGD in its sufficient statistic m, vectorised
    over runs: with (λ*, λ) = (g1, m g1 + sqrt(1 - m²) g2), |x|² =
    (g1² + g2² + χ²_{d-2})/d, c = 2Eλ (E = f - y),
    m' = (m - (γ/d) c λ*)/sqrt(q'),  q' = 1 - 2(γ/d) c λ + (γ²/d) c² |x|²."""
    m = np.full(n_runs, m0)
    for _ in range(int(round(t / (gamma / d)))):
        g1, g2 = rng.standard_normal((2, n_runs))
        x2 = (g1**2 + g2**2 + rng.chisquare(d - 2, n_runs)) / d
        lam = m * g1 + np.sqrt(1 - m**2) * g2
        E = lam**2 - g1**2 - np.sqrt(delta) * rng.standard_normal(n_runs)
        c = 2 * E * lam
        q = 1 - 2 * (gamma / d) * c * lam + (gamma**2 / d) * c**2 * x2
        m = (m - (gamma / d) * c * g1) / np.sqrt(q)
    return m


@functools.cache
def _sgd_reference(d, gamma, delta, m0, n_runs, t, seed):
    return _exact_projected_sgd_p1(np.random.default_rng(seed), d, gamma, delta, m0, n_runs, t)


def _mean_var_se(x):
    n = x.size
    v = x.var(ddof=1)
    m4 = np.mean((x - x.mean()) ** 4)
    return x.mean(), np.sqrt(v / n), v, np.sqrt(max(m4 - v**2, 0) / n)


@pytest.mark.parametrize("ito", [False, True])
def test_sde_matches_exact_sgd_distribution_p1(ito):
    """p = 1, d = 500, γ = 0.1, Δ = 1e-3, m0 = 1/sqrt(d): mean and variance of
    m(0.5) from the SDE and from exact projected SGD agree within 4 SE
    (2000 runs each)."""
    d, gamma, delta, t, R = 500, 0.1, 1e-3, 0.5, 2000
    m0 = 1 / np.sqrt(d)
    pr = Problem(1, d, gamma, delta)
    sde = integrate_sde(pr, make_state(pr, [m0]).repeat(R), t, dt=1e-3, seed=11 + ito,
                        t_save=np.array([0.0, t]), ito_correction=ito)
    sgd = _sgd_reference(d, gamma, delta, m0, R, t, 12)
    a_mean, a_se, a_var, a_vse = _mean_var_se(sde.m[:, -1, 0])
    b_mean, b_se, b_var, b_vse = _mean_var_se(sgd)
    assert abs(a_mean - b_mean) < 4 * np.hypot(a_se, b_se)
    assert abs(a_var - b_var) < 4 * np.hypot(a_vse, b_vse)
    # and the spread is the OU one of App. F to leading order: Var ≈ σ²(e^{2μt} - 1)/(2μ)
    mu = 4 * (1 - 6 * gamma) - 2 * gamma * delta
    sigma2 = pr.dt * (48 + 4 * delta)
    assert a_var == pytest.approx(sigma2 * np.expm1(2 * mu * t) / (2 * mu), rel=0.15)


def test_sde_divergence_is_flagged():
    pr = Problem(1, 1000, 2.0, 0.0, spherical=False)
    init = make_state(pr, [0.0], [[1.0]]).repeat(3)
    with pytest.warns(RuntimeWarning, match="diverged"):
        tr = integrate_sde(pr, init, 2.0, dt=1e-2, seed=0, t_save=np.linspace(0, 2, 5))
    assert tr.diverged.all() and np.isnan(tr.m[:, -1]).all() and np.isfinite(tr.m[:, 0]).all()


def test_integrate_sde_validation():
    pr = Problem(1, 100, 0.1)
    init = make_state(pr, [0.1])
    with pytest.raises(ValueError, match="dt"):
        integrate_sde(pr, init, 1.0, dt=0.0)
    with pytest.raises(ValueError, match="t_max"):
        integrate_sde(pr, init, -1.0)
    # one t_save rule for SGD, ODE and SDE (mdlib._validate.check_t_save): strictly increasing
    # times in [0, t_max]; a grid that does not start at 0 is allowed (it used to be refused here)
    with pytest.raises(ValueError, match="t_save"):
        integrate_sde(pr, init, 1.0, t_save=[0.5, 0.2])
    with pytest.raises(ValueError, match="t_save"):
        integrate_sde(pr, init, 1.0, t_save=[0.0, 2.0])
    with pytest.raises(ValueError, match="exit"):
        integrate_sde(pr, init, 1.0, exit=0.01)
    with pytest.raises(ValueError, match="init"):
        integrate_sde(pr, None, 1.0)
    with pytest.raises(ValueError, match="hidden units"):
        integrate_sde(Problem(2, 100, 0.1), init, 1.0)
    with pytest.raises(ValueError, match="ito_correction"):
        integrate_sde(pr, init, 1.0, ito_correction="yes")
    with pytest.raises(ValueError, match="projected"):
        increment_covariance(Problem(1, 100, 0.1, spherical=False), [0.1], projected=True)
    with pytest.raises(ValueError, match="m must"):
        increment_covariance(pr, [0.1, 0.2])


def test_finite_d_correction_matches_monte_carlo():
    """The |x|²-field correlation term: E[P (4γ/p) a_j a_l E² λ_j λ_l (|x|² - 1)]
    with |x|² d = |g|² + χ²(d - p - 1), λ = C g, against the moment formula."""
    rng = np.random.default_rng(13)
    p, d, gamma, delta = 2, 50, 0.2, 0.1
    pr = Problem(p, d, gamma, delta)
    m, Q, a = random_state(rng, p, True)
    corr = finite_d_drift_correction(pr, m, Q, a)
    n = 1_000_000
    C = np.linalg.cholesky(field_covariance(m, Q))
    g = rng.standard_normal((n, p + 1))
    lam = g @ C.T
    lj, ls = lam[:, :p], lam[:, p]
    E = (lj**2 @ a) / p - ls**2 - np.sqrt(delta) * rng.standard_normal(n)
    x2m1 = (np.sum(g**2, axis=1) + rng.chisquare(d - p - 1, n) - d) / d
    dq = lambda j, l: 4 * gamma / p * a[j] * a[l] * E**2 * lj[:, j] * lj[:, l] * x2m1  # noqa: E731
    samples = np.stack([-m[0] / 2 * dq(0, 0), -m[1] / 2 * dq(1, 1),
                        dq(0, 1) - Q[0, 1] / 2 * (dq(0, 0) + dq(1, 1))], axis=1)
    mean = samples.mean(axis=0)
    se = samples.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(mean - corr) < 4 * se), (mean, corr, se)
    # the p = 1 closed form near mediocrity: the growth rate of m moves by -144 γ/d (Δ = 0)
    pr1 = Problem(1, 500, 0.1, 0.0)
    assert finite_d_drift_correction(pr1, [1e-4])[0] / 1e-4 == pytest.approx(-144 * 0.1 / 500, rel=1e-6)
    assert ito_correction(pr1, [1e-4])[0] / 1e-4 == pytest.approx(0.00307, rel=1e-2)


# --------------------------------------------------------------------------- #
# per-run random streams and stop at the exit
# --------------------------------------------------------------------------- #
def test_sde_run_depends_only_on_seed_and_index():
    """Every run draws from its own Generator spawned from the seed: the first runs of a
    batch are bitwise the same whatever the batch size, and an int seed and the
    equivalent SeedSequence give the same paths."""
    pr = Problem(2, 1000, 0.2, 1e-3)
    init = random_init(pr, 5, seed=1)
    t_save = np.linspace(0, 1, 11)
    big = integrate_sde(pr, init, 1.0, dt=1e-2, seed=7, t_save=t_save)
    small = integrate_sde(pr, init.run(slice(0, 2)), 1.0, dt=1e-2, seed=np.random.SeedSequence(7), t_save=t_save)
    assert np.array_equal(big.m[:2], small.m) and np.array_equal(big.Q[:2], small.Q)
    assert not np.array_equal(big.m[0], big.m[1])


def test_sde_exit_is_the_crossing_of_the_saved_path():
    """With exit=, the run stops at the first Euler step where the gap is <= 0, the crossing
    interpolated linearly between steps: the same as exit_time on the same path saved at
    every step (same seed, same steps), for both criteria; saved values after the exit are NaN."""
    cases = ((Problem(1, 500, 0.1, 1e-3), "risk"), (Problem(2, 500, 0.2, 1e-3, train_second_layer=True), "max_m"))
    for pr, crit in cases:
        init = random_init(pr, 6, seed=2)
        t_max, dt = 4.0, 1e-2
        every = np.linspace(0, t_max, 401)  # every Euler step
        path = integrate_sde(pr, init, t_max, dt=dt, seed=3, t_save=every)
        ex = Exit(0.05, crit)
        stop = integrate_sde(pr, init, t_max, dt=dt, seed=3, t_save=(), exit=ex)
        assert stop.t.size == 0 and stop.exit == ex
        ref = exit_time(path, 0.05, crit)
        assert np.all(np.isfinite(ref)) and np.allclose(stop.t_exit, ref, rtol=0, atol=1e-9)
        part = integrate_sde(pr, init, t_max, dt=dt, seed=3, t_save=every[::10], exit=ex)
        after = every[::10][None, :] > part.t_exit[:, None]
        assert after.any() and np.all(np.isnan(part.m[after])) and np.all(np.isnan(part.risk[after]))
        assert np.allclose(part.m[~after], path.m[:, ::10][~after], rtol=0, atol=1e-9)


def test_sde_exit_inf_zero_and_nan():
    pr = Problem(1, 1000, 0.1, 0.0)
    # m = 1: no excess risk to lose, exited at 0; m small and a short horizon: not exited, inf
    tr = integrate_sde(pr, make_state(pr, [[1.0], [1e-3]]), 0.1, dt=1e-2, seed=0, t_save=(), exit=Exit(0.5))
    assert tr.t_exit[0] == 0.0 and tr.t_exit[1] == np.inf
    # plain SGD with a large learning rate blows up before m grows (tiny noise at huge d): nan
    pr = Problem(1, 10**9, 2.0, 0.0, spherical=False)
    with pytest.warns(RuntimeWarning, match="diverged"):
        tr = integrate_sde(pr, make_state(pr, [0.0], [[1.0]]).repeat(3), 2.0, dt=1e-2, seed=0, t_save=(),
                           exit=Exit(0.5, "max_m"))
    assert tr.diverged.all() and np.all(np.isnan(tr.t_exit))


def test_projected_covariance():
    """P Σ Pᵀ of the exact Σ is the projected covariance; at p = 1 it is Var[M - (m/2) Q]."""
    rng = np.random.default_rng(3)
    for p in (1, 2, 3):
        pr = Problem(p, 1000, 0.2, 1e-3)
        m, Q, a = random_state(rng, p, True)
        cov = increment_covariance(pr, m, Q)
        np.testing.assert_allclose(projected_covariance(pr, cov, m, Q), increment_covariance(pr, m, Q, projected=True),
                                   rtol=1e-12, atol=1e-12)
    pr = Problem(1, 1000, 0.1, 1e-4)
    c = p1_covariance_eq55(0.3, 0.1, 1e-4)
    assert projected_covariance(pr, c, 0.3)[0, 0] == pytest.approx(c[0, 0] - 0.3 * c[0, 1] + 0.09 / 4 * c[1, 1])
    with pytest.raises(ValueError, match="cov"):
        projected_covariance(pr, np.eye(3), 0.3)
    with pytest.raises(ValueError, match="projected"):
        projected_covariance(Problem(1, 1000, 0.1, spherical=False), c, 0.3)
