r"""One-pass SGD: full-dimensional simulation and the driver shared with the exact chain.

``simulate_sgd(problem, init, t_max, method=...)`` runs SGD and returns a
:class:`~mdlib.trajectory.Trajectory`; with ``exit=Exit(T, criterion)`` every
run stops at its exit from mediocrity (Eq. 9) and ``Trajectory.t_exit``
holds the exit times.  ``sgd_exit_times`` is the short form for exit times
only.

``method="full"`` moves d-dimensional weight vectors (the ground truth);
``method="exact"`` moves the exact low-dimensional chain of
:mod:`mdlib.chain`, whose law is the same at a cost independent of d;
``method="auto"`` (the default) takes the cheaper of the two for the given
``(p, d)``.

Implementation notes: every run owns a ``numpy.random.Generator`` spawned
from one ``SeedSequence`` (``mdlib._random``), so results are bitwise
reproducible for a given seed whatever the number of threads; runs are
spread over threads running GIL-free numba kernels.  The kernels record
the saved time points themselves, into preallocated arrays, and stop at the
exit; there is no Python call per saved point.
"""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

from ._random import run_generators
from ._validate import check_choice, check_exit, check_init, check_int, check_real, check_t_save
from .chain import (
    _GRAM_BUFFER,
    _any_risk,
    _chain_gap,
    _chain_gram,
    _chain_run,
    _chain_run_p1,
    _horner,
    _link_risk,
    _record,
    _record_Q,
    _record_tri_Q,
    link_arrays,
)
from .problem import Problem, State
from .trajectory import Exit, Trajectory, time_grid

__all__ = ["simulate_sgd", "sgd_exit_times"]


# ----------------------------------------------------------------------------
# Full-dimensional kernel
# ----------------------------------------------------------------------------

@njit(cache=True, nogil=True, fastmath=True)
def _full_gram(W, G, p, n_cols):
    """``G[j, l] = W_j·W_l`` for ``l < j`` (the diagonal is ``norms2``), from
    the first ``n_cols`` coordinates (the others being zero), O(p² n_cols)."""
    for j in range(p):
        for l in range(j):
            acc = 0.0
            for i in range(n_cols):
                acc += W[j, i] * W[l, i]
            G[j, l] = acc


@njit(cache=True, nogil=True)
def _full_gap(W, norms2, G, a, p, d, spherical, mode, level):
    """Distance to the exit threshold (<= 0 once escaped); see ``mdlib.chain._chain_gap``.

    ``G`` holds the off-diagonal inner products ``W_j·W_l`` (lower triangle).
    """
    m2max = 0.0
    lin = 0.0
    tr = 0.0
    quad = 0.0
    for j in range(p):
        sj2 = d / norms2[j] if spherical else 1.0
        mj2 = W[j, 0] * W[j, 0] * sj2 / d
        m2max = max(m2max, mj2)
        if mode == 1:
            qjj = 1.0 if spherical else norms2[j] / d
            lin += a[j] * (qjj + 2.0 * mj2)
            tr += a[j] * qjj
            quad += a[j] * a[j] * qjj * qjj
            for l in range(j):
                q = G[j, l]
                q /= d
                if spherical:
                    q *= d / np.sqrt(norms2[j] * norms2[l])
                quad += 2.0 * a[j] * a[l] * q * q
    if mode == 2:
        return level - m2max
    return 1.5 - lin / p + (tr * tr + 2.0 * quad) / (2.0 * p * p) - level


@njit(cache=True, nogil=True)
def _full_stats(W, norms2, G, p, d, spherical, m, Q, s):
    """m and Q (lower triangle) of the weights ``sqrt(d) W_j/|W_j|`` (projected)
    or ``W_j``; ``s`` (p) is a work array."""
    for j in range(p):
        s[j] = 1.0 / np.sqrt(norms2[j]) if spherical else 1.0 / d
    for j in range(p):
        if spherical:
            m[j] = W[j, 0] * np.sqrt(d / norms2[j]) / np.sqrt(d)
            Q[j, j] = 1.0
            sj = s[j]
            for l in range(j):
                Q[j, l] = G[j, l] * sj * s[l]
        else:
            m[j] = W[j, 0] / np.sqrt(d)
            Q[j, j] = norms2[j] / d
            for l in range(j):
                Q[j, l] = G[j, l] / d


