r"""Small statistical estimators used by the chapters."""
from __future__ import annotations

import numpy as np

__all__ = ["variance_components", "bonferroni_z", "zscores", "participation_ratio", "power_law_fit"]


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
