"""The brute-force Monte Carlo risk (mdlib.risk.population_risk_mc) against Eq. 6."""
import numpy as np
import pytest

import mdlib


@pytest.mark.parametrize("p", [1, 3, 10])
def test_population_risk_mc_is_eq6(p):
    """Random teachers and correlated students of random norms with second layers of both signs
    in d = 12 (the setup chapter's test): Eq. 6 from the overlaps equals the Monte Carlo mean of
    the loss within 4 SE."""
    rng = np.random.default_rng(p)
    d = 12
    w_star = rng.standard_normal(d)
    w_star *= np.sqrt(d) / np.linalg.norm(w_star)
    W = rng.uniform(-1, 1, (p, 1)) * w_star + rng.standard_normal(d) * 0.6 + 0.7 * rng.standard_normal((p, d))
    a = rng.uniform(-1, 2, p)
    mean, se = mdlib.population_risk_mc(w_star, W, a, 0.4, 200_000, seed=p)
    formula = float(mdlib.population_risk(W @ w_star / d, W @ W.T / d, a, 0.4))
    assert abs(mean - formula) < 4 * se, (mean, se, formula)
    assert mdlib.population_risk_mc(w_star, W, a, 0.4, 200_000, seed=p) == (mean, se)  # reproducible


def test_population_risk_mc_validation():
    with pytest.raises(ValueError, match="shapes"):
        mdlib.population_risk_mc(np.ones(4), np.ones((2, 3)), np.ones(2), 0.0, 100)


def test_excess_risk_bounds_the_global_minimum_conditions():
    """On the sphere, with M = (1/p) sum_j a_j v_j v_j^T - v* v*^T (v = w/sqrt(d)), the excess risk of
    Eq. 6 is [(tr M)^2 + 2 |M|_F^2] / 2; hence |abar - 1| <= sqrt(2 R_ex) and
    |(1/p) sum_j a_j m_j^2 - 1| <= sqrt(R_ex) (used by the second-layer chapter after the escape)."""
    rng = np.random.default_rng(5)
    p, d, delta = 6, 40, 1e-3
    for scale in (1.0, 0.1, 0.01):  # far from and close to a global minimum
        w_star = np.sqrt(d) * np.eye(d)[0]
        W = w_star + scale * rng.normal(size=(p, d)) * np.sqrt(d)
        W *= np.sqrt(d) / np.linalg.norm(W, axis=1, keepdims=True)
        a = 1 + scale * rng.normal(size=p)
        m, Q = W @ w_star / d, W @ W.T / d
        R_ex = mdlib.population_risk(m, Q, a, delta) - delta / 2
        M = (a[:, None, None] * np.einsum("ji,jk->jik", W, W)).mean(axis=0) / d - np.outer(w_star, w_star) / d
        assert R_ex == pytest.approx((np.trace(M) ** 2 + 2 * np.sum(M**2)) / 2, rel=1e-10)
        assert abs(a.mean() - 1) <= np.sqrt(2 * R_ex) + 1e-12
        assert abs(np.mean(a * m**2) - 1) <= np.sqrt(R_ex) + 1e-12