@njit(cache=True, nogil=True, fastmath=True)
def _full_step(W, norms2, a, G, x, lam, raw, coef, rng, p, d, gamma, delta, spherical, train_a, gram):
    """One step of d-dimensional SGD, in place (see :func:`_full_run`); False if
    the run diverged (the state is then left as it was, but for ``x``)."""
    inv_sqrt_d = 1.0 / np.sqrt(d)
    sqrt_d = np.sqrt(d)
    sqrt_delta = np.sqrt(delta)
    x2 = 0.0
    for i in range(d):
        xi = rng.standard_normal() * inv_sqrt_d
        x[i] = xi
        x2 += xi * xi
    for j in range(p):
        acc = 0.0
        for i in range(d):
            acc += W[j, i] * x[i]
        lam[j] = acc
    if gram:  # W_j·x, before the rescaling below
        for j in range(p):
            raw[j] = lam[j]
    if spherical:
        for j in range(p):
            lam[j] *= sqrt_d / np.sqrt(norms2[j])
    lam_star = sqrt_d * x[0]
    f = 0.0
    for j in range(p):
        f += a[j] * lam[j] * lam[j]
    E = f / p - lam_star * lam_star - sqrt_delta * rng.standard_normal()
    if not np.isfinite(E) or abs(E) > 1e40:
        return False
    for j in range(p):
        cj = gamma * 2.0 / p * E * a[j] * lam[j]
        if spherical:  # gradient step on the actual weight, expressed on W_j
            cj *= np.sqrt(norms2[j]) * inv_sqrt_d
        coef[j] = cj
        nrm = 0.0
        for i in range(d):
            w = W[j, i] - cj * x[i]
            W[j, i] = w
            nrm += w * w
        norms2[j] = nrm
    if gram:
        for j in range(p):
            cj = coef[j]
            wj = x2 * cj - raw[j]
            for l in range(j):
                G[j, l] += wj * coef[l] - cj * raw[l]
    if train_a:
        for j in range(p):
            a[j] -= gamma / (p * d) * E * lam[j] * lam[j]
    if spherical:
        # keep the stored directions at norm sqrt(d) now and then, so that
        # nothing under- or overflows; the weights themselves are unchanged
        for j in range(p):
            if norms2[j] > 4.0 * d or norms2[j] < 0.25 * d:
                s = sqrt_d / np.sqrt(norms2[j])
                for i in range(d):
                    W[j, i] *= s
                norms2[j] = d
                for l in range(j):
                    G[j, l] *= s
                for l in range(j + 1, p):
                    G[l, j] *= s
    return True


@njit(cache=True, nogil=True, fastmath=True)
def _full_step_link(W, norms2, a, G, x, lam, raw, coef, lw, rng, p, d, gamma, delta, spherical, train_a, gram, L):
    """:func:`_full_step` for a link ``L`` (:func:`mdlib.chain.link_arrays`, not
    empty): ``σ(λ_j)`` and ``σ'(λ_j)/2`` (in ``lw[0]``, ``lw[1]``) replace
    ``λ_j²`` and ``λ_j``.  A separate copy, so that the paper's step compiles
    exactly as before (with ``fastmath``, a branch in it changes the rounding)."""
    inv_sqrt_d = 1.0 / np.sqrt(d)
    sqrt_d = np.sqrt(d)
    sqrt_delta = np.sqrt(delta)
    x2 = 0.0
    for i in range(d):
        xi = rng.standard_normal() * inv_sqrt_d
        x[i] = xi
        x2 += xi * xi
    for j in range(p):
        acc = 0.0
        for i in range(d):
            acc += W[j, i] * x[i]
        lam[j] = acc
    if gram:  # W_j·x, before the rescaling below
        for j in range(p):
            raw[j] = lam[j]
    if spherical:
        for j in range(p):
            lam[j] *= sqrt_d / np.sqrt(norms2[j])
    lam_star = sqrt_d * x[0]
    f = 0.0
    for j in range(p):
        sv = _horner(L[0], lam[j])
        lw[0, j] = sv
        lw[1, j] = _horner(L[1], lam[j])
        f += a[j] * sv
    E = f / p - _horner(L[0], lam_star) - sqrt_delta * rng.standard_normal()
    if not np.isfinite(E) or abs(E) > 1e40:
        return False
    for j in range(p):
        cj = gamma * 2.0 / p * E * a[j] * lw[1, j]
        if spherical:  # gradient step on the actual weight, expressed on W_j
            cj *= np.sqrt(norms2[j]) * inv_sqrt_d
        coef[j] = cj
        nrm = 0.0
        for i in range(d):
            w = W[j, i] - cj * x[i]
            W[j, i] = w
            nrm += w * w
        norms2[j] = nrm
    if gram:
        for j in range(p):
            cj = coef[j]
            wj = x2 * cj - raw[j]
            for l in range(j):
                G[j, l] += wj * coef[l] - cj * raw[l]
    if train_a:
        for j in range(p):
            a[j] -= gamma / (p * d) * E * lw[0, j]
    if spherical:
        # keep the stored directions at norm sqrt(d) now and then, so that
        # nothing under- or overflows; the weights themselves are unchanged
        for j in range(p):
            if norms2[j] > 4.0 * d or norms2[j] < 0.25 * d:
                s = sqrt_d / np.sqrt(norms2[j])
                for i in range(d):
                    W[j, i] *= s
                norms2[j] = d
                for l in range(j):
                    G[j, l] *= s
                for l in range(j + 1, p):
                    G[l, j] *= s
    return True


