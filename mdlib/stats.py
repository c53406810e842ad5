r"""Small statistical estimators used by the chapters."""
from __future__ import annotations

import numpy as np

__all__ = ["variance_components"]


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
