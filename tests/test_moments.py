"""Exact Gaussian moments (mdlib.moments, paper App. C): Isserlis, App. C's
identities, the matrix formulas and the generating-function series, each
checked against the previous one and against Monte Carlo."""
import itertools
import math

import numpy as np
import pytest

from mdlib import Problem, population_risk
from mdlib.moments import (
    app_c_cases,
    displacement_moment_series,
    displacement_moments,
    displacement_weights,
    field_covariance,
    isserlis,
    moment2,
    moment4_aabb,
    moment4_abcc,
    moment6_abccdd,
    moment_monte_carlo,
)


def random_cov(rng, n, rank=None):
    A = rng.standard_normal((n, rank or n + 2))
    return A @ A.T / A.shape[1]


def brute_displacement_moment(omega, b, delta, k, idx):
    """E[E^k Π λ_idx] with E = λᵀ diag(b) λ - sqrt(Δ) z, by expanding E^k
    and applying Isserlis to every monomial (the reference)."""
    n = len(b)
    total = 0.0
    for j in range(k + 1):  # j factors of the quadratic form, k - j of the noise
        zp = k - j
        if zp % 2:
            continue
        z_moment = math.prod(range(zp - 1, 0, -2)) if zp else 1
        coef = math.comb(k, j) * delta ** (zp / 2) * z_moment
        s = 0.0
        for tup in itertools.product(range(n), repeat=j):
            s += math.prod(b[t] for t in tup) * isserlis(omega, list(idx) + [t for t in tup for _ in (0, 1)])
        total += coef * s
    return total


def mc_mean(samples):
    return samples.mean(), samples.std() / np.sqrt(samples.size)


