r"""Exact Gaussian expectations behind the ODEs and SDEs (paper App. C, G.3).

The local fields are ordered ``(λ_1, ..., λ_p, λ*)``: students first, the
teacher last, so that their covariance is the paper's Eq. 5,

.. math::  \Omega = \begin{pmatrix} Q & m \\ m^\top & 1 \end{pmatrix}.

The displacement ``E = f - y`` (Eq. 16) is a quadratic form of the fields
plus independent label noise,

.. math::  \mathcal{E} = \lambda^\top B \lambda - \sqrt{\Delta}\, z,
   \qquad B = \mathrm{diag}(b), \quad b = (a_1/p, \dots, a_p/p, -1).

Three levels of machinery, each checked against the previous one in the
tests:

* :func:`isserlis` — brute-force Wick/Isserlis sum over perfect matchings,
  for any product of fields (the reference, for tests and small cases);
* the explicit identities of App. C (:func:`moment2`, :func:`moment4_aabb`,
  :func:`moment4_abcc`, :func:`moment6_abccdd`);
* closed matrix formulas for ``E[E λ_α λ_β]`` and ``E[E² λ_α λ_β]``
  (:func:`displacement_moments`, all the ODE needs) and the moment
  generating function series (:func:`displacement_moment_series`) giving
  ``E[E^k λ_a λ_b]`` and ``E[E^k λ_a λ_b λ_c λ_d]`` for ``k <= 4`` — the
  up-to-twelfth-order moments of the SDE covariance (Eq. 54).

The series rests on the Gaussian integral

.. math::

   \mathbb{E}\big[e^{t\mathcal{E}} f(\lambda)\big]
   = e^{t^2\Delta/2}\,\det(I - 2tB\Omega)^{-1/2}\,
     \mathbb{E}_{\lambda\sim\mathcal{N}(0, K(t))}[f(\lambda)],
   \qquad K(t) = \Omega (I - 2tB\Omega)^{-1} = \sum_{n\ge0} (2t)^n \Omega (B\Omega)^n,

with ``-½ log det(I - 2tBΩ) = Σ_n (2t)^n tr((BΩ)^n) / (2n)``.  Expanding in
powers of ``t`` and reading off ``k! [t^k]`` gives exact moments.  Every
coefficient is a polynomial in the entries of Ω, so the identity holds for
singular (even indefinite) Ω too, and no matrix is ever inverted.
"""
from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "isserlis",
    "moment2",
    "moment4_aabb",
    "moment4_abcc",
    "moment6_abccdd",
    "app_c_cases",
    "moment_monte_carlo",
    "displacement_weights",
    "field_covariance",
    "displacement_moments",
    "displacement_moment_series",
]

_MAX_ISSERLIS = 24


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #
def _as_cov(cov, name="cov"):
    cov = np.asarray(cov, dtype=float)
    if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (or a stack of them), got shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError(f"{name} must be finite")
    return cov


def _check_delta(delta):
    delta = float(delta)
    if not np.isfinite(delta) or delta < 0:
        raise ValueError(f"delta must be a finite number >= 0, got {delta}")
    return delta


# --------------------------------------------------------------------------- #
# Isserlis / Wick
# --------------------------------------------------------------------------- #
def isserlis(cov, indices) -> float:
    r"""``E[Π_k λ_{i_k}]`` for ``λ ~ N(0, cov)``, by Isserlis' (Wick's) theorem.

    The sum over all perfect matchings of the indices of the product of
    the matched covariances.  It is evaluated by the recursion that pairs
    the first index with every other one,
    ``E[λ_i X] = Σ_k cov[i, k] E[X / λ_k]``, memoising repeated
    sub-products, so high powers of few fields stay cheap (twelve indices
    over three fields take milliseconds).

    Parameters
    ----------
    cov : array_like, shape (n, n)
        Covariance matrix (any symmetric matrix: the formula is a
        polynomial identity).
    indices : sequence of int
        Field indices ``i_k`` in ``range(n)``, repetitions allowed; at most
        24 of them.

    Returns
    -------
    float
        The moment; 0 for an odd number of indices.

    Examples
    --------
    >>> isserlis([[2.0]], [0, 0, 0, 0])   # E[λ^4] = 3 σ^4
    12.0
    """
    cov = _as_cov(cov)
    if cov.ndim != 2:
        raise ValueError(f"cov must be a single (n, n) matrix, got shape {cov.shape}")
    n = cov.shape[0]
    idx = []
    for i in indices:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise ValueError(f"indices must be integers, got {i!r}")
        if not 0 <= i < n:
            raise ValueError(f"indices must lie in range({n}), got {i}")
        idx.append(int(i))
    if len(idx) > _MAX_ISSERLIS:
        raise ValueError(f"indices may hold at most {_MAX_ISSERLIS} entries, got {len(idx)}")
    if len(idx) % 2:
        return 0.0
    memo = {}

    def rec(t):
        if not t:
            return 1.0
        if t in memo:
            return memo[t]
        i, rest = t[0], t[1:]
        s = 0.0
        k = 0
        while k < len(rest):  # rest is sorted: group equal partners
            j = rest[k]
            mult = 1
            while k + mult < len(rest) and rest[k + mult] == j:
                mult += 1
            s += mult * cov[i, j] * rec(rest[:k] + rest[k + 1:])
            k += mult
        memo[t] = s
        return s

    return float(rec(tuple(sorted(idx))))


