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

Implementation: the kernels store ``Cᵀ`` (``Mt[k, i] = C[i, k]``), so that a
rotation of two columns of ``C`` combines two contiguous rows of ``Mt``, a
loop numba vectorises; they also write the saved points (m, a, the risk of
:mod:`mdlib.risk`, Q) into preallocated arrays and check the exit criterion,
so a run costs one kernel call per chunk of steps, whatever the number of
saved points.  The student overlaps they keep (``Om``) are the lower triangle
of ``Q`` packed row after row (row ``j``, ``Q_j0 .. Q_jj``, starts at
``j(j+1)/2``): a pass over them, one per saved point, is then one contiguous
stream of memory that the hardware prefetcher follows from row to row, not p
pieces of the rows of a ``p × p`` array (at p = 500, a pass from main memory
took about half as long).

**Other links** (beyond the paper, :mod:`mdlib.links`).  For a target
``y = σ(w*·x) + sqrt(Δ) z`` and the student ``f = (1/p) Σ_j a_j σ(λ_j)``, SGD
still moves each ``w_j`` along the sample, by ``-(γ/p) E a_j σ'(λ_j) x``: the
chain is unchanged but for ``E`` and the coefficients of the move (``λ_j`` is
replaced by ``σ'(λ_j)/2``, ``λ_j²`` by ``σ(λ_j)`` in the second layer's step).
The kernels take the link as a ``(3, K+1)`` array (:func:`link_arrays`: the
monomial coefficients of ``σ`` and ``σ'/2``, and those of the correlation
function ``κ`` of the risk) and evaluate the polynomials by Horner's rule; an
empty array means the paper's ``σ = z²``, whose code path is left exactly as
it was (same operations in the same order: seeded results are bitwise the
same).  The risk of a link is that of :func:`mdlib.links.population_risk`
(:func:`_link_risk`).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .risk import _risk, _risk_terms, _risk_total

__all__: list[str] = []  # the public entry point is mdlib.simulate_sgd(method="exact")


# ----------------------------------------------------------------------------
# Links other than the paper's (mdlib.links)
# ----------------------------------------------------------------------------

def link_arrays(link):
    """The link of a problem as the kernels take it: a C-contiguous ``(3, K+1)`` float array.

    Row 0: monomial coefficients of ``σ`` (lowest order first); row 1: those
    of ``σ'/2`` (zero-padded); row 2: those of ``κ(ρ) = Σ_k c_k² k! ρ^k``, the
    correlation function of the risk.  ``link=None`` (the paper's ``z²``)
    gives a ``(3, 0)`` array: the kernels then run the paper's code path.
    """
    if link is None:
        return np.zeros((3, 0))
    K = link.degree
    out = np.zeros((3, K + 1))
    out[0] = link.monomial_coefficients
    dc = link.derivative_monomial_coefficients / 2.0
    out[1, : dc.size] = dc
    out[2] = [c * c * math.factorial(k) for k, c in enumerate(link.coefficients)]
    return np.ascontiguousarray(out)


@njit(cache=True, nogil=True, inline="always")
def _horner(c, x):
    """``Σ_k c_k x^k`` (c lowest order first)."""
    acc = 0.0
    for k in range(c.shape[0] - 1, -1, -1):
        acc = acc * x + c[k]
    return acc


@njit(cache=True, nogil=True)
def _link_risk_terms(j, m, row, a, kap):
    """Unit ``j``'s share of the two sums of :func:`_link_risk`, from
    ``row = Q[j, :j+1]``: ``a_j κ(m_j)`` and ``a_j (a_j κ(Q_jj) + 2 Σ_{l<j} a_l κ(Q_jl))``."""
    off = 0.0
    for l in range(j):
        off += a[l] * _horner(kap, row[l])
    return a[j] * _horner(kap, m[j]), a[j] * (a[j] * _horner(kap, row[j]) + 2.0 * off)


@njit(cache=True, nogil=True)
def _link_risk_total(lin, quad, p, delta, kap):
    """:func:`_link_risk` from the sums of :func:`_link_risk_terms` over the units."""
    k1 = 0.0
    for i in range(kap.shape[0]):
        k1 += kap[i]
    return 0.5 * delta + 0.5 * k1 - lin / p + quad / (2.0 * p * p)