# --------------------------------------------------------------------------- #
# Isserlis
# --------------------------------------------------------------------------- #
def test_isserlis_univariate_double_factorials():
    for k in range(0, 13):
        expected = 0.0 if k % 2 else math.prod(range(k - 1, 0, -2)) * 2.0 ** (k // 2)
        assert isserlis([[2.0]], [0] * k) == pytest.approx(expected)


def test_isserlis_counts_perfect_matchings():
    # with every covariance entry 1, the sum over matchings is (2k-1)!!
    ones = np.ones((4, 4))
    for k in range(1, 7):
        idx = [i % 4 for i in range(2 * k)]
        assert isserlis(ones, idx) == math.prod(range(2 * k - 1, 0, -2))


def test_isserlis_small_cases_by_hand():
    rng = np.random.default_rng(0)
    S = random_cov(rng, 4)
    assert isserlis(S, [0, 1]) == pytest.approx(S[0, 1])
    assert isserlis(S, [0, 1, 2, 3]) == pytest.approx(S[0, 1] * S[2, 3] + S[0, 2] * S[1, 3] + S[0, 3] * S[1, 2])
    assert isserlis(S, [0, 1, 2]) == 0.0
    assert isserlis(S, []) == 1.0


def test_isserlis_matches_monte_carlo():
    rng = np.random.default_rng(1)
    S = random_cov(rng, 3)
    x = rng.multivariate_normal(np.zeros(3), S, size=1_000_000)
    for idx in ([0, 0, 1, 2], [0, 1, 1, 1, 2, 2], [2, 2, 2, 2]):
        mean, se = mc_mean(np.prod(x[:, idx], axis=1))
        assert abs(mean - isserlis(S, idx)) < 4 * se


def test_isserlis_validation():
    with pytest.raises(ValueError, match="indices"):
        isserlis(np.eye(2), [0, 2])
    with pytest.raises(ValueError, match="indices"):
        isserlis(np.eye(2), [0, 1.0])
    with pytest.raises(ValueError, match="cov"):
        isserlis(np.ones((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="at most"):
        isserlis(np.eye(2), [0] * 26)


# --------------------------------------------------------------------------- #
# App. C identities
# --------------------------------------------------------------------------- #
def test_appendix_c_identities_match_isserlis():
    rng = np.random.default_rng(2)
    W = random_cov(rng, 4)
    for a, b in itertools.product(range(4), repeat=2):
        assert moment2(W, a, b) == pytest.approx(isserlis(W, [a, b]))
        assert moment4_aabb(W, a, b) == pytest.approx(isserlis(W, [a, a, b, b]))
    for a, b, c in itertools.product(range(4), repeat=3):
        assert moment4_abcc(W, a, b, c) == pytest.approx(isserlis(W, [a, b, c, c]))
    for a, b, c, d in itertools.product(range(4), repeat=4):
        assert moment6_abccdd(W, a, b, c, d) == pytest.approx(isserlis(W, [a, b, c, c, d, d]))


def test_appendix_c_identities_match_monte_carlo():
    rng = np.random.default_rng(3)
    W = random_cov(rng, 4)
    x = rng.multivariate_normal(np.zeros(4), W, size=1_000_000)
    checks = [
        (moment4_aabb(W, 0, 3), x[:, 0] ** 2 * x[:, 3] ** 2),
        (moment4_abcc(W, 0, 1, 2), x[:, 0] * x[:, 1] * x[:, 2] ** 2),
        (moment6_abccdd(W, 0, 1, 2, 3), x[:, 0] * x[:, 1] * x[:, 2] ** 2 * x[:, 3] ** 2),
    ]
    for exact, s in checks:
        mean, se = mc_mean(s)
        assert abs(mean - exact) < 4 * se


def test_app_c_cases_cover_every_index_choice_and_equal_isserlis():
    """160 cases for four fields (the setup chapter's table), each identity's value equal to the
    brute-force Isserlis sum of its indices; every (alpha <= beta, gamma <= delta) choice appears once."""
    omega = random_cov(np.random.default_rng(6), 4)
    cases = app_c_cases(omega)
    assert len(cases) == 160
    assert len({(name, idx) for name, idx, _ in cases}) == 160
    for _name, idx, value in cases:
        assert value == pytest.approx(isserlis(omega, idx), rel=1e-12, abs=1e-13)
    names = [c[0] for c in cases]
    assert [names.count(n) for n in dict.fromkeys(names)] == [10, 10, 40, 100]
    with pytest.raises(ValueError, match="single"):
        app_c_cases(np.stack([omega, omega]))


def test_moment_monte_carlo_is_unbiased_with_honest_errors():
    """Over 40 independent estimates of a sixth moment, the z-scores against Isserlis have mean square
    within 4 SE (sqrt(2/40)) of 1, and every one is below the Bonferroni threshold; reproducible."""
    from mdlib.stats import bonferroni_z

    omega = random_cov(np.random.default_rng(7), 3)
    idx = (0, 1, 2, 2, 1, 1)
    exact = isserlis(omega, idx)
    rng = np.random.default_rng(8)
    z = np.array([(lambda m, se: (m - exact) / se)(*moment_monte_carlo(omega, idx, 20_000, seed=rng))
                  for _ in range(40)])
    assert abs(np.mean(z**2) - 1) < 4 * math.sqrt(2 / 40)
    assert np.abs(z).max() < bonferroni_z(40)
    assert moment_monte_carlo(omega, idx, 100, seed=3) == moment_monte_carlo(omega, idx, 100, seed=3)
    with pytest.raises(ValueError, match="indices"):
        moment_monte_carlo(omega, (0, 3), 100)


def test_identities_broadcast_over_stacks():
    rng = np.random.default_rng(4)
    Ws = np.stack([random_cov(rng, 3) for _ in range(5)])
    out = moment6_abccdd(Ws, 0, 1, 2, 2)
    assert out.shape == (5,)
    assert out[3] == pytest.approx(moment6_abccdd(Ws[3], 0, 1, 2, 2))


# --------------------------------------------------------------------------- #
# the displacement E = λᵀBλ - sqrt(Δ) z
# --------------------------------------------------------------------------- #
def test_field_covariance_and_weights_layout():
    m = np.array([0.1, -0.2])
    Q = np.array([[1.0, 0.3], [0.3, 1.0]])
    W = field_covariance(m, Q)
    assert np.allclose(W, [[1, 0.3, 0.1], [0.3, 1, -0.2], [0.1, -0.2, 1]])
    assert np.allclose(displacement_weights([1.0, 3.0]), [0.5, 1.5, -1.0])
    with pytest.raises(ValueError, match="Q"):
        field_covariance(m, np.eye(3))


@pytest.mark.parametrize("p", [1, 2, 3])
def test_matrix_formulas_match_isserlis(p):
    rng = np.random.default_rng(10 + p)
    W = random_cov(rng, p + 1)
    b = rng.standard_normal(p + 1)
    delta = 0.37
    S1, S2 = displacement_moments(W, b, delta)
    for a, c in itertools.product(range(p + 1), repeat=2):
        assert S1[a, c] == pytest.approx(brute_displacement_moment(W, b, delta, 1, [a, c]), abs=1e-12)
        assert S2[a, c] == pytest.approx(brute_displacement_moment(W, b, delta, 2, [a, c]), abs=1e-11)


def test_matrix_formulas_match_monte_carlo():
    rng = np.random.default_rng(5)
    p, delta = 3, 0.5
    a = rng.uniform(0.5, 1.5, p)
    m = rng.uniform(-0.4, 0.4, p)
    A = rng.standard_normal((p, p))
    Q = 0.5 * np.eye(p) + A @ A.T / (2 * p)
    W = field_covariance(m, Q)
    S1, S2 = displacement_moments(W, displacement_weights(a), delta)
    lam = rng.multivariate_normal(np.zeros(p + 1), W, size=1_000_000)
    z = rng.standard_normal(lam.shape[0])
    E = (lam[:, :p] ** 2 @ a) / p - lam[:, p] ** 2 - np.sqrt(delta) * z
    for i, j in [(0, p), (1, 2), (2, 2), (p, p)]:
        for k, S in ((1, S1), (2, S2)):
            mean, se = mc_mean(E**k * lam[:, i] * lam[:, j])
            assert abs(mean - S[i, j]) < 4 * se


def test_matrix_formulas_vectorise_over_runs():
    rng = np.random.default_rng(6)
    Ws = np.stack([random_cov(rng, 3) for _ in range(4)])
    bs = rng.standard_normal((4, 3))
    S1, S2 = displacement_moments(Ws, bs, 0.2)
    s1, s2 = displacement_moments(Ws[2], bs[2], 0.2)
    assert np.allclose(S1[2], s1) and np.allclose(S2[2], s2)


def test_risk_is_half_mean_square_displacement():
    """Eq. 6 equals E[E²]/2 = (τ₁² + 2τ₂ + Δ)/2, checked by Isserlis too."""
    rng = np.random.default_rng(7)
    p, delta = 3, 0.3
    a = rng.uniform(0.5, 1.5, p)
    m = rng.uniform(-0.5, 0.5, p)
    A = rng.standard_normal((p, p))
    Q = A @ A.T / p
    W = field_covariance(m, Q)
    b = displacement_weights(a)
    ee = brute_displacement_moment(W, b, delta, 2, [])
    tau1 = b @ np.diag(W)
    tau2 = b @ (W**2) @ b
    assert ee == pytest.approx(tau1**2 + 2 * tau2 + delta)
    assert population_risk(m, Q, a, delta) == pytest.approx(ee / 2)


@pytest.mark.parametrize("p", [1, 2])
def test_series_matches_isserlis(p):
    rng = np.random.default_rng(20 + p)
    n = p + 1
    W = random_cov(rng, n)
    b = rng.standard_normal(n)
    delta = 0.21
    m2, m4 = displacement_moment_series(W, b, delta, kmax=4)
    for k in range(5):
        for idx in itertools.product(range(n), repeat=2):
            assert m2[(k,) + idx] == pytest.approx(brute_displacement_moment(W, b, delta, k, idx), rel=1e-10, abs=1e-10)
    quads = list(itertools.combinations_with_replacement(range(n), 4))
    for k in range(5):
        for idx in quads:
            ref = brute_displacement_moment(W, b, delta, k, idx)
            assert m4[(k,) + idx] == pytest.approx(ref, rel=1e-10, abs=1e-9)


def test_series_is_symmetric_and_consistent_with_matrix_formulas():
    rng = np.random.default_rng(8)
    W = random_cov(rng, 4)
    b = rng.standard_normal(4)
    m2, m4 = displacement_moment_series(W, b, 0.4)
    S1, S2 = displacement_moments(W, b, 0.4)
    assert np.allclose(m2[0], W) and np.allclose(m2[1], S1) and np.allclose(m2[2], S2)
    for perm in itertools.permutations(range(4)):
        assert np.allclose(m4, np.transpose(m4, (0,) + tuple(1 + q for q in perm)))


def test_series_singular_covariance():
    """Ω of rank one (w = w*, m = 1): no inverse needed, still exact."""
    W = field_covariance([1.0], [[1.0]])
    b = displacement_weights([1.0])
    m2, m4 = displacement_moment_series(W, b, 0.0)
    # E = λ² - λ*² = 0 identically when λ = λ*
    assert np.allclose(m2[1:], 0, atol=1e-12) and np.allclose(m4[1:], 0, atol=1e-12)
    b2 = np.array([0.7, -1.3])
    m2, m4 = displacement_moment_series(W, b2, 0.1)
    for idx in [(0, 1, 1, 0), (0, 0, 0, 0)]:
        assert m4[(4,) + idx] == pytest.approx(brute_displacement_moment(W, b2, 0.1, 4, idx))


def test_series_twelfth_order_moments_match_monte_carlo():
    rng = np.random.default_rng(9)
    p, delta = 2, 0.3
    a = np.array([1.0, 0.6])
    W = field_covariance([0.3, -0.2], [[1.0, 0.25], [0.25, 1.0]])
    m2, m4 = displacement_moment_series(W, displacement_weights(a), delta)
    lam = rng.multivariate_normal(np.zeros(3), W, size=1_000_000)
    E = (lam[:, :p] ** 2 @ a) / p - lam[:, p] ** 2 - np.sqrt(delta) * rng.standard_normal(lam.shape[0])
    for k, idx in [(2, (0, 2, 0, 2)), (3, (0, 1, 0, 1)), (4, (0, 1, 1, 2)), (4, (0, 0, 1, 1))]:
        mean, se = mc_mean(E**k * np.prod(lam[:, list(idx)], axis=1))
        assert abs(mean - m4[(k,) + idx]) < 4 * se


def test_moment_validation():
    with pytest.raises(ValueError, match="b must have length"):
        displacement_moments(np.eye(3), np.ones(2))
    with pytest.raises(ValueError, match="delta"):
        displacement_moments(np.eye(2), np.ones(2), -1.0)
    with pytest.raises(ValueError, match="kmax"):
        displacement_moment_series(np.eye(2), np.ones(2), 0.0, kmax=9)
    with pytest.raises(ValueError, match="omega"):
        displacement_moments(np.full((2, 2), np.nan), np.ones(2))


def test_series_gives_app_f_noise_at_mediocrity():
    # the series is what the SDE uses at p = 1 mediocrity: Var(M) = 48 + 4Δ (App. F)
    delta = 0.25
    W = field_covariance([0.0], [[1.0]])
    m2, m4 = displacement_moment_series(W, displacement_weights([1.0]), delta)
    var_M = 4 * m4[2, 0, 1, 0, 1] - (2 * m2[1, 0, 1]) ** 2
    assert var_M == pytest.approx(48 + 4 * delta)
    assert Problem(1, 10, 0.1, delta).dt == pytest.approx(0.01)
