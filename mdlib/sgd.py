r"""One-pass SGD: full-dimensional simulation and the driver shared with the exact chain.

``simulate_sgd(problem, init, t_max, method=...)`` runs SGD and returns a
:class:`~mdlib.trajectory.Trajectory`; ``sgd_exit_times`` runs it only until
each run escapes mediocrity and returns the exit times (Eq. 9), which is
what exit-time statistics need.

``method="full"`` moves d-dimensional weight vectors (the ground truth);
``method="exact"`` moves the exact low-dimensional chain of
:mod:`mdlib.chain`, whose law is the same at a cost independent of d.

Implementation notes: every run owns a ``numpy.random.Generator`` spawned
from one ``SeedSequence``, so results are bitwise reproducible for a given
seed whatever the number of threads; runs are spread over threads running
GIL-free numba kernels.
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from .chain import _chain_advance, _chain_advance_p1, _chain_gap, _chain_stats
from ._validate import check_int, check_real
from .problem import Problem, State
from .risk import population_risk
from .trajectory import Trajectory, time_grid

__all__ = ["simulate_sgd", "sgd_exit_times"]


# ----------------------------------------------------------------------------
# Full-dimensional kernel
# ----------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _full_gap(W, norms2, a, p, d, spherical, mode, level):
    """Distance to the exit threshold (<= 0 once escaped); see ``_chain_gap``."""
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
                q = 0.0
                for i in range(d):
                    q += W[j, i] * W[l, i]
                q /= d
                if spherical:
                    q *= d / np.sqrt(norms2[j] * norms2[l])
                quad += 2.0 * a[j] * a[l] * q * q
    if mode == 2:
        return level - m2max
    return 1.5 - lin / p + (tr * tr + 2.0 * quad) / (2.0 * p * p) - level


@njit(cache=True, nogil=True, fastmath=True)
def _full_advance(W, norms2, a, x, lam, rng, n_steps, p, d, gamma, delta, spherical, train_a,
                  exit_mode, level, check_every, gap_state):
    """Advance d-dimensional SGD by up to ``n_steps`` steps, in place.

    The teacher is ``w* = sqrt(d) e_0`` (any fixed direction is equivalent by
    rotation invariance).  In projected mode ``W`` holds unnormalised
    directions and ``norms2`` their squared norms; the weights are
    ``sqrt(d) W_j / |W_j|``.  Exit checks and the return value are as in
    ``mdlib.chain._chain_advance``.
    """
    inv_sqrt_d = 1.0 / np.sqrt(d)
    sqrt_d = np.sqrt(d)
    sqrt_delta = np.sqrt(delta)
    for step in range(n_steps):
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
        if spherical:
            for j in range(p):
                lam[j] *= sqrt_d / np.sqrt(norms2[j])
        lam_star = sqrt_d * x[0]
        f = 0.0
        for j in range(p):
            f += a[j] * lam[j] * lam[j]
        E = f / p - lam_star * lam_star - sqrt_delta * rng.standard_normal()
        if not np.isfinite(E) or abs(E) > 1e40:
            return step, 2
        for j in range(p):
            coef = gamma * 2.0 / p * E * a[j] * lam[j]
            if spherical:  # gradient step on the actual weight, expressed on W_j
                coef *= np.sqrt(norms2[j]) * inv_sqrt_d
            nrm = 0.0
            for i in range(d):
                w = W[j, i] - coef * x[i]
                W[j, i] = w
                nrm += w * w
            norms2[j] = nrm
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
        if exit_mode != 0 and (step + 1) % check_every == 0:
            cur = _full_gap(W, norms2, a, p, d, spherical, exit_mode, level)
            if cur <= 0.0:
                prev = gap_state[0]
                gap_state[0] = prev / (prev - cur) if prev > 0.0 else 1.0
                return step + 1, 1
            gap_state[0] = cur
    return n_steps, 0


def _full_stats(W, norms2, spherical, d):
    Wn = W * (np.sqrt(d / norms2)[:, None] if spherical else 1.0)
    m = Wn[:, 0] / np.sqrt(d)
    Q = Wn @ Wn.T / d
    if spherical:
        np.fill_diagonal(Q, 1.0)
    return m, Q


# ----------------------------------------------------------------------------
# Per-run engines: a common interface over the two kernels
# ----------------------------------------------------------------------------

class _ChainRun:
    def __init__(self, problem, coords, a, rng, generic=False):
        p = problem.p
        self.kernel = _chain_advance_p1 if (p == 1 and not generic) else _chain_advance
        self.pb, self.rng = problem, rng
        self.C, self.a = coords.copy(), a.copy()
        self.M = np.zeros((p + 1, p + 2))
        self.g = np.zeros(p + 2)
        self.lam = np.zeros(p + 1)
        self.m, self.Q = np.zeros(p), np.zeros((p, p))
        self.gap_state = np.zeros(1)

    def advance(self, n, exit_mode=0, level=0.0, check_every=1):
        pb = self.pb
        return self.kernel(self.C, self.a, self.M, self.g, self.lam, self.rng, n, pb.p, pb.d,
                              pb.gamma, pb.delta, pb.spherical, pb.train_second_layer,
                              exit_mode, level, check_every, self.gap_state)

    def gap(self, mode, level):
        return _chain_gap(self.C, self.a, self.pb.p, mode, level)

    def stats(self):
        _chain_stats(self.C, self.m, self.Q)
        return self.m, self.Q, self.a


class _FullRun:
    def __init__(self, problem, coords, a, rng):
        p, d = problem.p, problem.d
        self.pb, self.rng = problem, rng
        # embed the coordinates: w* = sqrt(d) e_0, w_j = sqrt(d) (C_j, 0, ..., 0)
        self.W = np.zeros((p, d))
        self.W[:, : p + 1] = np.sqrt(d) * coords[1:]
        self.norms2 = np.sum(self.W**2, axis=1)
        self.a = a.copy()
        self.x = np.zeros(d)
        self.lam = np.zeros(p)
        self.gap_state = np.zeros(1)

    def advance(self, n, exit_mode=0, level=0.0, check_every=1):
        pb = self.pb
        return _full_advance(self.W, self.norms2, self.a, self.x, self.lam, self.rng, n, pb.p, pb.d,
                             pb.gamma, pb.delta, pb.spherical, pb.train_second_layer,
                             exit_mode, level, check_every, self.gap_state)

    def gap(self, mode, level):
        pb = self.pb
        return _full_gap(self.W, self.norms2, self.a, pb.p, pb.d, pb.spherical, mode, level)

    def stats(self):
        m, Q = _full_stats(self.W, self.norms2, self.pb.spherical, self.pb.d)
        return m, Q, self.a


_ENGINES = {"exact": _ChainRun, "full": _FullRun}


# ----------------------------------------------------------------------------
# Validation and threading helpers
# ----------------------------------------------------------------------------

def _validate(problem, init, method):
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a Problem, got {type(problem).__name__}")
    if not isinstance(init, State):
        raise ValueError(f"init must be a State (from random_init or make_state), got {type(init).__name__}")
    init.check_matches(problem)
    if method not in _ENGINES:
        raise ValueError(f"method must be 'exact' or 'full', got {method!r}")


def _n_threads(n_threads, n_runs):
    if n_threads is None:
        n_threads = os.cpu_count() or 1
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


def _rngs(seed, n_runs):
    """One Generator per run.  A SeedSequence argument is copied before
    spawning (``spawn`` advances the object it is called on), so the same
    seed, int or SeedSequence, always gives the same streams."""
    if isinstance(seed, np.random.SeedSequence):
        ss = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    else:
        ss = np.random.SeedSequence(seed)
    return [np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(n_runs)]


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

def simulate_sgd(problem: Problem, init: State, t_max: float, method: str = "exact", seed=None,
                 t_save=None, store_Q: bool | None = None, n_threads: int | None = None,
                 progress: bool = False) -> Trajectory:
    r"""Simulate one-pass SGD (Eq. 4, or projected Eq. 20) for every run of ``init``.

    Each step draws a fresh sample ``x ~ N(0, I_d/d)``, ``y = (w*·x)² + sqrt(Δ) z``
    and moves ``w_j ← w_j - γ (2/p)(f - y) a_j λ_j x``; with a trained second
    layer also ``a_j ← a_j - (γ/d)(1/p)(f - y) λ_j²``; in projected mode each
    ``w_j`` is then put back on the sphere of radius ``sqrt(d)``.  Time is
    ``t = ν γ/(p d)``.

    Parameters
    ----------
    problem : Problem
    init : State
        Initial conditions, one per run (``random_init`` or ``make_state``;
        ``state.repeat(n)`` for many runs from one start).
    t_max : float
        Final time (``> 0``); ``problem.steps(t_max)`` steps are made.
    method : {"exact", "full"}
        The exact low-dimensional chain (cost independent of d) or
        d-dimensional vectors.
    seed : int, SeedSequence or None
        Runs are bitwise reproducible for a given seed.
    t_save : array_like, optional
        Times at which to save (rounded to whole steps); default
        :func:`~mdlib.trajectory.time_grid`.
    store_Q : bool, optional
        Store ``Q`` (default: if ``p <= 64``).
    n_threads : int, optional
        Threads over which runs are spread (default: all cores).
    progress : bool
        Show a progress bar over runs.

    Returns
    -------
    Trajectory
        With ``method`` ``"sgd-exact"`` or ``"sgd-full"``.  Runs that blow up
        are flagged in ``diverged`` (and a RuntimeWarning is issued).
    """
    _validate(problem, init, method)
    t_max = check_real("t_max", t_max, positive=True)
    n_total = problem.steps(t_max)
    if t_save is None:
        t_save = time_grid(t_max, t_min=min(problem.dt, t_max / 2))
    t_save = np.asarray(t_save, dtype=float)
    if t_save.ndim != 1 or t_save.size == 0 or np.any(t_save < 0) or np.any(t_save > t_max * (1 + 1e-12)):
        raise ValueError("t_save must be a non-empty 1-d array of times in [0, t_max]")
    save_steps = np.unique(np.minimum(np.rint(t_save / problem.dt).astype(np.int64), n_total))
    t = save_steps * problem.dt
    p, n_runs, n_t = problem.p, init.n_runs, save_steps.size
    store_Q = (p <= 64) if store_Q is None else bool(store_Q)
    m_out = np.full((n_runs, n_t, p), np.nan)
    a_out = np.full((n_runs, n_t, p), np.nan)
    Q_out = np.full((n_runs, n_t, p, p), np.nan) if store_Q else None
    risk = np.full((n_runs, n_t), np.nan)
    diverged = np.zeros(n_runs, dtype=bool)
    rngs = _rngs(seed, n_runs)
    engine = _ENGINES[method]

    def one_run(r):
        run = engine(problem, init.coords[r], init.a[r], rngs[r])
        done = 0
        for k, s in enumerate(save_steps):
            if s > done:
                if run.advance(int(s - done))[1] == 2:
                    diverged[r] = True
                    return
                done = int(s)
            m, Q, a = run.stats()
            if not (np.all(np.isfinite(Q)) and np.all(np.isfinite(a))):
                diverged[r] = True
                return
            m_out[r, k], a_out[r, k] = m, a
            if store_Q:
                Q_out[r, k] = Q
            risk[r, k] = population_risk(m, Q, a, problem.delta)

    _map_runs(one_run, n_runs, _n_threads(n_threads, n_runs), progress, f"SGD ({method})")
    _warn_diverged(diverged, method)
    return Trajectory(t, m_out, Q_out, a_out, risk, problem, "sgd-" + method, diverged)


def sgd_exit_times(problem: Problem, init: State, T: float, t_max: float, method: str = "exact",
                   seed=None, criterion: str = "risk", n_threads: int | None = None,
                   progress: bool = False, check_every: int | None = None) -> np.ndarray:
    r"""Exit times (Eq. 9) of SGD runs, each run stopped as soon as it exits.

    The criterion is evaluated every ``check_every`` steps and the crossing
    located by linear interpolation between checks; the resolution,
    ``check_every · γ/(p d)``, is far below the run-to-run spread of exit
    times.

    Parameters
    ----------
    problem, init, method, seed, n_threads, progress
        As in :func:`simulate_sgd`.
    T : float
        Threshold, ``0 < T < 1``.
    t_max : float
        Runs not escaped by ``t_max`` get ``inf``.
    criterion : {"risk", "max_m"}
        As in :func:`~mdlib.trajectory.exit_time`.
    check_every : int, optional
        Steps between checks (default 1 when the check is cheap, else about
        ``p/4`` for the chain and ``p/2`` for full SGD).

    Returns
    -------
    ndarray, shape (n_runs,)
        Exit times (``inf`` where not reached; ``nan`` for diverged runs,
        with a RuntimeWarning).
    """
    _validate(problem, init, method)
    T = check_real("T", T)
    if not 0 < T < 1:
        raise ValueError(f"T must be in (0, 1), got {T}")
    t_max = check_real("t_max", t_max, positive=True)
    if criterion not in ("risk", "max_m"):
        raise ValueError(f"criterion must be 'risk' or 'max_m', got {criterion!r}")
    p = problem.p
    cheap = criterion == "max_m" or (p == 1 and problem.spherical)
    if check_every is None:
        check_every = 1 if cheap else max(1, p // (4 if method == "exact" else 2))
    check_every = check_int("check_every", check_every, 1)
    mode = 1 if criterion == "risk" else 2
    n_total = problem.steps(t_max)
    n_runs = init.n_runs
    out = np.full(n_runs, np.inf)
    diverged = np.zeros(n_runs, dtype=bool)
    rngs = _rngs(seed, n_runs)
    engine = _ENGINES[method]
    chunk = 1 << 16  # steps per kernel call: keeps runs responsive, costs nothing

    def one_run(r):
        run = engine(problem, init.coords[r], init.a[r], rngs[r])
        g0 = run.gap(mode, 0.0)
        level = (1 - T) * g0 if mode == 1 else T + (1 - T) * (-g0)
        run.gap_state[0] = run.gap(mode, level)
        done = 0
        while done < n_total:
            n = min(chunk - chunk % check_every, n_total - done)
            steps, status = run.advance(n, mode, level, check_every)
            if status == 2:
                diverged[r] = True
                out[r] = np.nan
                return
            if status == 1:
                last = steps % check_every or check_every
                out[r] = (done + steps - last + run.gap_state[0] * last) * problem.dt
                return
            done += steps

    _map_runs(one_run, n_runs, _n_threads(n_threads, n_runs), progress, f"SGD exit times ({method})")
    _warn_diverged(diverged, method)
    return out