# --------------------------------------------------------------------------- #
# App. C identities
# --------------------------------------------------------------------------- #
def moment2(omega, a, b):
    r"""``E[λ_a λ_b] = ω_ab`` (App. C.2, first identity).

    ``omega`` may carry leading batch axes; so may the result.
    """
    omega = _as_cov(omega, "omega")
    return omega[..., a, b]


def moment4_aabb(omega, a, b):
    r"""``E[λ_a² λ_b²] = ω_aa ω_bb + 2 ω_ab²`` (App. C.2, second identity)."""
    w = _as_cov(omega, "omega")
    return w[..., a, a] * w[..., b, b] + 2 * w[..., a, b] ** 2


def moment4_abcc(omega, a, b, c):
    r"""``E[λ_a λ_b λ_c²] = ω_ab ω_cc + 2 ω_ac ω_bc`` (App. C.2, third identity)."""
    w = _as_cov(omega, "omega")
    return w[..., a, b] * w[..., c, c] + 2 * w[..., a, c] * w[..., b, c]


def moment6_abccdd(omega, a, b, c, d):
    r"""``E[λ_a λ_b λ_c² λ_d²]`` (App. C.2, fourth identity).

    .. math::

        \omega_{ab}\omega_{cc}\omega_{dd} + 2\omega_{ab}\omega_{cd}^2
        + 2\omega_{ac}\omega_{bc}\omega_{dd} + 4\omega_{ac}\omega_{bd}\omega_{cd}
        + 4\omega_{ad}\omega_{bc}\omega_{cd} + 2\omega_{ad}\omega_{bd}\omega_{cc}

    (the fifteen matchings of six indices, grouped; checked against
    :func:`isserlis` in the tests).
    """
    w = _as_cov(omega, "omega")
    ab, cc, dd, cd = w[..., a, b], w[..., c, c], w[..., d, d], w[..., c, d]
    ac, bc, ad, bd = w[..., a, c], w[..., b, c], w[..., a, d], w[..., b, d]
    return (ab * cc * dd + 2 * ab * cd**2 + 2 * ac * bc * dd
            + 4 * ac * bd * cd + 4 * ad * bc * cd + 2 * ad * bd * cc)


def app_c_cases(omega):
    r"""Every index choice of the four App. C identities, with the identity's value.

    For ``n`` fields, the cases are ``E[λ_α λ_β]`` and ``E[λ_α² λ_β²]``
    (``α <= β``), ``E[λ_α λ_β λ_γ²]`` (``α <= β``, any ``γ``) and
    ``E[λ_α λ_β λ_γ² λ_δ²]`` (``α <= β``, ``γ <= δ``): the choices up to
    the symmetries of each identity, repeated indices and the teacher
    included (160 cases for four fields).

    Parameters
    ----------
    omega : array_like, shape (n, n)
        Covariance of the fields.

    Returns
    -------
    list of (str, tuple, float)
        The identity's name, the indices of the product, and the value of
        the identity (:func:`moment2`, :func:`moment4_aabb`,
        :func:`moment4_abcc` or :func:`moment6_abccdd`).

    Examples
    --------
    >>> import numpy as np
    >>> cases = app_c_cases(np.eye(2))
    >>> len(cases), cases[1]
    (21, ('E[λα² λβ²]', (0, 0, 0, 0), 3.0))
    """
    w = _as_cov(omega, "omega")
    if w.ndim != 2:
        raise ValueError("omega must be a single (n, n) covariance")
    n = w.shape[0]
    cases = []
    for al in range(n):
        for be in range(al, n):
            cases.append(("E[λα λβ]", (al, be), float(moment2(w, al, be))))
            cases.append(("E[λα² λβ²]", (al, al, be, be), float(moment4_aabb(w, al, be))))
            for ga in range(n):
                cases.append(("E[λα λβ λγ²]", (al, be, ga, ga), float(moment4_abcc(w, al, be, ga))))
                for de in range(ga, n):
                    cases.append(("E[λα λβ λγ² λδ²]", (al, be, ga, ga, de, de),
                                  float(moment6_abccdd(w, al, be, ga, de))))
    return cases


