"""The variance decomposition (mdlib.stats) against known components, by Monte Carlo."""
import math

import numpy as np
import pytest

from mdlib.stats import (
    bootstrap,
    power_law_fit,
    variance_components,
    variance_ratio_power,
    variance_ratio_power_mc,
    variance_ratio_runs,
)


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


@pytest.mark.parametrize("n,ratio", [(20, 0.5), (100, 0.8), (300, 0.8)])
def test_variance_ratio_power_is_the_f_test_for_normal_samples(n, ratio):
    """Normal samples (kurtosis 3): the exact power of the two-sided F-test, within 0.04 (the
    normal approximation of log F, largest at small n)."""
    from scipy import stats

    f = stats.f(n - 1, n - 1)
    exact = f.sf(f.isf(0.025) * ratio**2) + f.cdf(f.ppf(0.025) * ratio**2)
    assert abs(variance_ratio_power(n, ratio) - exact) < 0.04
    assert variance_ratio_power(n, 1.0) == pytest.approx(0.05)  # no difference: the level


def test_variance_ratio_power_mc_is_the_f_test_for_normal_samples():
    """Resampling a large normal sample: the calibrated test has the F-test's power (n = 50, ratio 0.7) and its
    level, within 4 binomial SE plus 0.01 (the sample of 1e5 stands for the law)."""
    from scipy import stats

    x = np.random.default_rng(12).standard_normal(100_000)
    power = variance_ratio_power_mc(x, [50], [0.7, 1.0], n_sims=4000, seed=13)[:, 0]
    f = stats.f(49, 49)
    exact = f.sf(f.isf(0.025) * 0.7**2) + f.cdf(f.ppf(0.025) * 0.7**2)
    for pw, ref in zip(power, (exact, 0.05)):
        assert abs(pw - ref) < 4 * math.sqrt(ref * (1 - ref) / 4000) + 0.01, (pw, ref)
    with pytest.raises(ValueError, match="finite"):
        variance_ratio_power_mc([1.0, np.inf], [10], [0.5])


def test_variance_ratio_power_with_heavy_tails_by_simulation():
    """Exponential samples (kurtosis 9): the simulated power of the calibrated test, 4000 pairs of samples of
    300, against the formula within 4 binomial SE plus 0.03 (its large-n error against the F-test above is
    below that)."""
    x = np.random.default_rng(11).standard_exponential(200_000)
    power = variance_ratio_power_mc(x, [300], [0.8], n_sims=4000, seed=14)[0, 0]
    assert abs(power - variance_ratio_power(300, 0.8, kurtosis=9.0)) < 4 * math.sqrt(power * (1 - power) / 4000) + 0.03
    assert variance_ratio_power(300, 0.8, kurtosis=9.0) < variance_ratio_power(300, 0.8)  # heavy tails cost power


def test_variance_ratio_runs_inverts_the_power():
    for ratio, kurt in ((0.9, 3.0), (0.8, 7.5), (1.5, 4.0)):
        n = variance_ratio_runs(ratio, kurtosis=kurt)
        # the smallest n that reaches the power (the far tail of the test adds almost nothing)
        assert variance_ratio_power(n - 1, ratio, kurtosis=kurt) < 0.8 <= variance_ratio_power(n, ratio, kurtosis=kurt)
    # the runs grow like (kurtosis - 1)
    assert variance_ratio_runs(0.9, kurtosis=13.0) == pytest.approx(6 * variance_ratio_runs(0.9), rel=1e-2)
    for kw, match in ((dict(ratio=1.0), "equal spreads"), (dict(ratio=0.9, kurtosis=1.0), "kurtosis"),
                      (dict(ratio=0.9, power=0.01), "power"), (dict(ratio=-1.0), "ratio")):
        with pytest.raises(ValueError, match=match):
            variance_ratio_runs(**kw)
    with pytest.raises(ValueError, match="n must be"):
        variance_ratio_power(1, 0.5)


def test_bootstrap_resamples_rows_in_the_documented_order():
    """Replicate b is statistic(x[rng.integers(0, n, n)]) in order from default_rng(seed); its spread is the standard
    error (for the mean of 400 normals within 10 % of sd/sqrt(n); the bootstrap's own noise with 2000 replicates is
    ~2 %)."""
    x = np.random.default_rng(7).normal(size=(400, 3))
    boot = bootstrap(lambda a: variance_components(a), x, n_boot=5, seed=8)
    rng = np.random.default_rng(8)
    ref = [variance_components(x[rng.integers(0, 400, 400)]) for _ in range(5)]
    assert boot.shape == (5, 2) and np.array_equal(boot, np.array(ref))
    se = bootstrap(lambda a: a[:, 0].mean(), x, n_boot=2000, seed=9).std()
    assert se == pytest.approx(x[:, 0].std() / math.sqrt(400), rel=0.1)
    with pytest.raises(ValueError, match="two rows"):
        bootstrap(np.mean, [1.0])


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