@njit(cache=True, nogil=True)
def _link_risk(m, Q, a, delta, L):
    r"""Population risk of a link on the sphere (:func:`mdlib.links.population_risk`),
    ``Δ/2 + κ(1)/2 - (1/p) Σ_j a_j κ(m_j) + (1/2p²) Σ_jl a_j a_l κ(Q_jl)``, from the
    lower triangle of ``Q``; ``L`` from :func:`link_arrays`."""
    p = m.shape[0]
    lin = 0.0
    quad = 0.0
    for j in range(p):
        x, y = _link_risk_terms(j, m, Q[j], a, L[2])
        lin += x
        quad += y
    return _link_risk_total(lin, quad, p, delta, L[2])


@njit(cache=True, nogil=True)
def _any_risk(m, Q, a, delta, L):
    """The risk of the problem's link: Eq. 6 for the paper's (``L`` empty), else :func:`_link_risk`."""
    if L.shape[1] == 0:
        return _risk(m, Q, a, delta)
    return _link_risk(m, Q, a, delta, L)


@njit(cache=True, nogil=True)
def _tri_risk(m, Om, a, delta, L):
    """:func:`_any_risk` from the packed lower triangle ``Om`` of ``Q`` (row ``j``
    at ``j(j+1)/2``): the same sums in the same order."""
    p = m.shape[0]
    lin = 0.0
    tr = 0.0
    quad = 0.0
    for j in range(p):
        o = j * (j + 1) // 2
        row = Om[o:o + j + 1]
        if L.shape[1] == 0:
            x, y, z = _risk_terms(j, m, row, a)
            tr += y
            quad += z
        else:
            x, z = _link_risk_terms(j, m, row, a, L[2])
            quad += z
        lin += x
    if L.shape[1] == 0:
        return _risk_total(lin, tr, quad, p, delta)
    return _link_risk_total(lin, quad, p, delta, L[2])


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


# Loops over slices that start at index 0: numba then proves the indices
# non-negative and LLVM vectorises them (a loop ``range(k, n)`` with a
# variable ``k`` stays scalar).  Each element gets the same operations in the
# same order as in a scalar loop, so the results are bitwise the same.

@njit(cache=True, nogil=True, inline="always")
def _rot(u, w, c, s):
    """``(u, w) ← (c u + s w, -s u + c w)``, elementwise."""
    for i in range(u.shape[0]):
        x = u[i]
        y = w[i]
        u[i] = c * x + s * y
        w[i] = -s * x + c * y


@njit(cache=True, nogil=True, inline="always")
def _axpy(y, x, c):
    """``y ← y + x c``, elementwise."""
    for i in range(y.shape[0]):
        y[i] += x[i] * c


@njit(cache=True, nogil=True, inline="always")
def _add_squares(y, x):
    """``y ← y + x²``, elementwise."""
    for i in range(y.shape[0]):
        y[i] += x[i] * x[i]


@njit(cache=True, nogil=True, inline="always")
def _scale(y, x):
    """``y ← y x``, elementwise."""
    for i in range(y.shape[0]):
        y[i] *= x[i]


