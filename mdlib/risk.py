r"""Population risk of the two-layer network (paper Eq. 6)."""
from __future__ import annotations

import numpy as np

__all__ = ["population_risk"]


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
    a : array_like, shape (..., p)
    delta : float
        Noise variance Δ.

    Returns
    -------
    ndarray, shape (...)
    """
    m = np.asarray(m, dtype=float)
    Q = np.asarray(Q, dtype=float)
    a = np.asarray(a, dtype=float)
    p = m.shape[-1]
    if Q.shape[-2:] != (p, p) or a.shape[-1] != p:
        raise ValueError(f"shapes do not match: m {m.shape}, Q {Q.shape}, a {a.shape}")
    diag = np.diagonal(Q, axis1=-2, axis2=-1)
    linear = np.sum(a * (diag + 2 * m**2), axis=-1) / p
    ad = a * diag
    quad = (np.sum(ad, axis=-1) ** 2 + 2 * np.einsum("...j,...jl,...l->...", a, Q**2, a)) / (2 * p**2)
    return (delta + 3) / 2 - linear + quad
