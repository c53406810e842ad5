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


# --------------------------------------------------------------------------- fits (escape_p1)
def test_line_fit_slope_and_its_error():
    """Exact data give the slope exactly; the SE is that of weighted least squares with known errors, and a
    Monte Carlo over noisy data sets has the stated spread (within 5 %)."""
    from mdlib.stats import line_fit

    x, se = np.log([1e3, 1e4, 1e5, 1e6]), np.array([0.02, 0.02, 0.04, 0.08])
    b, b_se = line_fit(x, 0.5 + 0.3 * x, se)
    assert b == pytest.approx(0.3, rel=1e-12)
    w = 1 / se**2
    assert b_se == pytest.approx(1 / math.sqrt(np.sum(w * (x - np.sum(w * x) / w.sum()) ** 2)), rel=1e-10)
    rng = np.random.default_rng(5)
    slopes = [line_fit(x, 0.5 + 0.3 * x + rng.normal(0, se), se)[0] for _ in range(4000)]
    assert np.std(slopes, ddof=1) == pytest.approx(b_se, rel=0.05)
    with pytest.raises(ValueError, match="se"):
        line_fit(x, x, np.zeros(4))
    with pytest.raises(ValueError, match="length"):
        line_fit(x[:2], x[:2], se[:2])


def test_weighted_mean():
    from mdlib.stats import weighted_mean

    m, s = weighted_mean([1.0, 2.0, 4.0], [1.0, 1.0, 1.0])
    assert (m, s) == pytest.approx((7 / 3, 1 / math.sqrt(3)))
    m, s = weighted_mean([1.0, 3.0], [0.5, 1.0])  # weights 4 and 1
    assert (m, s) == pytest.approx((1.4, 1 / math.sqrt(5)))
    with pytest.raises(ValueError, match="se"):
        weighted_mean([1.0], [0.0])


def test_parabola_vertex():
    from mdlib.stats import parabola_vertex

    x = np.linspace(0.4, 1.6, 7)
    assert parabola_vertex(x, 3 - 2 * (x - 1.1) ** 2) == pytest.approx(1.1, rel=1e-12)
    # 1/s of Eq. 10 is a parabola in gamma with its vertex at gamma_opt = 1/(12 + Delta) (App. E.4)
    g = x / 13.0
    assert parabola_vertex(g, g * (4 - 26 * g)) == pytest.approx(1 / 13, rel=1e-10)
    with pytest.raises(ValueError, match="line"):
        parabola_vertex(x, 2 * x)
    with pytest.raises(ValueError, match="length"):
        parabola_vertex(x[:2], x[:2])
