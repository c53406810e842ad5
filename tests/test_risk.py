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


@pytest.mark.parametrize("p", [1, 3, 10])
def test_correlated_network_is_far_from_mediocrity(p):
    """m_j = alpha_j exactly with 0.5 <= |m_j| <= 1, off-diagonal overlaps of order one, Q_jj != 1,
    a teacher on the sphere, a second layer of both signs (over several seeds); reproducible."""
    d = 12
    signs = []
    for s in range(20):
        w_star, W, a = mdlib.correlated_network(p, d, seed=s)
        m, Q = W @ w_star / d, W @ W.T / d
        assert w_star @ w_star == pytest.approx(d)
        assert np.all((np.abs(m) >= 0.5) & (np.abs(m) <= 1.0))
        if p > 1:
            assert np.abs(Q[~np.eye(p, dtype=bool)]).max() > 0.2
        assert not np.allclose(np.diag(Q), 1.0)
        assert np.all((a >= -1) & (a <= 2))
        signs.append(np.sign(a))
    assert {-1.0, 1.0} <= set(np.concatenate(signs).tolist())
    a1, a2 = mdlib.correlated_network(p, d, seed=np.random.default_rng(7)), mdlib.correlated_network(p, d, seed=7)
    for x, y in zip(a1, a2):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("p", [1, 3, 10])
def test_population_risk_with_a_equal_1_is_the_matrix_form_eq27(p):
    """With a = 1 and rho = 1, Eq. 6 is (3 + Delta)/2 - (Tr Q + 2|m|^2)/p + ((Tr Q)^2 + 2 Tr Q^2)/(2p^2)."""
    w_star, W, _ = mdlib.correlated_network(p, 12, seed=p)
    m, Q = W @ w_star / 12, W @ W.T / 12
    tr = np.trace(Q)
    eq27 = (3 + 0.5) / 2 - (tr + 2 * m @ m) / p + (tr**2 + 2 * np.trace(Q @ Q)) / (2 * p**2)
    assert mdlib.population_risk(m, Q, np.ones(p), 0.5) == pytest.approx(eq27, rel=1e-12)


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


def test_population_risks_name_shapes_that_do_not_match():
    """Eq. 6 and a link's risk check their overlaps the same way (mdlib.risk._overlap_arrays)."""
    from mdlib.links import Link
    from mdlib.links import population_risk as link_risk

    good = (np.zeros(2), np.eye(2), np.ones(2))
    for m, Q, a in [(np.zeros(2), np.eye(3), np.ones(2)), (np.zeros(2), np.eye(2), np.ones(3))]:
        with pytest.raises(ValueError, match=r"shapes do not match: m \(2,\), Q \(\d, \d\), a \(\d,\)"):
            mdlib.population_risk(m, Q, a, 0.0)
        with pytest.raises(ValueError, match="shapes do not match"):
            link_risk(Link.hermite(3, normalized=True), m, Q, a, 0.0)
    assert np.isfinite(mdlib.population_risk(*good, 0.0))
    assert np.isfinite(link_risk(Link.hermite(3, normalized=True), *good, 0.0))
