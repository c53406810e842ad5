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
