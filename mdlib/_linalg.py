"""One positive-semidefinite Cholesky factorisation (private, numba).

Used by :func:`mdlib.make_state` (coordinates of the weights from their
overlap matrix Ω) and by the SDE integrator (a square root of the noise
covariance).  Both matrices are positive semi-definite but may be singular
(aligned weights, a degenerate noise), where the ordinary Cholesky fails.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def psd_cholesky(C, L, rtol, floor):
    """Lower-triangular ``L`` (written in place) with ``L Lᵀ = C`` for a PSD ``C``.

    Pivots at or below ``rtol · max(floor, max_r |C_rr|)`` — round-off, or a
    negative pivot of a matrix that is not PSD — give zero columns instead of
    a failure.  Returns the smallest pivot met, relative to that scale, so
    that a caller can reject matrices that are clearly not PSD.
    """
    nr = C.shape[0]
    scale = floor
    for r in range(nr):
        scale = max(scale, abs(C[r, r]))
    tol = rtol * scale
    worst = np.inf
    for j in range(nr):
        for i in range(nr):
            L[i, j] = 0.0
        s = C[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if scale > 0:
            worst = min(worst, s / scale)
        if s <= tol:
            continue
        d = np.sqrt(s)
        L[j, j] = d
        for i in range(j + 1, nr):
            s = C[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / d
    return worst
