"""The variance decomposition (mdlib.stats) against known components, by Monte Carlo."""
import math

import numpy as np
import pytest

from mdlib.stats import variance_components


def test_variance_components_are_unbiased():
    """x_ik = A_i + e_ik with Var A = 2, Var e = 3: over 4000 data sets of 20 groups x 4 runs,
    the mean estimates are within 4 SE of (3, 2) (the estimators are unbiased at any size)."""
    rng = np.random.default_rng(3)
    est = np.array([variance_components(rng.normal(0, math.sqrt(2), (20, 1)) + rng.normal(0, math.sqrt(3), (20, 4)))
                    for _ in range(4000)])
    mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / math.sqrt(len(est))
    assert np.all(np.abs(mean - [3.0, 2.0]) < 4 * se), (mean, se)


def test_variance_components_identity_and_validation():
    rng = np.random.default_rng(4)
    x = rng.gamma(2.0, size=(30, 7))
    within, between = variance_components(x)
    assert within == pytest.approx(np.mean(x.var(axis=1, ddof=1)))
    assert between == pytest.approx(x.mean(axis=1).var(ddof=1) - within / 7)
    # no group effect: between is 0 on average, and can be negative
    with pytest.raises(ValueError, match="groups"):
        variance_components(np.ones(5))
    with pytest.raises(ValueError, match="groups"):
        variance_components(np.ones((1, 5)))