# ----------------------------------------------------------------------------
# Overlaps from the coordinates, and the exit criterion
# ----------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _chain_gram(Mt, Om, p):
    """Student overlaps ``Q_jl`` (``l <= j``, packed: ``Om[j(j+1)/2 + l]``) from
    the coordinates ``Mt`` (transposed: ``Mt[k, i] = C[i, k]``), O(p³).

    Each entry is summed over ``k`` in increasing order, as a dot product of
    two rows of ``C`` would be; at large p the sums run as contiguous,
    vectorised updates of whole rows of ``Om`` (same order, same result).
    """
    if p <= 48:  # short rows: plain sums cost less than setting up slices
        for j in range(1, p + 1):
            o = (j - 1) * j // 2
            for l in range(1, j + 1):
                acc = 0.0
                for k in range(l + 1):
                    acc += Mt[k, j] * Mt[k, l]
                Om[o + l - 1] = acc
        return
    for i in range(p * (p + 1) // 2):
        Om[i] = 0.0
    for j in range(1, p + 1):
        o = (j - 1) * j // 2
        for k in range(j + 1):
            l0 = max(k, 1)
            _axpy(Om[o + l0 - 1:o + j], Mt[k, l0:j + 1], Mt[k, j])


@njit(cache=True, nogil=True)
def _chain_gap(Mt, a, Om, p, mode, level, L):
    """Distance to the exit threshold (<= 0 once escaped), from the coordinates.

    mode 1: excess risk (Eq. 6 minus Δ/2, or the link's risk minus Δ/2 when
    ``L`` is not empty) minus ``level`` (Om receives the overlaps, packed,
    recomputed from ``Mt``);
    mode 2: ``level - max_j m_j²`` (App. I).
    """
    if mode == 2:
        best = 0.0
        for j in range(1, p + 1):
            v = Mt[0, j] * Mt[0, j]
            if v > best:
                best = v
        return level - best
    _chain_gram(Mt, Om, p)
    if L.shape[1] > 0:
        return _tri_risk(Mt[0, 1:p + 1], Om, a, 0.0, L) - level
    lin = 0.0
    tr = 0.0
    quad = 0.0
    for j in range(1, p + 1):
        o = (j - 1) * j // 2
        qjj = Om[o + j - 1]
        lin += a[j - 1] * (qjj + 2.0 * Mt[0, j] * Mt[0, j])
        tr += a[j - 1] * qjj
        quad += a[j - 1] * a[j - 1] * qjj * qjj
        for l in range(1, j):
            q = Om[o + l - 1]
            quad += 2.0 * a[j - 1] * a[l - 1] * q * q
    return 1.5 - lin / p + (tr * tr + 2.0 * quad) / (2.0 * p * p) - level


# ----------------------------------------------------------------------------
# Recording
# ----------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _record(k, m, a, risk, m_out, a_out, risk_out):
    """Write ``m``, ``a`` and the risk of save point ``k``.  Returns False,
    writing nothing, if the values are not finite (a diverged run)."""
    if not np.isfinite(risk):
        return False
    p = m.shape[0]
    for j in range(p):
        if not np.isfinite(a[j]):
            return False
    for j in range(p):
        m_out[k, j] = m[j]
        a_out[k, j] = a[j]
    risk_out[k] = risk
    return True


@njit(cache=True, nogil=True)
def _record_Q(k, Q, Q_out):
    """Write the overlaps of save point ``k`` from the lower triangle of ``Q``."""
    for j in range(Q.shape[0]):
        for l in range(j + 1):
            Q_out[k, j, l] = Q[j, l]
            Q_out[k, l, j] = Q[j, l]


@njit(cache=True, nogil=True)
def _record_tri_Q(k, Om, Q_out):
    """:func:`_record_Q` from the packed lower triangle ``Om``."""
    i = 0
    for j in range(Q_out.shape[1]):
        for l in range(j + 1):
            Q_out[k, j, l] = Om[i]
            Q_out[k, l, j] = Om[i]
            i += 1


_GRAM_BUFFER = 32  # rank-one terms of overlap updates buffered before they are applied

# reassociation (vectorised reductions) and fused multiply-adds, but NaNs and
# infinities keep their meaning
_FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, nogil=True)
def _gram_push(buf, nt, lam, a, kappa, hn2, p):
    """Buffer the change of the student overlaps in one step as rank-one terms
    ``x yᵀ`` (rows ``buf[0, t]``, ``buf[1, t]``); returns the new number of
    terms.  The rescaling of the projection goes in ``buf[2]`` of the step's
    last term (written by the caller; ones here).

    With ``v = κ a∘λ``, ``κ = (γ/d)(2/p) E``, the student rows move by
    ``-v_j h``, so ``Ω' = Ω - v λᵀ - λ vᵀ + |h|² v vᵀ = Ω + v wᵀ + w vᵀ`` with
    ``w = |h|² v/2 - λ`` (two terms), or, when all ``a_j`` are equal (``α``),
    ``Ω' = Ω + κα(|h|²κα - 2) λλᵀ`` (one term, half the work); then the
    projection divides row and column j by ``sqrt(nrm_j)`` (``inv_j``).
    """
    a0 = a[0]
    same = True
    for j in range(p):
        if a[j] != a0:
            same = False
    if same:
        c = kappa * a0 * (hn2 * kappa * a0 - 2.0)
        for j in range(p):
            buf[0, nt, j] = c * lam[j + 1]
            buf[1, nt, j] = lam[j + 1]
            buf[2, nt, j] = 1.0
        return nt + 1
    for j in range(p):
        vj = kappa * a[j] * lam[j + 1]
        wj = 0.5 * hn2 * vj - lam[j + 1]
        buf[0, nt, j] = vj
        buf[1, nt, j] = wj
        buf[0, nt + 1, j] = wj
        buf[1, nt + 1, j] = vj
        buf[2, nt, j] = 1.0
        buf[2, nt + 1, j] = 1.0
    return nt + 2


