r"""Small statistical estimators used by the chapters."""
from __future__ import annotations

import numpy as np

__all__ = ["variance_components", "bonferroni_z", "zscores", "participation_ratio", "variance_ratio_power",
           "variance_ratio_runs", "variance_ratio_power_mc", "bootstrap", "power_law_fit", "line_fit",
           "weighted_mean", "parabola_vertex"]


def variance_components(x):
    r"""One-way analysis of variance: the two terms of the law of total variance.

    For ``x[i, k]``, run ``k`` of group ``i`` (e.g. the exit times of ``n``
    SGD runs from each of ``g`` random starts),

    .. math::

        \mathrm{Var}(x) = \underbrace{\mathbb{E}[\mathrm{Var}(x\mid i)]}_{\text{within}}
            + \underbrace{\mathrm{Var}(\mathbb{E}[x\mid i])}_{\text{between}} ,

    estimated without bias by the mean of the within-group sample variances
    and by the sample variance of the group means minus ``within / n``.

    Parameters
    ----------
    x : array_like, shape (g, n)
        ``g >= 2`` groups of ``n >= 2`` runs.

    Returns
    -------
    within, between : float

    Examples
    --------
    >>> import numpy as np
    >>> from mdlib.stats import variance_components
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(0, 2, (400, 1)) + rng.normal(0, 1, (400, 50))  # between 4, within 1
    >>> [round(v, 1) for v in variance_components(x)]
    [1.0, 4.0]
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"x must have shape (groups, runs) with at least 2 of each, got {x.shape}")
    within = float(x.var(axis=1, ddof=1).mean())
    between = float(x.mean(axis=1).var(ddof=1) - within / x.shape[1])
    return within, between


def bonferroni_z(n_tests, level=1e-3):
    r"""Family-wise threshold for ``n_tests`` two-sided z-tests (Bonferroni).

    If every z-score is standard normal, ``P(max |z| > bonferroni_z(n)) <= level``:

    .. math:: z_{\rm thr} = \Phi^{-1}\Big(1 - \frac{\rm level}{2 n}\Big).

    Examples
    --------
    >>> from mdlib.stats import bonferroni_z
    >>> round(bonferroni_z(1, 0.05), 3), round(bonferroni_z(160), 2)
    (1.96, 4.52)
    """
    from scipy.stats import norm

    from ._validate import check_int, check_real

    n_tests = check_int("n_tests", n_tests, 1)
    level = check_real("level", level, positive=True)
    if level >= 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(norm.isf(level / (2 * n_tests)))


def zscores(diff, se, atol=1e-12):
    r"""``diff / se`` entrywise, for differences whose standard error may be exactly 0.

    Where ``se == 0`` (a quantity that is exact sample by sample, such as the
    gradient at ``w*`` without label noise) the z-score is 0 if
    ``|diff| <= atol`` (rounding) and ``inf`` otherwise, so that a real
    difference never hides behind a zero standard error.

    Examples
    --------
    >>> from mdlib.stats import zscores
    >>> zscores([0.2, 0.0, 1e-3], [0.1, 0.0, 0.0]).tolist()
    [2.0, 0.0, inf]
    """
    diff, se = np.broadcast_arrays(np.asarray(diff, dtype=float), np.asarray(se, dtype=float))
    if np.any(se < 0):
        raise ValueError("se must be >= 0")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, diff / se, np.where(np.abs(diff) <= atol, 0.0, np.inf))


def participation_ratio(a, axis=-1):
    r"""How evenly the output is shared among the units: ``(Σ_j a_j)² / (p Σ_j a_j²)``.

    It is 1 for a homogeneous second layer (all ``a_j`` equal), ``k/p`` when
    ``k`` of the ``p`` units share the output equally and the others are
    switched off (``a_j = 0``), so ``1/p`` for a single unit (App. I asks
    whether the trained ``a`` becomes sparse or stays homogeneous).

    Parameters
    ----------
    a : array_like, shape (..., p, ...)
        Second layers; the units run along ``axis``.
    axis : int
        The axis of the units.

    Returns
    -------
    ndarray or float
        The shape of ``a`` without ``axis``; ``nan`` where ``a`` is all zero.

    Examples
    --------
    >>> from mdlib.stats import participation_ratio
    >>> float(participation_ratio([1.0, 1.0, 1.0, 1.0])), float(participation_ratio([2.0, 2.0, 0.0, 0.0]))
    (1.0, 0.5)
    """
    a = np.asarray(a, dtype=float)
    if a.ndim < 1 or a.shape[axis] < 1:
        raise ValueError(f"a must have at least one unit along axis {axis}, got shape {a.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return a.sum(axis=axis) ** 2 / (a.shape[axis] * (a**2).sum(axis=axis))


def _ratio_args(ratio, kurtosis, level):
    from ._validate import check_real

    ratio = check_real("ratio", ratio, positive=True)
    kurtosis = check_real("kurtosis", kurtosis)
    if not kurtosis > 1:
        raise ValueError(f"kurtosis must be > 1 (the fourth standardised moment), got {kurtosis}")
    level = check_real("level", level, positive=True)
    if level >= 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return ratio, kurtosis, level


def variance_ratio_power(n, ratio, kurtosis=3.0, level=0.05):
    r"""Power of the two-sided test of equal spreads from ``n`` runs of each of two samples.

    The test compares ``L = log(s_a²/s_b²)`` (sample variances) with its
    large-sample standard error ``sqrt(2(κ - 1)/n)``, where ``κ`` is the
    kurtosis (fourth standardised moment) of the law: ``Var(s²) ≈ σ⁴(κ - 1)/n``
    (delta method; ``κ = 3`` for a normal law, where this is the normal
    approximation of the F-test).  If the spreads differ by ``ratio = σ_b/σ_a``,

    .. math::

        \text{power} = \Phi\big(|2\log\rho|/\mathrm{se} - z_{1-\alpha/2}\big)
            + \Phi\big(-|2\log\rho|/\mathrm{se} - z_{1-\alpha/2}\big),
        \qquad \mathrm{se} = \sqrt{2(\kappa - 1)/n} .

    Heavy tails (large ``κ``) make sample spreads noisy: the runs needed
    grow like ``κ - 1`` (:func:`variance_ratio_runs`).

    Parameters
    ----------
    n : int or array_like
        Runs per sample.
    ratio : float
        ``σ_b / σ_a`` (1: equal spreads; then the power is ``level``).
    kurtosis : float
        ``κ = E[(x - μ)⁴]/σ⁴`` of the law (``> 1``), the same for both samples.
    level : float
        Level of the test, in ``(0, 1)``.

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> from mdlib.stats import variance_ratio_power
    >>> round(float(variance_ratio_power(10, 0.5)), 2), round(float(variance_ratio_power(10, 0.5, kurtosis=8)), 2)
    (0.59, 0.22)
    """
    from scipy.stats import norm

    ratio, kurtosis, level = _ratio_args(ratio, kurtosis, level)
    n = np.asarray(n, dtype=float)
    if np.any(~(n >= 2)):
        raise ValueError("n must be >= 2")
    effect = abs(2 * np.log(ratio)) / np.sqrt(2 * (kurtosis - 1) / n)
    z = norm.isf(level / 2)
    out = norm.cdf(effect - z) + norm.cdf(-effect - z)
    return float(out) if out.ndim == 0 else out


def variance_ratio_runs(ratio, kurtosis=3.0, level=0.05, power=0.8):
    r"""Runs per sample for the test of :func:`variance_ratio_power` to reach ``power``.

    .. math:: n = \frac{2(\kappa - 1)\,(z_{1-\alpha/2} + z_{\rm power})^2}{(2\log\rho)^2}

    (the far tail of the two-sided test neglected), rounded up.

    Examples
    --------
    >>> from mdlib.stats import variance_ratio_runs
    >>> variance_ratio_runs(0.9), variance_ratio_runs(0.9, kurtosis=8)
    (708, 2475)
    """
    import math

    from scipy.stats import norm

    from ._validate import check_real

    ratio, kurtosis, level = _ratio_args(ratio, kurtosis, level)
    power = check_real("power", power, positive=True)
    if not level < power < 1:
        raise ValueError(f"power must be in (level, 1), got {power}")
    if ratio == 1:
        raise ValueError("equal spreads (ratio = 1) cannot be detected")
    n = 2 * (kurtosis - 1) * (norm.isf(level / 2) + norm.ppf(power)) ** 2 / (2 * math.log(ratio)) ** 2
    return max(2, math.ceil(n))


def variance_ratio_power_mc(x, n, ratios, n_sims=2000, level=0.05, seed=None):
    r"""Simulated power of the test of equal spreads, calibrated on the law of the sample ``x``.

    For each ``n``, ``n_sims`` pairs of samples of ``n`` values are drawn
    from ``x`` (with replacement: ``x`` stands for the law), and
    ``L = log(s_b / s_a)`` is computed (sample standard deviations).  The
    test rejects equal spreads when ``|L|`` exceeds the ``1 - level``
    quantile of ``|L|`` over the pairs (so its level is exact for this law,
    whatever its tails).  If the second method's spread is ``ratio`` times
    the first's (its values ``ratio * x``, up to a shift), ``L`` becomes
    ``L + log(ratio)``: the power is the fraction of pairs with
    ``|L + log(ratio)|`` above the critical value.  Compare with the
    large-sample formula :func:`variance_ratio_power`.

    Parameters
    ----------
    x : array_like
        A large sample of the law (finite values).
    n : sequence of int
        Runs per method.
    ratios : sequence of float
        Ratios of the standard deviations, ``> 0``.
    n_sims : int
        Pairs of samples per ``n``.
    level : float
        Level of the test, in ``(0, 1)``.
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    ndarray, shape (len(ratios), len(n))

    Examples
    --------
    >>> import numpy as np
    >>> from mdlib.stats import variance_ratio_power_mc
    >>> x = np.random.default_rng(0).standard_normal(20000)
    >>> variance_ratio_power_mc(x, [100], [0.8, 1.0], seed=1).round(2).tolist()  # F-test: 0.60, 0.05
    [[0.61], [0.05]]
    """
    from ._validate import check_int, check_real

    x = np.asarray(x, dtype=float).ravel()
    if x.size < 2 or not np.all(np.isfinite(x)):
        raise ValueError("x must hold at least two finite values")
    ratios = [check_real("ratio", r, positive=True) for r in ratios]
    n_sims = check_int("n_sims", n_sims, 10)
    level = check_real("level", level, positive=True)
    if level >= 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    out = np.zeros((len(ratios), len(n)))
    for j, nj in enumerate(n):
        nj = check_int("n", nj, 2)
        sd = x[rng.integers(0, x.size, (n_sims, 2, nj))].std(axis=-1, ddof=1)
        L = np.log(sd[:, 1] / sd[:, 0])
        crit = np.quantile(np.abs(L), 1 - level)
        out[:, j] = [np.mean(np.abs(L + np.log(r)) > crit) for r in ratios]
    return out


def bootstrap(statistic, x, n_boot=1000, seed=None):
    r"""Bootstrap replicates of ``statistic(x)``, resampling the rows of ``x`` with replacement.

    Replicate ``b`` is ``statistic(x[idx_b])`` with ``idx_b`` drawn by
    ``rng.integers(0, n, n)`` (``n = len(x)``), in order, from
    ``numpy.random.default_rng(seed)``.  Their standard deviation along
    axis 0 is the bootstrap standard error of the statistic; resample the
    independent units (e.g. the random starts, with all the runs of each).

    Parameters
    ----------
    statistic : callable
        Array -> float or tuple of floats.
    x : array_like, shape (n, ...)
        ``n >= 2`` independent rows.
    n_boot : int
        Number of replicates.
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    ndarray, shape (n_boot,) or (n_boot, k)

    Examples
    --------
    >>> import numpy as np
    >>> from mdlib.stats import bootstrap
    >>> x = np.random.default_rng(0).normal(size=400)
    >>> round(float(bootstrap(np.mean, x, seed=1).std()), 3), round(float(x.std() / np.sqrt(400)), 3)
    (0.05, 0.05)
    """
    from ._validate import check_int

    x = np.asarray(x, dtype=float)
    if x.ndim < 1 or x.shape[0] < 2:
        raise ValueError(f"x must have at least two rows, got shape {x.shape}")
    n_boot = check_int("n_boot", n_boot, 2)
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    return np.array([statistic(x[rng.integers(0, n, n)]) for _ in range(n_boot)], dtype=float)


def power_law_fit(x, y, y_se):
    r"""Exponent of ``y ∝ x^e`` from means with standard errors: weighted least squares in log-log.

    Fits ``log y_i = c + e log x_i`` with weights ``1/σ_i²``, ``σ_i = y_se_i/y_i`` (the
    standard error of ``log y_i`` by the delta method), and returns ``e`` with its
    standard error from the fit's covariance, ``(Σ w_i (u_i - ū)²)^{-1/2}`` with
    ``u = log x`` and ``ū`` the weighted mean. The standard error assumes the power law
    (it measures the scatter of the means, not a curvature of the law in ``log x``).

    Parameters
    ----------
    x : array_like
        Positive abscissae (e.g. dimensions ``d``), at least two distinct values.
    y, y_se : array_like
        Positive means and their standard errors (``> 0``).

    Returns
    -------
    (float, float)
        The exponent ``e`` and its standard error.

    Examples
    --------
    >>> from mdlib.stats import power_law_fit
    >>> e, se = power_law_fit([10, 20, 40], [100.0, 400.0, 1600.0], [5.0, 20.0, 80.0])
    >>> round(e, 6), round(se, 4)
    (2.0, 0.051)
    """
    x, y, y_se = (np.asarray(v, dtype=float).ravel() for v in (x, y, y_se))
    if not (x.shape == y.shape == y_se.shape) or np.unique(x).size < 2:
        raise ValueError("x, y and y_se must have the same length, with at least two distinct x")
    if np.any(~np.isfinite(x)) or np.any(x <= 0) or np.any(~np.isfinite(y)) or np.any(y <= 0):
        raise ValueError("x and y must be finite and positive")
    if np.any(~np.isfinite(y_se)) or np.any(y_se <= 0):
        raise ValueError("y_se must be finite and positive")
    u, v, w = np.log(x), np.log(y), (y / y_se) ** 2
    u_bar = np.sum(w * u) / np.sum(w)
    sxx = np.sum(w * (u - u_bar) ** 2)
    e = np.sum(w * (u - u_bar) * v) / sxx
    return float(e), float(1.0 / np.sqrt(sxx))


def line_fit(x, y, se):
    r"""Weighted least-squares line ``y ≈ a + b x`` through points with known standard errors.

    The weights are ``1/se²`` and the standard error of the slope comes from
    the given errors (``np.polyfit(..., cov="unscaled")``), not from the
    scatter of the residuals: the right choice when ``se`` are the standard
    errors of Monte Carlo means (e.g. the slope of the mean exit time against
    ``log d``, Sec. 2).

    Returns
    -------
    slope, slope_se : float

    Examples
    --------
    >>> from mdlib.stats import line_fit
    >>> b, se = line_fit([0, 1, 2], [1.0, 3.0, 5.0], [0.1, 0.1, 0.1])
    >>> round(b, 6), round(se, 4)
    (2.0, 0.0707)
    """
    x, y, se = (np.asarray(v, dtype=float) for v in (x, y, se))
    if x.ndim != 1 or x.size < 3 or y.shape != x.shape or se.shape != x.shape or np.any(~(se > 0)):
        raise ValueError("x, y and se must be 1-d of the same length >= 3, with se > 0")
    (slope, _), cov = np.polyfit(x, y, 1, w=1 / se, cov="unscaled")
    return float(slope), float(np.sqrt(cov[0, 0]))


def weighted_mean(x, se):
    r"""Inverse-variance weighted mean of independent estimates ``x`` with standard errors ``se``, and its SE.

    Examples
    --------
    >>> from mdlib.stats import weighted_mean
    >>> [round(v, 4) for v in weighted_mean([1.0, 2.0], [0.1, 0.2])]
    [1.2, 0.0894]
    """
    x, se = np.asarray(x, dtype=float), np.asarray(se, dtype=float)
    if x.ndim != 1 or x.size < 1 or se.shape != x.shape or np.any(~(se > 0)):
        raise ValueError("x and se must be 1-d of the same length, with se > 0")
    w = 1 / se**2
    return float(np.sum(w * x) / w.sum()), float(1 / np.sqrt(w.sum()))


def parabola_vertex(x, y):
    r"""Abscissa of the vertex of the least-squares parabola through ``(x, y)``.

    Used to locate a measured optimum, e.g. of ``1/s_ext(γ)``, which Eq. 10
    makes exactly a parabola in ``γ`` with its vertex at ``γ_opt`` (App. E.4).

    Examples
    --------
    >>> from mdlib.stats import parabola_vertex
    >>> round(parabola_vertex([0.0, 1.0, 2.0, 3.0], [5.0, 2.0, 1.0, 2.0]), 12)
    2.0
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.size < 3 or y.shape != x.shape:
        raise ValueError("x and y must be 1-d of the same length >= 3")
    c2, c1, _ = np.polyfit(x, y, 2)
    if abs(c2) * np.ptp(x) ** 2 <= 1e-12 * np.max(np.abs(y)):  # curvature at rounding level
        raise ValueError("the fitted parabola is a line: no vertex")
    return float(-c1 / (2 * c2))