def moment_monte_carlo(omega, indices, n, seed=None):
    r"""Monte Carlo mean and standard error of ``E[Π_i λ_{indices[i]}]`` for ``λ ~ N(0, Ω)``.

    Draws ``n`` fresh samples ``λ = L g`` (``L`` the Cholesky factor of Ω,
    ``g`` standard normal): an independent check of :func:`isserlis` and of
    the App. C identities.  Each call uses its own samples, so the z-scores
    of different calls are independent.

    Parameters
    ----------
    omega : array_like, shape (k, k)
        Positive-definite covariance.
    indices : sequence of int
    n : int
        Number of samples, ``>= 2``.
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    mean, se : float
    """
    from ._validate import check_int

    w = _as_cov(omega, "omega")
    if w.ndim != 2:
        raise ValueError("omega must be a single (k, k) covariance")
    k = w.shape[0]
    if not all(0 <= int(i) < k for i in indices):
        raise ValueError(f"indices must be in [0, {k}), got {tuple(indices)}")
    n = check_int("n", n, 2)
    chol = np.linalg.cholesky(w)
    g = np.random.default_rng(seed).standard_normal((k, n))
    lam = [chol[i, : i + 1] @ g[: i + 1] for i in range(k)]  # λ = L g, row by row
    samples = np.ones(n)
    for i in indices:
        samples *= lam[i]
    return float(samples.mean()), float(samples.std(ddof=1) / np.sqrt(n))


# --------------------------------------------------------------------------- #
# fields and displacement
# --------------------------------------------------------------------------- #
def field_covariance(m, Q):
    r"""The covariance Ω of ``(λ_1..λ_p, λ*)`` (Eq. 5, teacher last, ``ρ = 1``).

    Parameters
    ----------
    m : array_like, shape (..., p)
    Q : array_like, shape (..., p, p)

    Returns
    -------
    ndarray, shape (..., p + 1, p + 1)
    """
    m = np.asarray(m, dtype=float)
    Q = np.asarray(Q, dtype=float)
    p = m.shape[-1]
    if Q.shape[-2:] != (p, p):
        raise ValueError(f"Q must have shape (..., {p}, {p}) to match m, got {Q.shape}")
    shape = np.broadcast_shapes(m.shape[:-1], Q.shape[:-2])
    omega = np.empty(shape + (p + 1, p + 1))
    omega[..., :p, :p] = Q
    omega[..., :p, p] = m
    omega[..., p, :p] = m
    omega[..., p, p] = 1.0
    return omega


def displacement_weights(a):
    r"""``b = (a_1/p, ..., a_p/p, -1)``, so that ``E = λᵀ diag(b) λ - sqrt(Δ) z``.

    Parameters
    ----------
    a : array_like, shape (..., p)
        Second-layer weights.

    Returns
    -------
    ndarray, shape (..., p + 1)
    """
    a = np.asarray(a, dtype=float)
    p = a.shape[-1]
    b = np.empty(a.shape[:-1] + (p + 1,))
    b[..., :p] = a / p
    b[..., p] = -1.0
    return b


def _check_omega_b(omega, b):
    omega = _as_cov(omega, "omega")
    b = np.asarray(b, dtype=float)
    if b.shape[-1] != omega.shape[-1]:
        raise ValueError(f"b must have length {omega.shape[-1]} to match omega, got shape {b.shape}")
    return omega, b