@njit(cache=True, nogil=True)
def _gram_push_link(buf, nt, lam, hs, a, kappa, hn2, p):
    """:func:`_gram_push` for a link: the student rows move by ``-v_j h`` with
    ``v = κ a∘σ'(λ)/2`` (``hs = σ'(λ)/2``), so ``Ω' = Ω + v wᵀ + w vᵀ`` with
    ``w = |h|² v/2 - λ`` (two terms; ``v`` is not proportional to ``λ``)."""
    for j in range(p):
        vj = kappa * a[j] * hs[j + 1]
        wj = 0.5 * hn2 * vj - lam[j + 1]
        buf[0, nt, j] = vj
        buf[1, nt, j] = wj
        buf[0, nt + 1, j] = wj
        buf[1, nt + 1, j] = vj
        buf[2, nt, j] = 1.0
        buf[2, nt + 1, j] = 1.0
    return nt + 2


@njit(cache=True, nogil=True, fastmath=_FAST)
def _gram_flush(Om, buf, nt, nrm, inv, P, p, spherical, m, a, delta):
    """Apply the ``nt`` buffered terms to ``Om`` at once, and return the
    risk (Eq. 6) of the overlaps ``m``, ``Om`` and second layer ``a``,
    computed on the way (each row is read once).

    After steps ``Ω ← D_s (Ω + Σ_{t in s} x_t y_tᵀ) D_s``:
    ``Ω = P Ω P + Σ_t (P_t x_t)(P_t y_t)ᵀ``, with ``P_t`` the product of the
    rescalings from the step of term ``t`` on and ``P`` that of all of them.
    The arithmetic is that of separate updates, O(nt p²), but each row of
    ``Om`` (packed) is read and written once per flush and takes four terms
    per pass: at large p the memory traffic, not the arithmetic, is what costs.  The
    diagonal is set from the row norms ``nrm`` of the coordinates after the
    last step.
    """
    X = buf[0]
    Y = buf[1]
    lin = 0.0
    tr = 0.0
    quad = 0.0
    if spherical:
        for j in range(p):
            P[j] = 1.0
        for t in range(nt - 1, -1, -1):
            for j in range(p):
                P[j] *= buf[2, t, j]
                X[t, j] *= P[j]
                Y[t, j] *= P[j]
    for j in range(p):
        o = j * (j + 1) // 2  # row j of the packed triangle (the diagonal at o + j)
        row = Om[o:o + j]
        if spherical:
            pj = P[j]
            Pl = P[:j]
            for l in range(j):
                row[l] *= pj * Pl[l]
        t = 0
        while t + 4 <= nt:
            x0, x1, x2, x3 = X[t, j], X[t + 1, j], X[t + 2, j], X[t + 3, j]
            Y0, Y1, Y2, Y3 = Y[t, :j], Y[t + 1, :j], Y[t + 2, :j], Y[t + 3, :j]
            for l in range(j):
                row[l] += x0 * Y0[l] + x1 * Y1[l] + x2 * Y2[l] + x3 * Y3[l]
            t += 4
        while t < nt:
            x0 = X[t, j]
            Y0 = Y[t, :j]
            for l in range(j):
                row[l] += x0 * Y0[l]
            t += 1
        Om[o + j] = nrm[j + 1] * inv[j + 1] * inv[j + 1] if spherical else nrm[j + 1]
        x, y, z = _risk_terms(j, m, Om[o:o + j + 1], a)
        lin += x
        tr += y
        quad += z
    return _risk_total(lin, tr, quad, p, delta)


