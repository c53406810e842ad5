r"""Small statistical estimators used by the chapters."""
from __future__ import annotations

import numpy as np

__all__ = ["variance_components", "bonferroni_z", "zscores", "participation_ratio"]


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


# --------------------------------------------------------------------------- fits (the escape_p1 chapter)
__all__ += ["line_fit", "weighted_mean", "parabola_vertex"]


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