def displacement_moments(omega, b, delta=0.0):
    r"""``E[E λ_α λ_β]`` and ``E[E² λ_α λ_β]`` as matrices (the ODE's input).

    With ``τ_1 = tr(BΩ) = b·diag(Ω)`` and ``τ_2 = tr((BΩ)²) = bᵀ(Ω∘Ω)b``,

    .. math::

        \mathbb{E}[\mathcal{E}\lambda_\alpha\lambda_\beta]
          &= \Omega_{\alpha\beta}\,\tau_1 + 2(\Omega B\Omega)_{\alpha\beta}, \\
        \mathbb{E}[\mathcal{E}^2\lambda_\alpha\lambda_\beta]
          &= \Omega_{\alpha\beta}\,(\tau_1^2 + 2\tau_2 + \Delta)
             + 4\tau_1(\Omega B\Omega)_{\alpha\beta}
             + 8(\Omega B\Omega B\Omega)_{\alpha\beta},

    the ``t`` and ``t²`` coefficients of the generating function of the
    module docstring.  These replace the term-by-term sums of App. C.2.

    Parameters
    ----------
    omega : array_like, shape (..., n, n)
        Field covariance, e.g. from :func:`field_covariance`.
    b : array_like, shape (..., n)
        Quadratic-form weights, e.g. from :func:`displacement_weights`.
    delta : float
        Label-noise variance Δ.

    Returns
    -------
    S1, S2 : ndarray, shape (..., n, n)
    """
    omega, b = _check_omega_b(omega, b)
    delta = _check_delta(delta)
    bo = b[..., :, None] * omega  # B Ω
    obo = omega @ bo  # Ω B Ω
    tau1 = np.einsum("...i,...ii->...", b, omega)
    tau2 = np.einsum("...i,...ij,...j->...", b, omega**2, b)
    S1 = omega * tau1[..., None, None] + 2 * obo
    S2 = (omega * (tau1**2 + 2 * tau2 + delta)[..., None, None]
          + 4 * tau1[..., None, None] * obo + 8 * (obo @ bo))
    return S1, S2


def _series_coefficients(omega, b, delta, kmax):
    """K_n = 2^n Ω(BΩ)^n (n <= kmax) and the coefficients g_n of
    e^{t²Δ/2} det(I - 2tBΩ)^{-1/2}, numpy version (leading batch axes)."""
    bo = b[..., :, None] * omega
    n = omega.shape[-1]
    power = np.broadcast_to(np.eye(n), omega.shape).copy()
    K = []
    ell = [0.0]
    for k in range(kmax + 1):
        K.append(2.0**k * (omega @ power))
        if k < kmax:
            power = power @ bo
            tau = np.trace(power, axis1=-2, axis2=-1)
            ell.append(2.0**k * tau / (k + 1) + (delta / 2 if k + 1 == 2 else 0.0))
    g = [np.ones(omega.shape[:-2])]
    for k in range(1, kmax + 1):  # exponential of a power series
        g.append(sum(j * ell[j] * g[k - j] for j in range(1, k + 1)) / k)
    return K, g


def displacement_moment_series(omega, b, delta=0.0, kmax=4):
    r"""All moments ``E[E^k λ_a λ_b]`` and ``E[E^k λ_a λ_b λ_c λ_d]``, ``k <= kmax``.

    Exact, from the moment generating function of the quadratic form (see
    the module docstring): with ``K(t) = Σ_n K_n t^n``,
    ``K_n = 2^n Ω(BΩ)^n`` and ``g(t) = Σ_n g_n t^n = e^{t²Δ/2}
    det(I - 2tBΩ)^{-1/2}``,

    .. math::

        \mathbb{E}[\mathcal{E}^k\lambda_a\lambda_b]
            = k!\,[t^k]\; g(t)\,K_{ab}(t), \qquad
        \mathbb{E}[\mathcal{E}^k\lambda_a\lambda_b\lambda_c\lambda_d]
            = k!\,[t^k]\; g(t)\,\big(K_{ab}K_{cd} + K_{ac}K_{bd} + K_{ad}K_{bc}\big)(t).

    ``kmax = 4`` reaches the twelfth-order Gaussian moments that the
    covariance of the SGD increments (Eq. 54) needs.

    Parameters
    ----------
    omega : array_like, shape (n, n)
    b : array_like, shape (n,)
    delta : float
        Label-noise variance Δ.
    kmax : int
        Highest power of E, ``0 <= kmax <= 8``.

    Returns
    -------
    m2 : ndarray, shape (kmax + 1, n, n)
        ``m2[k, a, b] = E[E^k λ_a λ_b]``.
    m4 : ndarray, shape (kmax + 1, n, n, n, n)
        ``m4[k, a, b, c, d] = E[E^k λ_a λ_b λ_c λ_d]``.
    """
    omega, b = _check_omega_b(omega, b)
    if omega.ndim != 2 or b.ndim != 1:
        raise ValueError("displacement_moment_series takes a single omega (n, n) and b (n,)")
    delta = _check_delta(delta)
    if isinstance(kmax, (bool, np.bool_)) or not isinstance(kmax, (int, np.integer)) or not 0 <= kmax <= 8:
        raise ValueError(f"kmax must be an integer in [0, 8], got {kmax!r}")
    K, g = _series_coefficients(omega, b, delta, kmax)
    n = omega.shape[0]
    m2 = np.zeros((kmax + 1, n, n))
    m4 = np.zeros((kmax + 1, n, n, n, n))
    H = []
    for s in range(kmax + 1):
        h = np.zeros((n, n, n, n))
        for i in range(s + 1):
            Ki, Kj = K[i], K[s - i]
            h += (np.einsum("ab,cd->abcd", Ki, Kj) + np.einsum("ac,bd->abcd", Ki, Kj)
                  + np.einsum("ad,bc->abcd", Ki, Kj))
        H.append(h)
    for k in range(kmax + 1):
        f = math.factorial(k)
        m2[k] = f * sum(g[r] * K[k - r] for r in range(k + 1))
        m4[k] = f * sum(g[r] * H[k - r] for r in range(k + 1))
    return m2, m4


