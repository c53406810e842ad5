r"""Population risk of the two-layer network (paper Eq. 6).

One formula (numba: :func:`_risk`, summing :func:`_risk_terms` over the
units) serves both the public :func:`population_risk` and the SGD kernels,
which record the risk at their save steps without going back to Python.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["population_risk"]


_FAST = {"reassoc", "contract", "nsz", "arcp"}  # vectorised sums; NaN and inf keep their meaning


@njit(cache=True, nogil=True, fastmath=_FAST)
def _risk_terms(j, m, row, a):
    """Unit ``j``'s share of the three sums of Eq. 6, from ``row = Q[j, :j+1]``:
    ``a_j (Q_jj + 2 m_j²)``, ``a_j Q_jj`` and ``a_j (a_j Q_jj² + 2 Σ_{l<j} a_l Q_jl²)``
    (Q is symmetric, so its lower triangle is enough)."""
    aj = a[j]
    qjj = row[j]
    off = 0.0
    for l in range(j):
        off += a[l] * row[l] * row[l]
    return aj * (qjj + 2.0 * m[j] * m[j]), aj * qjj, aj * (aj * qjj * qjj + 2.0 * off)


@njit(cache=True, nogil=True)
def _risk_total(lin, tr, quad, p, delta):
    """Eq. 6 from the sums of :func:`_risk_terms` over the units."""
    return (delta + 3.0) / 2.0 - lin / p + (tr * tr + 2.0 * quad) / (2.0 * p * p)


@njit(cache=True, nogil=True)
def _risk(m, Q, a, delta):
    r"""Eq. 6 for one network: ``m`` (p,), ``Q`` (p, p), ``a`` (p,).

    Only the lower triangle of ``Q`` (``l <= j``) is read: ``Q`` is symmetric,
    and the kernels keep only that half up to date.
    """
    p = m.shape[0]
    lin = 0.0
    tr = 0.0
    quad = 0.0
    for j in range(p):
        x, y, z = _risk_terms(j, m, Q[j], a)
        lin += x
        tr += y
        quad += z
    return _risk_total(lin, tr, quad, p, delta)


@njit(cache=True)
def _risk_many(m, Q, a, delta, out):
    for i in range(m.shape[0]):
        out[i] = _risk(m[i], Q[i], a[i], delta)


def population_risk(m, Q, a, delta):
    r"""Population risk ``R = E[(f - y)^2] / 2`` of Eq. 6, including ``Δ/2``.

    .. math::

        \mathcal{R} = \frac{\Delta + 3}{2}
        - \frac{1}{p}\sum_j a_j (Q_{jj} + 2 m_j^2)
        + \frac{1}{2p^2}\sum_{j,l} a_j a_l (Q_{jj} Q_{ll} + 2 Q_{jl}^2)

    (the teacher has ``ρ = |w*|²/d = 1``).  With ``a = 1`` this is Eq. 27,
    and on the sphere at ``p = 1`` it is ``2 (1 - m²) + Δ/2``.

    Parameters
    ----------
    m : array_like, shape (..., p)
    Q : array_like, shape (..., p, p)
        Symmetric; only its lower triangle is read.
    a : array_like, shape (..., p)
    delta : float
        Noise variance Δ.

    Leading dimensions broadcast against each other.

    Returns
    -------
    ndarray, shape (...)

    Examples
    --------
    >>> import numpy as np
    >>> float(population_risk([0.0], [[1.0]], [1.0], 0.0))  # p = 1 at mediocrity: 2 (1 - m²)
    2.0
    """
    m = np.asarray(m, dtype=float)
    Q = np.asarray(Q, dtype=float)
    a = np.asarray(a, dtype=float)
    p = m.shape[-1]
    if Q.shape[-2:] != (p, p) or a.shape[-1] != p:
        raise ValueError(f"shapes do not match: m {m.shape}, Q {Q.shape}, a {a.shape}")
    lead = np.broadcast_shapes(m.shape[:-1], Q.shape[:-2], a.shape[:-1])
    flat = lambda x, tail: np.ascontiguousarray(np.broadcast_to(x, lead + tail)).reshape((-1,) + tail)  # noqa: E731
    out = np.empty(int(np.prod(lead, dtype=np.int64)))
    _risk_many(flat(m, (p,)), flat(Q, (p, p)), flat(a, (p,)), float(delta), out)
    return out.reshape(lead)[()]  # a numpy scalar for a single network
