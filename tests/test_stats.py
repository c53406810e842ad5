"""The variance decomposition (mdlib.stats) against known components, by Monte Carlo."""
import math

import numpy as np
import pytest

from mdlib.stats import power_law_fit, variance_components


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


def test_bonferroni_threshold_controls_the_family_wise_rate():
    """Over 2000 families of 50 standard normal z-scores, max |z| exceeds the threshold at level 0.05
    in a fraction within 4 binomial SE of at most 0.05 (Bonferroni is conservative, about 0.049 here)."""
    from mdlib.stats import bonferroni_z

    rng = np.random.default_rng(5)
    z = rng.standard_normal((2000, 50))
    frac = np.mean(np.abs(z).max(axis=1) > bonferroni_z(50, 0.05))
    assert frac < 0.05 + 4 * math.sqrt(0.05 * 0.95 / 2000)
    assert frac > 0.03  # and not far below: one threshold for 50 tests, not a blunt one
    assert bonferroni_z(1, 0.05) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ValueError, match="n_tests"):
        bonferroni_z(0)
    with pytest.raises(ValueError, match="level"):
        bonferroni_z(3, 1.5)


def test_zscores_with_zero_standard_errors():
    from mdlib.stats import zscores

    z = zscores([[0.3, 0.0], [1e-13, -2e-3]], [[0.1, 0.0], [0.0, 0.0]])
    assert z.tolist() == [[pytest.approx(3.0), 0.0], [0.0, np.inf]]
    assert zscores(-0.5, 0.25) == -2.0
    with pytest.raises(ValueError, match="se"):
        zscores(1.0, -1.0)


def test_participation_ratio_limits_and_axes():
    from mdlib.stats import participation_ratio
    p = 20
    assert participation_ratio(np.full(p, 0.7)) == pytest.approx(1.0)  # homogeneous
    assert participation_ratio(np.eye(p)[3]) == pytest.approx(1 / p)  # one unit
    a = np.zeros(p)
    a[:5] = 2.0  # five units share the output equally
    assert participation_ratio(a) == pytest.approx(5 / p)
    # scale invariant, and <= 1 (Cauchy-Schwarz), along any axis
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.5, (3, p, 4))
    pr = participation_ratio(x, axis=1)
    assert pr.shape == (3, 4) and np.all(pr <= 1 + 1e-12)
    np.testing.assert_allclose(participation_ratio(3 * x, axis=1), pr)
    np.testing.assert_allclose(pr[1, 2], participation_ratio(x[1, :, 2]))
    assert np.isnan(participation_ratio(np.zeros(p)))
    with pytest.raises(ValueError, match="unit"):
        participation_ratio(np.zeros((2, 0)))


def test_power_law_fit_recovers_the_exponent_with_a_calibrated_se():
    """y_i = 3 x_i^1.7 (1 + 0.05 N(0, 1)): over 3000 data sets the exponents scatter by their stated
    SE (the mean z-score within 4 SE of 0, their spread 1 within 5 %)."""
    rng = np.random.default_rng(5)
    x = np.array([16.0, 32.0, 64.0, 128.0])
    fits = np.array([power_law_fit(x, 3 * x**1.7 * (1 + 0.05 * rng.standard_normal(4)), 0.05 * 3 * x**1.7)
                     for _ in range(3000)])
    z = (fits[:, 0] - 1.7) / fits[:, 1]
    assert abs(z.mean()) < 4 / math.sqrt(3000)
    assert abs(z.std() - 1) < 0.05
    e, se = power_law_fit(x, 3 * x**1.7, 0.01 * x**1.7)  # exact data: the exponent exactly
    assert abs(e - 1.7) < 1e-12 and se > 0
    for bad in [([1.0, 1.0], [1.0, 2.0], [0.1, 0.1]), ([1.0, 2.0], [1.0, -2.0], [0.1, 0.1]),
                ([1.0, 2.0], [1.0, 2.0], [0.1, 0.0]), ([1.0, 2.0], [1.0, 2.0, 3.0], [0.1, 0.1])]:
        with pytest.raises(ValueError):
            power_law_fit(*bad)
