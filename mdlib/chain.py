r"""The exact low-dimensional SGD chain.

One-pass SGD touches the fresh sample ``x ~ N(0, I_d/d)`` only through

* its coordinates in an orthonormal basis ``e_0..e_p`` of a (p+1)-dimensional
  subspace that contains ``w*`` and every ``w_j``: ``g = (e_k·ξ)_k ~ N(0, I_{p+1})``
  with ``ξ = sqrt(d) x``;
* the norm of the rest, ``s² = |ξ_⊥|² ~ χ²(d - p - 1)``, independent of ``g``.

Write the weights as rows of a lower-triangular matrix ``C`` (row 0 is
``w*/sqrt(d)``, row ``j`` is ``w_j/sqrt(d)``), so that ``C Cᵀ = Ω`` (Eq. 5)
and the local fields are ``(λ*, λ) = C g``.  One SGD step
``w_j ← w_j - γ (2/p) E a_j λ_j x`` moves the rows to

.. math::  C' = [\,C,\ 0\,] - u\, h^\top, \qquad u_j = \frac{\gamma}{d}\,\frac{2}{p} E a_j \lambda_j,
           \qquad h = (g, s) \in \mathbb{R}^{p+2},

a (p+1)×(p+2) matrix whose rows live in the span of the old basis and the
new direction ``ξ_⊥/s``.  Rotating that (p+2)-dimensional space (Givens
rotations acting on columns, O(p²) operations) brings ``C'`` back to
lower-triangular form with a zero last column; the rows' inner products —
all that the next step can see — are unchanged.  The projection of Eq. 20
divides each student row by its norm.  The law of ``(m, Q, a)`` along this
chain is exactly that of d-dimensional SGD, at a cost per step that does
not depend on ``d``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__: list[str] = []  # the public entry point is mdlib.simulate_sgd(method="exact")


@njit(cache=True, nogil=True, inline="always")
def _chisquare_consts(dof):
    """Constants of :func:`_chisquare` for ``dof`` degrees of freedom (dof >= 2)."""
    dd = 0.5 * dof - 1.0 / 3.0
    return dd, 1.0 / np.sqrt(9.0 * dd)


@njit(cache=True, nogil=True, inline="always")
def _chisquare(rng, dd, c):
    """χ² draw as twice a Gamma(dof/2) variate, by Marsaglia & Tsang's exact
    rejection method (ACM TOMS 26, 2000), with ``(dd, c)`` from
    :func:`_chisquare_consts`: about three times faster than numba's
    generic sampler for large dof.  (Marsaglia-Tsang needs dof >= 2; the
    one smaller case allowed by Problem, dof = 1, uses numba's sampler.)"""
    if dd < 2.0 / 3.0:
        return rng.chisquare(2.0 * (dd + 1.0 / 3.0))
    while True:
        x = rng.standard_normal()
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = rng.random()
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2:
            return 2.0 * dd * v
        if np.log(u) < 0.5 * x2 + dd * (1.0 - v + np.log(v)):
            return 2.0 * dd * v


@njit(cache=True, nogil=True, inline="always")
def _rotate(M, rows_from, n_rows, i, k, c, s):
    """Columns (i, k) of M ← (c M_i + s M_k, -s M_i + c M_k) for rows >= rows_from."""
    for r in range(rows_from, n_rows):
        x = M[r, i]
        y = M[r, k]
        M[r, i] = c * x + s * y
        M[r, k] = -s * x + c * y


@njit(cache=True, nogil=True)
def _chain_gap(C, a, p, mode, level):
    """Distance to the exit threshold (<= 0 once escaped).

    mode 1: excess risk (Eq. 6 minus Δ/2) minus ``level``;
    mode 2: ``level - max_j m_j²`` (App. I).
    """
    n = p + 1
    if mode == 2:
        best = 0.0
        for j in range(1, n):
            v = C[j, 0] * C[j, 0]
            if v > best:
                best = v
        return level - best
    lin = 0.0
    tr = 0.0
    quad = 0.0
    for j in range(1, n):
        qjj = 0.0
        for k in range(j + 1):
            qjj += C[j, k] * C[j, k]
        lin += a[j - 1] * (qjj + 2.0 * C[j, 0] * C[j, 0])
        tr += a[j - 1] * qjj
        quad += a[j - 1] * a[j - 1] * qjj * qjj
        for l in range(1, j):
            q = 0.0
            for k in range(l + 1):
                q += C[j, k] * C[l, k]
            quad += 2.0 * a[j - 1] * a[l - 1] * q * q
    return 1.5 - lin / p + (tr * tr + 2.0 * quad) / (2.0 * p * p) - level


@njit(cache=True, nogil=True)
def _chain_advance(C, a, M, g, lam, rng, n_steps, p, d, gamma, delta, spherical, train_a,
                   exit_mode, level, check_every, gap_state):
    """Advance one run of the chain by up to ``n_steps`` SGD steps, in place.

    ``M`` (shape (p+1, p+2)), ``g`` (p+2) and ``lam`` (p+1) are work arrays.
    With ``exit_mode`` 1 or 2 the run stops at the first check (every
    ``check_every`` steps) where :func:`_chain_gap` is <= 0;
    ``gap_state[0]`` carries the last gap between calls and receives, on
    exit, the fraction of the last ``check_every`` steps at which the gap
    crossed zero (linear interpolation).

    Returns ``(steps_done, status)`` with status 0 (ran all steps),
    1 (escaped), 2 (diverged).
    """
    n = p + 1
    sqrt_delta = np.sqrt(delta)
    dd, cc = _chisquare_consts(float(d - n))
    for step in range(n_steps):
        # --- sample: coordinates g of sqrt(d) x in the frame, and |ξ_⊥|
        for k in range(n):
            g[k] = rng.standard_normal()
        g[n] = np.sqrt(_chisquare(rng, dd, cc))
        # --- local fields (λ*, λ) = C g  (C lower triangular)
        for i in range(n):
            acc = 0.0
            for k in range(i + 1):
                acc += C[i, k] * g[k]
            lam[i] = acc
        f = 0.0
        for j in range(1, n):
            f += a[j - 1] * lam[j] * lam[j]
        E = f / p - lam[0] * lam[0]
        if delta > 0.0:
            E -= sqrt_delta * rng.standard_normal()
        if not np.isfinite(E) or abs(E) > 1e40:
            return step, 2
        # --- M = [C, 0]; phase 1: rotate h = g onto |h| e_0 (columns from the bottom)
        for i in range(n):
            for k in range(n):
                M[i, k] = C[i, k]
            M[i, n] = 0.0
        for k in range(n - 1, -1, -1):
            x = g[k]
            y = g[k + 1]
            r = np.sqrt(x * x + y * y)
            if r == 0.0:
                continue
            c = x / r
            s = y / r
            g[k] = r
            g[k + 1] = 0.0
            _rotate(M, k, n, k, k + 1, c, s)
        # --- rank-one move: only column 0 changes, by -|h| u
        hn = g[0]
        scale = gamma / d * 2.0 / p * E * hn
        for j in range(1, n):
            M[j, 0] -= scale * a[j - 1] * lam[j]
        # --- second layer: a_j ← a_j - (γ/d)(1/p) E λ_j²
        if train_a:
            for j in range(1, n):
                a[j - 1] -= gamma / (p * d) * E * lam[j] * lam[j]
        # --- phase 2: kill the superdiagonal (lower Hessenberg -> lower triangular)
        for k in range(n):
            x = M[k, k]
            y = M[k, k + 1]
            if y == 0.0:
                continue
            r = np.sqrt(x * x + y * y)
            c = x / r
            s = y / r
            _rotate(M, k, n, k, k + 1, c, s)
            M[k, k + 1] = 0.0
        for i in range(n):
            for k in range(i + 1):
                C[i, k] = M[i, k]
        # the teacher never moves: remove rounding drift of row 0
        C[0, 0] = 1.0
        # --- projection on the sphere (Eq. 20)
        if spherical:
            for i in range(1, n):
                nrm = 0.0
                for k in range(i + 1):
                    nrm += C[i, k] * C[i, k]
                inv = 1.0 / np.sqrt(nrm)
                for k in range(i + 1):
                    C[i, k] *= inv
        if exit_mode != 0 and (step + 1) % check_every == 0:
            cur = _chain_gap(C, a, p, exit_mode, level)
            if cur <= 0.0:
                prev = gap_state[0]
                gap_state[0] = prev / (prev - cur) if prev > 0.0 else 1.0
                return step + 1, 1
            gap_state[0] = cur
    return n_steps, 0


@njit(cache=True, nogil=True)
def _chain_advance_p1(C, a, M, g, lam, rng, n_steps, p, d, gamma, delta, spherical, train_a,
                      exit_mode, level, check_every, gap_state):
    """``_chain_advance`` written out for p = 1 (same arguments and law).

    With one student the coordinates are ``C = [[1, 0], [m, r]]`` and a step
    maps the student row ``(m, r)`` to ``(m - u g_0, r - u g_1, -u s)``,
    whose triangular form is ``(m - u g_0, sqrt((r - u g_1)² + u² s²))``;
    no rotation is needed.  This is the paper's main case, so it gets its
    own loop (about twice as fast as the general one).
    """
    sqrt_delta = np.sqrt(delta)
    dd, cc = _chisquare_consts(float(d - 2))
    c0 = C[1, 0]
    c1 = C[1, 1]
    aa = a[0]
    for step in range(n_steps):
        g0 = rng.standard_normal()
        g1 = rng.standard_normal()
        s2 = _chisquare(rng, dd, cc)
        lam_ = c0 * g0 + c1 * g1
        E = aa * lam_ * lam_ - g0 * g0
        if delta > 0.0:
            E -= sqrt_delta * rng.standard_normal()
        if not np.isfinite(E) or abs(E) > 1e40:
            C[1, 0] = c0
            C[1, 1] = c1
            a[0] = aa
            return step, 2
        u = gamma / d * 2.0 * E * aa * lam_
        if train_a:
            aa -= gamma / d * E * lam_ * lam_
        c0 = c0 - u * g0
        t = c1 - u * g1
        c1 = np.sqrt(t * t + u * u * s2)
        if spherical:
            inv = 1.0 / np.sqrt(c0 * c0 + c1 * c1)
            c0 *= inv
            c1 *= inv
        if exit_mode != 0 and (step + 1) % check_every == 0:
            if exit_mode == 2:
                cur = level - c0 * c0
            else:
                q = c0 * c0 + c1 * c1
                cur = 1.5 - aa * (q + 2.0 * c0 * c0) + 1.5 * aa * aa * q * q - level
            if cur <= 0.0:
                prev = gap_state[0]
                gap_state[0] = prev / (prev - cur) if prev > 0.0 else 1.0
                C[1, 0] = c0
                C[1, 1] = c1
                a[0] = aa
                return step + 1, 1
            gap_state[0] = cur
    C[1, 0] = c0
    C[1, 1] = c1
    a[0] = aa
    return n_steps, 0


@njit(cache=True, nogil=True)
def _chain_stats(C, m, Q):
    """m_j = C_j·C_0, Q_jl = C_j·C_l (rows 1..p) into preallocated arrays."""
    n = C.shape[0]
    for j in range(1, n):
        m[j - 1] = C[j, 0] * C[0, 0]
        for l in range(1, j + 1):
            acc = 0.0
            for k in range(l + 1):
                acc += C[j, k] * C[l, k]
            Q[j - 1, l - 1] = acc
            Q[l - 1, j - 1] = acc