@njit(cache=True, nogil=True)
def _full_run(W, norms2, a, G, x, lam, raw, coef, m_tmp, Q_tmp, s_tmp, lw, rng, p, d, gamma, delta, spherical,
              train_a, L, stop, save_steps, m_out, a_out, risk_out, Q_out, store_Q,
              exit_mode, level, check_every, pos, gap_state):
    """Advance d-dimensional SGD up to step ``stop``, in place, recording and
    checking for the exit on the way.

    The teacher is ``w* = sqrt(d) e_0`` (any fixed direction is equivalent by
    rotation invariance).  In projected mode ``W`` holds unnormalised
    directions and ``norms2`` their squared norms; the weights are
    ``sqrt(d) W_j / |W_j|``.  ``G`` holds the inner products ``W_j·W_l``
    (l < j), kept up to date at O(p²) per step when they are needed (saves,
    or the risk criterion at p > 1): with ``λ_j = W_j·x`` and ``|x|²``,
    ``(W_j - c_j x)·(W_l - c_l x)`` is exact; they are recomputed from ``W``
    every d steps, so that rounding drift stays bounded.  ``pos = [step,
    next save index, steps since G was recomputed (-1: G is stale)]``.
    Saves, exit checks, the link ``L`` and the return value are as in
    ``mdlib.chain._chain_run``.
    """
    link = L.shape[1] > 0
    step = pos[0]
    k = pos[1]
    since_sync = pos[2]
    n_save = save_steps.shape[0]
    gram = p > 1 and (n_save > k or exit_mode == 1)
    if gram and since_sync < 0:  # G was left behind (or never computed)
        _full_gram(W, G, p, d)
        since_sync = 0
    status = 0
    if k < n_save and save_steps[k] == step:
        _full_stats(W, norms2, G, p, d, spherical, m_tmp, Q_tmp, s_tmp)
        if not _record(k, m_tmp, a, _any_risk(m_tmp, Q_tmp, a, delta, L), m_out, a_out, risk_out):
            status = 2
        elif store_Q:
            _record_Q(k, Q_tmp, Q_out)
        k += 1
    while status == 0 and step < stop:
        if link:
            ok = _full_step_link(W, norms2, a, G, x, lam, raw, coef, lw, rng, p, d, gamma, delta, spherical, train_a,
                                 gram, L)
        else:
            ok = _full_step(W, norms2, a, G, x, lam, raw, coef, rng, p, d, gamma, delta, spherical, train_a, gram)
        if not ok:
            status = 2
            break
        step += 1
        if gram:
            since_sync += 1
            if since_sync >= d:
                _full_gram(W, G, p, d)
                since_sync = 0
        if k < n_save and save_steps[k] == step:
            _full_stats(W, norms2, G, p, d, spherical, m_tmp, Q_tmp, s_tmp)
            if not _record(k, m_tmp, a, _any_risk(m_tmp, Q_tmp, a, delta, L), m_out, a_out, risk_out):
                status = 2
                break
            if store_Q:
                _record_Q(k, Q_tmp, Q_out)
            k += 1
        if exit_mode != 0 and step % check_every == 0:
            if exit_mode == 1 and link:  # the link's excess risk, from m and Q
                _full_stats(W, norms2, G, p, d, spherical, m_tmp, Q_tmp, s_tmp)
                cur = _link_risk(m_tmp, Q_tmp, a, 0.0, L) - level
            else:
                cur = _full_gap(W, norms2, G, a, p, d, spherical, exit_mode, level)
            if cur <= 0.0:
                prev = gap_state[0]
                gap_state[0] = prev / (prev - cur) if prev > 0.0 else 1.0
                status = 1
                break
            gap_state[0] = cur
    pos[0] = step
    pos[1] = k
    pos[2] = since_sync if gram else -1
    return status