@njit(cache=True, nogil=True)
def _chain_save(k, Mt, a, Om, om_valid, buf, nb, nrm, inv, P, m, p, spherical, delta, L,
                m_out, a_out, risk_out, Q_out, store_Q):
    """Record save point ``k`` of the general chain: the overlaps are those kept
    up to date (``om_valid``: the buffered terms are applied now) or are
    recomputed from the coordinates.  Returns False for a diverged run."""
    for j in range(p):
        m[j] = Mt[0, j + 1] * Mt[0, 0]
    if om_valid:
        risk = _gram_flush(Om, buf, nb, nrm, inv, P, p, spherical, m, a, delta)
        if L.shape[1] > 0:  # the flush computed Eq. 6 on the way: the link's risk instead
            risk = _tri_risk(m, Om, a, delta, L)
    else:
        _chain_gram(Mt, Om, p)
        risk = _tri_risk(m, Om, a, delta, L)
    if not _record(k, m, a, risk, m_out, a_out, risk_out):
        return False
    if store_Q:
        _record_tri_Q(k, Om, Q_out)
    return True


# ----------------------------------------------------------------------------
# The kernels
# ----------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _chain_run(Mt, a, Om, buf, g, lam, cs, sn, nrm, inv, m_tmp, P_tmp, lw, rng, p, d, gamma, delta, spherical,
               train_a, L, stop, save_steps, m_out, a_out, risk_out, Q_out, store_Q,
               exit_mode, level, check_every, pos, gap_state):
    """Advance one run of the chain up to step ``stop``, in place, recording
    and checking for the exit on the way.

    State: ``Mt`` (p+2, p+1), the coordinates transposed (``Mt[k, i] = C[i, k]``,
    last row zero between steps), and ``a``; ``pos = [step, next save index,
    Om valid, steps since Om was recomputed, terms buffered]``.  ``Om``
    (p(p+1)/2, the lower triangle packed row after row) holds the student
    overlaps when they are being kept up to date, with the last few steps in
    ``buf`` (3, B, p).  ``g, lam, cs, sn, nrm, inv, m_tmp,
    P_tmp, lw`` are work arrays.  ``L`` is the link (:func:`link_arrays`;
    empty for the paper's ``z²``).

    At every step ``save_steps[k]`` the state is written into row ``k`` of
    ``m_out, a_out, risk_out`` (and ``Q_out`` if ``store_Q``).  Before a save
    step closer than about p/2 steps the overlaps are updated at O(p²) per
    step (:func:`_gram_push`, :func:`_gram_flush`); otherwise they are
    recomputed at the save step (O(p³), :func:`_chain_gram`), which also
    bounds rounding drift.

    With ``exit_mode`` 1 or 2, at every step that is a multiple of
    ``check_every`` the gap (:func:`_chain_gap`) is computed; the run stops
    once it is <= 0, and ``gap_state[0]`` (the previous gap until then)
    receives the fraction of the last ``check_every`` steps at which it
    crossed zero (linear interpolation).

    Returns status 0 (reached ``stop``), 1 (exited), 2 (diverged).
    """
    n = p + 1
    link = L.shape[1] > 0
    sqrt_delta = np.sqrt(delta)
    dd, cc = _chisquare_consts(float(d - n))
    step = pos[0]
    k = pos[1]
    om_valid = pos[2] != 0
    since_sync = pos[3]
    nb = pos[4]
    n_save = save_steps.shape[0]
    status = 0
    if k < n_save and save_steps[k] == step:
        if not _chain_save(k, Mt, a, Om, om_valid, buf, nb, nrm, inv, P_tmp, m_tmp, p, spherical, delta, L,
                           m_out, a_out, risk_out, Q_out, store_Q):
            status = 2
        if not om_valid:
            om_valid, since_sync = True, 0
        nb = 0
        k += 1
    # keep the overlaps up to date (O(p²) per step) only until a save step
    # closer than about p/2 steps, otherwise recompute them there (O(p³))
    keep = k < n_save and 2 * (save_steps[k] - step) <= n
    while status == 0 and step < stop:
        if keep and not om_valid:
            _chain_gram(Mt, Om, p)
            om_valid, since_sync, nb = True, 0, 0
        om_valid = keep
        # --- sample: coordinates g of sqrt(d) x in the frame, and |ξ_⊥|
        for i in range(n):
            g[i] = rng.standard_normal()
        g[n] = np.sqrt(_chisquare(rng, dd, cc))
        # --- local fields (λ*, λ) = C g  (C lower triangular; row i of Mt is column i of C)
        for i in range(n):
            lam[i] = 0.0
        for kk in range(n):
            _axpy(lam[kk:], Mt[kk, kk:n], g[kk])
        if link:  # σ(λ_j) in lw[0], σ'(λ_j)/2 in lw[1]
            f = 0.0
            for j in range(1, n):
                sv = _horner(L[0], lam[j])
                lw[0, j] = sv
                lw[1, j] = _horner(L[1], lam[j])
                f += a[j - 1] * sv
            E = f / p - _horner(L[0], lam[0])
        else:
            f = 0.0
            for j in range(1, n):
                f += a[j - 1] * lam[j] * lam[j]
            E = f / p - lam[0] * lam[0]
        if delta > 0.0:
            E -= sqrt_delta * rng.standard_normal()
        if not np.isfinite(E) or abs(E) > 1e40:
            status = 2
            break
        # --- phase 1: rotate h = g onto |h| e_0 (rotations of columns of C from the
        # bottom); the angles depend on g only
        for kk in range(n - 1, -1, -1):
            x = g[kk]
            y = g[kk + 1]
            r = np.sqrt(x * x + y * y)
            if r == 0.0:
                cs[kk] = 2.0  # marks "no rotation"
                continue
            cs[kk] = x / r
            sn[kk] = y / r
            g[kk] = r
            g[kk + 1] = 0.0
        for kk in range(n - 1, -1, -1):
            c = cs[kk]
            if c == 2.0:
                continue
            _rot(Mt[kk, kk:], Mt[kk + 1, kk:], c, sn[kk])
        # --- rank-one move: only column 0 of C changes, by -|h| u
        hn = g[0]
        scale = gamma / d * 2.0 / p * E * hn
        if link:  # the paper's step with λ_j → σ'(λ_j)/2 and λ_j² → σ(λ_j)
            if keep:
                nb = _gram_push_link(buf, nb, lam, lw[1], a, gamma / d * 2.0 / p * E, hn * hn, p)
            for j in range(1, n):
                Mt[0, j] -= scale * a[j - 1] * lw[1, j]
            if train_a:
                for j in range(1, n):
                    a[j - 1] -= gamma / (p * d) * E * lw[0, j]
        else:
            if keep:  # (with a before the second layer moves)
                nb = _gram_push(buf, nb, lam, a, gamma / d * 2.0 / p * E, hn * hn, p)
            for j in range(1, n):
                Mt[0, j] -= scale * a[j - 1] * lam[j]
            # --- second layer: a_j ← a_j - (γ/d)(1/p) E λ_j²
            if train_a:
                for j in range(1, n):
                    a[j - 1] -= gamma / (p * d) * E * lam[j] * lam[j]
        # --- phase 2: kill the superdiagonal of C (lower Hessenberg -> lower
        # triangular); row kk of Mt is final after rotation kk: accumulate the
        # squared norms of the rows of C on the way
        norms = spherical or keep
        if norms:
            for i in range(n):
                nrm[i] = 0.0
        for kk in range(n):
            x = Mt[kk, kk]
            y = Mt[kk + 1, kk]
            if y != 0.0:
                r = np.sqrt(x * x + y * y)
                _rot(Mt[kk, kk:], Mt[kk + 1, kk:], x / r, y / r)
                Mt[kk + 1, kk] = 0.0
            if norms:
                i0 = max(kk, 1)
                _add_squares(nrm[i0:], Mt[kk, i0:])
        # the teacher never moves: remove rounding drift of its coordinate
        Mt[0, 0] = 1.0
        # --- projection on the sphere (Eq. 20): each student row of C divided by its norm
        if spherical:
            for i in range(1, n):
                inv[i] = 1.0 / np.sqrt(nrm[i])
            for kk in range(n):
                i0 = max(kk, 1)
                _scale(Mt[kk, i0:], inv[i0:])
        if keep:
            if spherical:
                for j in range(p):
                    buf[2, nb - 1, j] = inv[j + 1]
            if nb > buf.shape[1] - 2:
                _gram_flush(Om, buf, nb, nrm, inv, P_tmp, p, spherical, m_tmp, a, delta)
                nb = 0
            since_sync += 1
        step += 1
        if k < n_save and save_steps[k] == step:
            if not _chain_save(k, Mt, a, Om, om_valid, buf, nb, nrm, inv, P_tmp, m_tmp, p, spherical, delta, L,
                               m_out, a_out, risk_out, Q_out, store_Q):
                status = 2
                break
            if not om_valid:
                om_valid, since_sync = True, 0
            nb = 0
            k += 1
            # (recomputed now and then, so that rounding drift stays bounded)
            keep = k < n_save and 2 * (save_steps[k] - step) <= n and since_sync < 64 * n
        if exit_mode != 0 and step % check_every == 0:
            cur = _chain_gap(Mt, a, Om, p, exit_mode, level, L)
            if exit_mode == 1:  # Om now holds the overlaps recomputed from Mt
                om_valid, since_sync, nb = True, 0, 0
            if cur <= 0.0:
                prev = gap_state[0]
                gap_state[0] = prev / (prev - cur) if prev > 0.0 else 1.0
                status = 1
                break
            gap_state[0] = cur
    pos[0] = step
    pos[1] = k
    pos[2] = 1 if om_valid else 0
    pos[3] = since_sync
    pos[4] = nb
    return status