# --------------------------------------------------------------------------- #
# numba kernel: moments of the SGD increment variables (used by sde.py)
# --------------------------------------------------------------------------- #
@numba.njit(cache=True)
def _increment_moments(omega, b, delta, pu, pv, c1, c2, K, g, work, mean, second):
    """Mean and second-moment matrix of the variables
    ``X_v = c1[v] E λ_{pu[v]} λ_{pv[v]} + c2[v] E² λ_{pu[v]} λ_{pv[v]}``.

    Exact (generating-function series up to t^4, see the module
    docstring).  ``K`` (5, n, n), ``g`` (5,) and ``work`` (10,) are work
    arrays (filled here; allocation-free so that the SDE's inner loop stays
    cheap); results go to ``mean`` (nv,) and ``second`` (nv, nv).
    Uses ``K_{k+1} = 2 K_k B Ω`` and ``tr((BΩ)^{k+1}) = tr(B K_k) / 2^k``.
    """
    n = omega.shape[0]
    nv = pu.shape[0]
    for i in range(n):
        for j in range(n):
            K[0, i, j] = omega[i, j]
    # g = exp(Σ ell_k t^k), ell_{k+1} = tr(B K_k)/(k+1) (+ Δ/2 at order 2)
    for k in range(4):
        tr = 0.0
        for i in range(n):
            tr += b[i] * K[k, i, i]
        work[k + 1] = tr / (k + 1)
        for i in range(n):
            for j in range(n):
                acc = 0.0
                for l in range(n):
                    acc += K[k, i, l] * b[l] * omega[l, j]
                K[k + 1, i, j] = 2.0 * acc
    work[2] += delta / 2
    g[0] = 1.0
    for k in range(1, 5):
        acc = 0.0
        for j in range(1, k + 1):
            acc += j * work[j] * g[k - j]
        g[k] = acc / k
    # E[E^k λ_u λ_v] for k = 1, 2
    for v in range(nv):
        a_, b_ = pu[v], pv[v]
        e1 = g[0] * K[1, a_, b_] + g[1] * K[0, a_, b_]
        e2 = 2.0 * (g[0] * K[2, a_, b_] + g[1] * K[1, a_, b_] + g[2] * K[0, a_, b_])
        mean[v] = c1[v] * e1 + c2[v] * e2
    # E[E^k λ_a λ_b λ_c λ_d] for k = 2, 3, 4 -> second moments
    for v in range(nv):
        a_, b_ = pu[v], pv[v]
        for w in range(v, nv):
            c_, d_ = pu[w], pv[w]
            for q in range(5):
                h = 0.0
                for i in range(q + 1):
                    j = q - i
                    h += (K[i, a_, b_] * K[j, c_, d_] + K[i, a_, c_] * K[j, b_, d_]
                          + K[i, a_, d_] * K[j, b_, c_])
                work[5 + q] = h  # H_q
            e2 = 2.0 * (g[0] * work[7] + g[1] * work[6] + g[2] * work[5])
            e3 = 6.0 * (g[0] * work[8] + g[1] * work[7] + g[2] * work[6] + g[3] * work[5])
            e4 = 24.0 * (g[0] * work[9] + g[1] * work[8] + g[2] * work[7] + g[3] * work[6] + g[4] * work[5])
            val = c1[v] * c1[w] * e2 + (c1[v] * c2[w] + c2[v] * c1[w]) * e3 + c2[v] * c2[w] * e4
            second[v, w] = val
            second[w, v] = val