# ----------------------------------------------------------------------------
# Per-run engines: a common interface over the two kernels
# ----------------------------------------------------------------------------

def _no_saves(p):
    """Empty output arrays: a run that records nothing."""
    return np.zeros(0, np.int64), np.zeros((0, p)), np.zeros((0, p)), np.zeros(0), np.zeros((0, p, p)), False


class _ChainRun:
    """One run of the exact chain (:mod:`mdlib.chain`): its state and kernel."""

    def __init__(self, problem, coords, a, rng, generic=False, L=None):
        p = problem.p
        n = p + 1
        self.kernel = _chain_run_p1 if (p == 1 and not generic) else _chain_run
        self.pb, self.rng = problem, rng
        # the link as the kernels take it (tests may pass L: e.g. z² through the link path)
        self.L = link_arrays(problem.link) if L is None else np.ascontiguousarray(L, dtype=float)
        self.Mt = np.zeros((n + 1, n))  # coordinates, transposed: Mt[k, i] = C[i, k]
        self.Mt[:n] = coords.T
        self.a = a.copy()
        self.Om = np.zeros(p * (p + 1) // 2)  # the student overlaps, packed (see mdlib.chain)
        self.work = (np.zeros((3, _GRAM_BUFFER, p)), np.zeros(n + 1), np.zeros(n), np.zeros(n), np.zeros(n),
                     np.zeros(n), np.zeros(n), np.zeros(p), np.zeros(p), np.zeros((2, n)))
        self.pos = np.zeros(5, np.int64)
        self.gap_state = np.zeros(1)

    @property
    def step(self):
        return int(self.pos[0])

    def run(self, stop, saves, exit_mode=0, level=0.0, check_every=1):
        pb = self.pb
        return self.kernel(self.Mt, self.a, self.Om, *self.work, self.rng, pb.p, pb.d, pb.gamma, pb.delta,
                           pb.spherical, pb.train_second_layer, self.L, stop, *saves,
                           exit_mode, level, check_every, self.pos, self.gap_state)

    def advance(self, n):
        """``n`` steps, recording nothing (tests and benchmarks)."""
        return self.run(self.step + n, _no_saves(self.pb.p))

    def gap(self, mode, level):
        self.pos[2] = 0  # Om is used as scratch space
        return _chain_gap(self.Mt, self.a, self.Om, self.pb.p, mode, level, self.L)

    def stats(self):
        """(m, Q, a), recomputed from the coordinates."""
        p = self.pb.p
        _chain_gram(self.Mt, self.Om, p)
        self.pos[2] = 0
        Q = np.zeros((1, p, p))
        _record_tri_Q(0, self.Om, Q)  # unpacked as the kernels record it
        return self.Mt[0, 1:] * self.Mt[0, 0], Q[0], self.a.copy()


class _FullRun:
    """One run of d-dimensional SGD: its state and kernel."""

    def __init__(self, problem, coords, a, rng, L=None):
        p, d = problem.p, problem.d
        self.pb, self.rng = problem, rng
        self.L = link_arrays(problem.link) if L is None else np.ascontiguousarray(L, dtype=float)
        # embed the coordinates: w* = sqrt(d) e_0, w_j = sqrt(d) (C_j, 0, ..., 0)
        self.W = np.zeros((p, d))
        self.W[:, : p + 1] = np.sqrt(d) * coords[1:]
        self.norms2 = np.sum(self.W**2, axis=1)
        self.G = np.zeros((p, p))
        _full_gram(self.W, self.G, p, p + 1)  # the other coordinates are zero
        self.a = a.copy()
        self.work = (np.zeros(d), np.zeros(p), np.zeros(p), np.zeros(p), np.zeros(p), np.zeros((p, p)), np.zeros(p),
                     np.zeros((2, p)))
        self.pos = np.zeros(3, np.int64)
        self.gap_state = np.zeros(1)

    @property
    def step(self):
        return int(self.pos[0])

    def run(self, stop, saves, exit_mode=0, level=0.0, check_every=1):
        pb = self.pb
        return _full_run(self.W, self.norms2, self.a, self.G, *self.work, self.rng, pb.p, pb.d, pb.gamma, pb.delta,
                         pb.spherical, pb.train_second_layer, self.L, stop, *saves,
                         exit_mode, level, check_every, self.pos, self.gap_state)

    def advance(self, n):
        """``n`` steps, recording nothing (tests and benchmarks)."""
        return self.run(self.step + n, _no_saves(self.pb.p))

    def _sync(self):
        if self.pos[2] < 0:
            _full_gram(self.W, self.G, self.pb.p, self.pb.d)
            self.pos[2] = 0

    def gap(self, mode, level):
        pb = self.pb
        self._sync()
        if mode == 1 and self.L.shape[1] > 0:
            m, Q, a = self.stats()
            return float(_link_risk(m, Q, a, 0.0, self.L)) - level
        return _full_gap(self.W, self.norms2, self.G, self.a, pb.p, pb.d, pb.spherical, mode, level)

    def stats(self):
        """(m, Q, a), with Q from the inner products kept by the kernel."""
        pb = self.pb
        self._sync()
        m, Q = np.zeros(pb.p), np.zeros((pb.p, pb.p))
        _full_stats(self.W, self.norms2, self.G, pb.p, pb.d, pb.spherical, m, Q, np.zeros(pb.p))
        return m, np.tril(Q) + np.tril(Q, -1).T, self.a.copy()


_ENGINES = {"exact": _ChainRun, "full": _FullRun}


# ----------------------------------------------------------------------------
# Choice of method, threading helpers
# ----------------------------------------------------------------------------

# Cost per step in ns on the development machine (AMD EPYC, one thread), fitted
# by benchmarks/cost_model.py where the two costs cross (d from about p to 10 p);
# only the comparison of the two matters.
_COST_CHAIN_P1 = 65.0  # the p = 1 kernel
_COST_CHAIN = (110.0, 58.0, 0.61)  # a + b n + c n², n = p + 1: O(n) rotations of O(n) entries
_COST_FULL = (110.0, 15.0, 0.36)  # a + d (b + c p): d normals, p dot products and updates of length d


def _step_costs(p, d, chain_p1=_COST_CHAIN_P1, chain=_COST_CHAIN, full=_COST_FULL):
    """Modelled cost per step in ns of the chain and of full SGD at (p, d), with
    the constants above (or others: benchmarks/cost_model.py fits them)."""
    n = p + 1
    c = chain_p1 if p == 1 else chain[0] + chain[1] * n + chain[2] * n * n
    return c, full[0] + d * (full[1] + full[2] * p)


def _auto_method(p, d):
    """The cheaper exact method for (p, d), by the cost model above: the chain
    (~p² per step) unless d is within a small factor of p (full SGD, ~p d)."""
    chain, full = _step_costs(p, d)
    return "exact" if chain <= full else "full"


def _engine(method, p, d):
    """The engine that ``method`` ("auto", "exact" or "full") runs at (p, d)."""
    return _auto_method(p, d) if method == "auto" else method


def _default_threads():
    """Threads (or local workers) when none are given: the cores this process may use, as numba counts
    them (``numba.config.NUMBA_NUM_THREADS``: the CPU affinity mask, or the environment variable
    ``NUMBA_NUM_THREADS`` when it is set).  ``make test`` sets it to 1 for the unit tests, whose runs
    are too short to gain from a second thread (the tests of the threaded paths pass ``n_threads``)."""
    return max(1, int(numba.config.NUMBA_NUM_THREADS))


def _n_threads(n_threads, n_runs):
    if n_threads is None:
        n_threads = _default_threads()
    n_threads = check_int("n_threads", n_threads, 1)
    return max(1, min(n_threads, n_runs))


def _map_runs(fn, n_runs, n_threads, progress, desc):
    """Apply ``fn(r)`` to every run index, on threads, with a progress bar."""
    bar = None
    if progress:
        from tqdm import tqdm  # plain text bar: works in terminals, notebooks and papermill

        bar = tqdm(total=n_runs, desc=desc, unit="run")

    def wrapped(r):
        out = fn(r)
        if bar is not None:
            bar.update(1)
        return out

    try:
        if n_threads == 1:
            return [wrapped(r) for r in range(n_runs)]
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            return list(pool.map(wrapped, range(n_runs)))
    finally:
        if bar is not None:
            bar.close()


def _warn_diverged(diverged, method):
    n = int(np.sum(diverged))
    if n:
        warnings.warn(
            f"{n} of {diverged.size} {method} runs diverged (weights blew up: the learning rate is "
            "too large for plain SGD); their values are NaN from the divergence on and "
            "Trajectory.diverged marks them",
            RuntimeWarning,
            stacklevel=3,
        )


# ----------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------

def simulate_sgd(problem: Problem, init: State, t_max: float, method: str = "auto", seed=None,
                 t_save=None, store_Q: bool | None = None, n_threads: int | None = None,
                 progress: bool = False, exit: Exit | None = None, check_every: int | None = None) -> Trajectory:
    r"""Simulate one-pass SGD (Eq. 4, or projected Eq. 20) for every run of ``init``.

    Each step draws a fresh sample ``x ~ N(0, I_d/d)``, ``y = (w*·x)² + sqrt(Δ) z``
    and moves ``w_j ← w_j - γ (2/p)(f - y) a_j λ_j x``; with a trained second
    layer also ``a_j ← a_j - (γ/d)(1/p)(f - y) λ_j²``; in projected mode each
    ``w_j`` is then put back on the sphere of radius ``sqrt(d)``.  Time is
    ``t = ν γ/(p d)``.

    For a problem with another link ``σ`` (``problem.link``, beyond the paper;
    :mod:`mdlib.links`): ``y = σ(w*·x) + sqrt(Δ) z``,
    ``f = (1/p) Σ_j a_j σ(λ_j)``, and the steps
    ``w_j ← w_j - γ (1/p)(f - y) a_j σ'(λ_j) x`` and
    ``a_j ← a_j - (γ/d)(1/p)(f - y) σ(λ_j)``; the recorded risk and the exit
    criterion ``"risk"`` are that link's (:func:`mdlib.links.population_risk`).
    Both engines take any ``p``.

    Parameters
    ----------
    problem : Problem
    init : State
        Initial conditions, one per run (``random_init`` or ``make_state``;
        ``state.repeat(n)`` for many runs from one start).
    t_max : float
        Final time (``> 0``); ``problem.steps(t_max)`` steps are made.
    method : {"auto", "exact", "full"}
        The exact low-dimensional chain (cost ~p² per step, independent of
        d), d-dimensional vectors (cost ~p d per step), or the cheaper of
        the two for ``(p, d)`` (the chain unless d is close to p).  Both
        have the law of SGD; ``Trajectory.method`` says which one ran.
    seed : int, SeedSequence or None
        Runs are bitwise reproducible for a given seed.
    t_save : array_like, optional
        Increasing times at which to save (rounded to whole steps); default
        :func:`~mdlib.trajectory.time_grid`.  ``()`` saves nothing (for exit
        times only).
    store_Q : bool, optional
        Store ``Q`` (default: if ``p <= 64``).
    n_threads : int, optional
        Threads over which runs are spread (default: the cores this process may use;
        the environment variable ``NUMBA_NUM_THREADS`` sets it).
    progress : bool
        Show a progress bar over runs.
    exit : Exit, optional
        Stop every run at its exit from mediocrity (Eq. 9, or the max-m
        criterion of App. I) and fill ``Trajectory.t_exit``: the criterion
        is evaluated every ``check_every`` steps and the crossing located by
        linear interpolation between checks; ``inf`` for runs that have not
        exited by ``t_max``, ``nan`` for diverged runs.  Saved values after
        a run's exit are NaN.
    check_every : int, optional
        Steps between exit checks (default 1 when the check is cheap, else
        about ``p/4`` for the chain).  The resolution,
        ``check_every · γ/(p d)``, is far below the run-to-run spread of
        exit times.

    Returns
    -------
    Trajectory
        With ``method`` ``"sgd-exact"`` or ``"sgd-full"``.  Runs that blow up
        are flagged in ``diverged`` (and a RuntimeWarning is issued).

    Examples
    --------
    >>> import mdlib
    >>> pb = mdlib.Problem(p=1, d=500, gamma=0.1, delta=1e-3)
    >>> init = mdlib.random_init(pb, 3, seed=0)
    >>> tr = mdlib.simulate_sgd(pb, init, 10.0, seed=1, exit=mdlib.Exit(T=0.5))
    >>> tr.method, tr.t_exit.shape
    ('sgd-exact', (3,))
    """
    check_init(problem, init)
    check_choice("method", method, ("auto", "exact", "full"))
    t_max = check_real("t_max", t_max, positive=True)
    exit = check_exit(exit)
    t_save = check_t_save(t_save, t_max, lambda tm: time_grid(tm, t_min=min(problem.dt, tm / 2)))
    p, d, n_runs = problem.p, problem.d, init.n_runs
    method = _engine(method, p, d)
    n_total = problem.steps(t_max)
    save_steps = np.unique(np.minimum(np.rint(t_save / problem.dt).astype(np.int64), n_total))
    t = save_steps * problem.dt
    n_t = save_steps.size
    store_Q = (p <= 64) if store_Q is None else bool(store_Q)
    m_out = np.full((n_runs, n_t, p), np.nan)
    a_out = np.full((n_runs, n_t, p), np.nan)
    Q_out = np.full((n_runs, n_t, p, p), np.nan) if store_Q else None
    no_Q = np.zeros((0, p, p))
    risk = np.full((n_runs, n_t), np.nan)
    diverged = np.zeros(n_runs, dtype=bool)
    mode = 0 if exit is None else exit.mode
    if check_every is None:
        cheap = mode == 2 or (p == 1 and problem.spherical) or method == "full"
        check_every = 1 if cheap else max(1, p // 4)
    check_every = check_int("check_every", check_every, 1)
    t_exit = None if exit is None else np.full(n_runs, np.inf)
    rngs = run_generators(seed, n_runs)
    engine = _ENGINES[method]
    # steps per kernel call (a fraction of a second: keeps Ctrl-C working, costs nothing)
    chunk = max(1, 2**24 // ((p + 1) ** 2 if method == "exact" else p * d))

    def one_run(r):
        run = engine(problem, init.coords[r], init.a[r], rngs[r])
        saves = (save_steps, m_out[r], a_out[r], risk[r], Q_out[r] if store_Q else no_Q, store_Q)
        level = 0.0
        if mode:
            g0 = run.gap(mode, 0.0)
            level = (1 - exit.T) * g0 if mode == 1 else exit.T + (1 - exit.T) * (-g0)
            run.gap_state[0] = run.gap(mode, level)
        while True:
            status = run.run(min(run.step + chunk, n_total), saves, mode, level, check_every)
            if status or run.step >= n_total:
                break
        if status == 2:
            diverged[r] = True
            if t_exit is not None:
                t_exit[r] = np.nan
        elif status == 1:
            steps = run.step
            last = steps % check_every or check_every
            t_exit[r] = (steps - last + run.gap_state[0] * last) * problem.dt
            late = t > t_exit[r]
            m_out[r, late] = a_out[r, late] = risk[r, late] = np.nan
            if store_Q:
                Q_out[r, late] = np.nan

    _map_runs(one_run, n_runs, _n_threads(n_threads, n_runs), progress, f"SGD ({method})")
    _warn_diverged(diverged, method)
    return Trajectory(t, m_out, Q_out, a_out, risk, problem, "sgd-" + method, diverged, t_exit, exit)


def sgd_exit_times(problem: Problem, init: State, T: float, t_max: float, method: str = "auto",
                   seed=None, criterion: str = "risk", n_threads: int | None = None,
                   progress: bool = False, check_every: int | None = None) -> np.ndarray:
    r"""Exit times (Eq. 9) of SGD runs, each run stopped as soon as it exits.

    Short for ``simulate_sgd(problem, init, t_max, method, seed, t_save=(),
    exit=Exit(T, criterion), ...).t_exit``: see :func:`simulate_sgd` and
    :class:`~mdlib.trajectory.Exit`.

    Returns
    -------
    ndarray, shape (n_runs,)
        Exit times (``inf`` where not reached by ``t_max``; ``nan`` for
        diverged runs, with a RuntimeWarning).
    """
    return simulate_sgd(problem, init, t_max, method, seed, t_save=(), n_threads=n_threads, progress=progress,
                        exit=Exit(T, criterion), check_every=check_every).t_exit