@njit(cache=True, nogil=True)
def _p1_steps(rng, c0, c1, aa, step, stop, d, gamma, delta, spherical, train_a, exit_mode, level, check_every,
              gap_state):
    """The steps of :func:`_chain_run_p1` from ``step`` to ``stop`` (no saves in
    between), in a loop of their own; returns ``(c0, c1, a, step, status)``."""
    sqrt_delta = np.sqrt(delta)
    dd, cc = _chisquare_consts(float(d - 2))
    status = 0
    for _ in range(stop - step):
        g0 = rng.standard_normal()
        g1 = rng.standard_normal()
        s2 = _chisquare(rng, dd, cc)
        lam_ = c0 * g0 + c1 * g1
        E = aa * lam_ * lam_ - g0 * g0
        if delta > 0.0:
            E -= sqrt_delta * rng.standard_normal()
        if not np.isfinite(E) or abs(E) > 1e40:
            status = 2
            break
        u = gamma / d * 2.0 * E * aa * lam_
        if train_a:
            aa -= gamma / d * E * lam_ * lam_
        c0 = c0 - u * g0
        t = c1 - u * g1
        c1 = np.sqrt(t * t + u * u * s2)
        if spherical:
            inv_ = 1.0 / np.sqrt(c0 * c0 + c1 * c1)
            c0 *= inv_
            c1 *= inv_
        step += 1
        if exit_mode != 0 and step % check_every == 0:
            if exit_mode == 2:
                cur = level - c0 * c0
            else:
                q = c0 * c0 + c1 * c1
                cur = 1.5 - aa * (q + 2.0 * c0 * c0) + 1.5 * aa * aa * q * q - level
            if cur <= 0.0:
                prev = gap_state[0]
                gap_state[0] = prev / (prev - cur) if prev > 0.0 else 1.0
                status = 1
                break
            gap_state[0] = cur
    return c0, c1, aa, step, status


