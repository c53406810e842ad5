r"""Population risk of the two-layer network (paper Eq. 6).

One formula (numba: :func:`_risk`, summing :func:`_risk_terms` over the
units) serves both the public :func:`population_risk` and the SGD kernels,
which record the risk at their save steps without going back to Python.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["population_risk", "population_risk_mc", "correlated_network"]


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


def _overlap_arrays(m, Q, a):
    """``(m, Q, a, p)`` as float arrays of shapes ``(..., p)``, ``(..., p, p)``, ``(..., p)``; a
    ValueError names the shapes that do not match."""
    m = np.asarray(m, dtype=float)
    Q = np.asarray(Q, dtype=float)
    a = np.asarray(a, dtype=float)
    p = m.shape[-1]
    if Q.shape[-2:] != (p, p) or a.shape[-1] != p:
        raise ValueError(f"shapes do not match: m {m.shape}, Q {Q.shape}, a {a.shape}")
    return m, Q, a, p


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
    m, Q, a, p = _overlap_arrays(m, Q, a)
    lead = np.broadcast_shapes(m.shape[:-1], Q.shape[:-2], a.shape[:-1])
    def flat(x, tail):  # C-contiguous and read-only, whatever the caller passed: one compiled signature
        x = np.ascontiguousarray(np.broadcast_to(x, lead + tail)).reshape((-1,) + tail)
        x.flags.writeable = False  # (on a view or a private copy: the caller's array is untouched)
        return x
    out = np.empty(int(np.prod(lead, dtype=np.int64)))
    _risk_many(flat(m, (p,)), flat(Q, (p, p)), flat(a, (p,)), float(delta), out)
    return out.reshape(lead)[()]  # a numpy scalar for a single network


def population_risk_mc(w_star, W, a, delta, n, seed=None, chunk=50_000):
    r"""Brute-force Monte Carlo estimate of the population risk, from the weights themselves.

    Draws ``n`` fresh samples ``x ~ N(0, I_d/d)``, ``y = (w*·x)² + sqrt(Δ) z``
    (Eq. 2) in ``R^d``, evaluates the loss ``(f(x) - y)²/2`` of the network
    ``f(x) = (1/p) Σ_j a_j (w_j·x)²`` (Eq. 3) on each and averages: an
    independent check of :func:`population_risk` (Eq. 6), which uses only
    the overlaps.

    Parameters
    ----------
    w_star : ndarray, shape (d,)
        Teacher (``|w*|² = d`` for the conventions of Eq. 6).
    W : ndarray, shape (p, d)
        First layer.
    a : ndarray, shape (p,)
        Second layer.
    delta : float
    n : int
        Number of samples (``>= 2``), drawn in chunks of ``chunk``.
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    mean, se : float
        Sample mean of the loss and its standard error.
    """
    from ._validate import check_int, check_real

    W = np.asarray(W, dtype=float)
    w_star = np.asarray(w_star, dtype=float)
    a = np.asarray(a, dtype=float)
    if W.ndim != 2 or w_star.shape != (W.shape[1],) or a.shape != (W.shape[0],):
        raise ValueError(f"shapes do not match: w_star {w_star.shape}, W {W.shape}, a {a.shape}")
    delta = check_real("delta", delta, nonnegative=True)
    n = check_int("n", n, 2)
    chunk = check_int("chunk", chunk, 1)
    rng = np.random.default_rng(seed)
    p, d = W.shape
    s1 = s2 = 0.0
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        x = rng.standard_normal((k, d)) / np.sqrt(d)
        y = (x @ w_star) ** 2 + np.sqrt(delta) * rng.standard_normal(k)
        f = (x @ W.T) ** 2 @ a / p
        loss = 0.5 * (f - y) ** 2
        s1 += loss.sum()
        s2 += (loss**2).sum()
    mean = s1 / n
    return mean, np.sqrt((s2 / n - mean**2) / (n - 1))


def correlated_network(p, d, seed=None):
    r"""A teacher and a network far from mediocrity: the hard case for Eq. 6 and App. C.

    The teacher ``w*`` is uniform on ``S^{d-1}(sqrt(d))``.  Each student mixes
    the teacher, a direction shared by all students and its own noise (both
    orthogonal to the teacher),

    .. math:: w_j = \alpha_j w_* + \beta_j u_0 + 0.7\, u_j ,

    with ``|α_j|, |β_j|`` uniform in ``[0.5, 1]`` and random signs, so that
    ``m_j = α_j`` exactly and the off-diagonal ``Q_jl`` are of order one
    (not ``O(1/sqrt(d))`` as at a random start), and ``Q_jj != 1``.  The second
    layer ``a_j`` is uniform in ``[-1, 2]`` (both signs).

    Parameters
    ----------
    p, d : int
        Width ``>= 1`` and input dimension ``>= 2``.
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    w_star : ndarray, shape (d,)
    W : ndarray, shape (p, d)
    a : ndarray, shape (p,)

    Examples
    --------
    >>> import numpy as np
    >>> w_star, W, a = correlated_network(3, 12, seed=0)
    >>> bool(np.all(np.abs(W @ w_star / 12) >= 0.5))
    True
    """
    from ._validate import check_int

    p = check_int("p", p, 1)
    d = check_int("d", d, 2)
    rng = np.random.default_rng(seed)
    w_star = rng.standard_normal(d)
    w_star *= np.sqrt(d) / np.linalg.norm(w_star)
    rest = rng.standard_normal((p + 1, d))  # shared direction and individual noise, orthogonal to w*
    rest -= np.outer(rest @ w_star / d, w_star)
    alpha, beta = rng.choice([-1, 1], (2, p, 1)) * rng.uniform(0.5, 1, (2, p, 1))
    W = alpha * w_star + beta * rest[0] + 0.7 * rest[1:]
    a = rng.uniform(-1, 2, p)
    return w_star, W, a