@njit(cache=True, nogil=True, fastmath={"contract"})
def _link_fields(L, lam, lam_star):
    """``(σ(λ), σ(λ*), σ'(λ)/2)`` by Horner's rule in one loop (three independent
    chains, with fused multiply-adds: 10 % faster than three loops)."""
    sv = 0.0
    sv_star = 0.0
    hs = 0.0
    for i in range(L.shape[1] - 1, -1, -1):
        sv = sv * lam + L[0, i]
        sv_star = sv_star * lam_star + L[0, i]
        hs = hs * lam + L[1, i]
    return sv, sv_star, hs


@njit(cache=True, nogil=True)
def _p1_steps_link(rng, c0, c1, aa, step, stop, d, gamma, delta, spherical, train_a, L, exit_mode, level,
                   check_every, gap_state):
    """:func:`_p1_steps` for a link ``L`` (:func:`link_arrays`): the same
    draws, with ``E = a σ(λ) - σ(λ*) - sqrt(Δ) z``, the move
    ``u = (γ/d) 2 E a σ'(λ)/2`` and the link's excess risk as criterion 1."""
    sqrt_delta = np.sqrt(delta)
    dd, cc = _chisquare_consts(float(d - 2))
    kap = L[2]
    half_k1 = 0.0
    for i in range(kap.shape[0]):
        half_k1 += 0.5 * kap[i]
    status = 0
    for _ in range(stop - step):
        g0 = rng.standard_normal()
        g1 = rng.standard_normal()
        s2 = _chisquare(rng, dd, cc)
        lam_ = c0 * g0 + c1 * g1
        sv, sv_star, hs = _link_fields(L, lam_, g0)
        E = aa * sv - sv_star
        if delta > 0.0:
            E -= sqrt_delta * rng.standard_normal()
        if not np.isfinite(E) or abs(E) > 1e40:
            status = 2
            break
        u = gamma / d * 2.0 * E * aa * hs
        if train_a:
            aa -= gamma / d * E * sv
        c0 = c0 - u * g0
        t = c1 - u * g1
        c1 = np.sqrt(t * t + u * u * s2)
        if spherical:
            inv_ = 1.0 / np.sqrt(c0 * c0 + c1 * c1)
            c0 *= inv_
            c1 *= inv_
        step += 1
        if exit_mode != 0 and step % check_every == 0:
            if exit_mode == 2:
                cur = level - c0 * c0
            else:  # the link's excess risk at p = 1: κ(1)/2 - a κ(m) + a² κ(q)/2
                q = c0 * c0 + c1 * c1
                cur = half_k1 - aa * _horner(kap, c0) + 0.5 * aa * aa * _horner(kap, q) - level
            if cur <= 0.0:
                prev = gap_state[0]
                gap_state[0] = prev / (prev - cur) if prev > 0.0 else 1.0
                status = 1
                break
            gap_state[0] = cur
    return c0, c1, aa, step, status


@njit(cache=True, nogil=True)
def _chain_run_p1(Mt, a, Om, buf, g, lam, cs, sn, nrm, inv, m_tmp, P_tmp, lw, rng, p, d, gamma, delta, spherical,
                  train_a, L, stop, save_steps, m_out, a_out, risk_out, Q_out, store_Q,
                  exit_mode, level, check_every, pos, gap_state):
    """:func:`_chain_run` written out for p = 1 (same arguments and law).

    With one student the coordinates are ``C = [[1, 0], [m, r]]`` and a step
    maps the student row ``(m, r)`` to ``(m - u g_0, r - u g_1, -u s)``,
    whose triangular form is ``(m - u g_0, sqrt((r - u g_1)² + u² s²))``;
    no rotation is needed.  This is the paper's main case, so it gets its
    own loop (about twice as fast as the general one).
    """
    link = L.shape[1] > 0
    c00 = Mt[0, 0]
    c0 = Mt[0, 1]
    c1 = Mt[1, 1]
    aa = a[0]
    step = pos[0]
    k = pos[1]
    n_save = save_steps.shape[0]
    status = 0
    if k < n_save and save_steps[k] == step:
        m_tmp[0] = c0 * c00
        Om[0] = c0 * c0 + c1 * c1
        if not _record(k, m_tmp, a, _tri_risk(m_tmp, Om, a, delta, L), m_out, a_out, risk_out):
            status = 2
        elif store_Q:
            _record_tri_Q(k, Om, Q_out)
        k += 1
    next_save = save_steps[k] if k < n_save else -1
    while status == 0 and step < stop:
        # a tight loop up to the next save step (or stop), then the save
        seg_end = next_save if step < next_save < stop else stop
        if link:
            c0, c1, aa, step, status = _p1_steps_link(rng, c0, c1, aa, step, seg_end, d, gamma, delta, spherical,
                                                      train_a, L, exit_mode, level, check_every, gap_state)
        else:
            c0, c1, aa, step, status = _p1_steps(rng, c0, c1, aa, step, seg_end, d, gamma, delta, spherical, train_a,
                                                 exit_mode, level, check_every, gap_state)
        if step == next_save and status != 2:  # (also when the run exits at this very step)
            m_tmp[0] = c0 * c00
            Om[0] = c0 * c0 + c1 * c1
            a[0] = aa
            if not _record(k, m_tmp, a, _tri_risk(m_tmp, Om, a, delta, L), m_out, a_out, risk_out):
                status = 2
            elif store_Q:
                _record_tri_Q(k, Om, Q_out)
            k += 1
            next_save = save_steps[k] if k < n_save else -1
    Mt[0, 1] = c0
    Mt[1, 1] = c1
    a[0] = aa
    pos[0] = step
    pos[1] = k
    return status
