r"""Declarative sweeps: parameter grids computed cell by cell into the result store.

A :class:`Sweep` is data: a name, a cell function of this module, fixed
parameters, and per *scale* (``"book"``: small and fast, ``"paper"``: the
counts of the paper, or more) a Cartesian grid of parameters and the number
of runs per cell.  :data:`SWEEPS` holds every definition; read them there to
see at a glance what a sweep computes.

.. code-block:: text

    python -m mdlib.sweeps list
    python -m mdlib.sweeps show width
    python -m mdlib.sweeps run exit_vs_d --scale paper [--executor local|dask] [--workers N]
                                         [--scheduler ADDRESS] [--results DIR] [--redo-stale]
    python -m mdlib.sweeps status exit_vs_d

Every cell is a pure function of its key (:func:`mdlib.store.cell_key`):
its cell function, parameters, number of runs, the sweep seed and the store
schema.  Run ``r`` of a cell uses child ``r`` of the cell's ``SeedSequence``
(whose entropy is the sweep seed and a hash of the cell's parameters), split
into one stream for its random start and one for its SGD noise.  Hence

* the results do not depend on the executor, the number of workers, the
  number of threads or the order in which cells finish (bitwise);
* the first ``k`` runs of a cell are, bitwise, the same cell computed with
  ``n_runs = k``: a book-scale cell is a prefix of the paper-scale one;
* adding values to a grid changes no existing cell.

Cell functions (:data:`CELLS`): :func:`sgd_ode_exit` (SGD and ODE exit
times from the same random starts, with the starts' ``(μ0, τ0)``) and
:func:`sgd_exit` (SGD only, random or fixed start; ODE in closed form at
p = 1).  There is no SDE cell yet: ``integrate_sde`` cannot stop runs at
their exit, and it draws the noise of all runs from one generator, so run
``r`` would depend on the number of runs (no prefix property).

Executors
---------
``local`` (default)
    Cells one after another in this process; the runs of a cell are spread
    over ``--workers`` threads (default: the cores this process may use, or
    the environment variable ``NUMBA_NUM_THREADS``) running the GIL-free
    numba kernels.
``dask``
    :mod:`dask.distributed`: a ``LocalCluster`` of ``--workers`` processes
    with one thread each (one cell per worker at a time), or an existing
    scheduler (``--scheduler tcp://host:8786``, e.g. started by
    ``dask-jobqueue`` on a cluster).  Workers *return* each cell's Dataset
    (a few kB) to this process, which writes the file: only the machine
    running the command needs the results folder, and every file is written
    by one process, atomically.  Cells are submitted largest first.

Finished cells (file present under the cell's key) are skipped, so a sweep
resumes where it stopped; a killed run loses only the cells in flight, and
Ctrl-C stops at once (a cell in flight is dropped, nothing half-written is
left).  A stored cell whose *fingerprint* (:func:`fingerprint`) differs from
the current code's is *stale*: it is kept, reported by ``status``, flagged
(with a warning) by :func:`open_sweep`, and recomputed only on request
(``--redo-stale``).
"""
from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import inspect
import itertools
import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import sgd as _sgd
from . import store
from ._validate import check_choice, check_int
from .ode import ode_exit_time
from .problem import Problem, make_state, random_init
from .sgd import sgd_exit_times
from .theory import exit_time_annealed, exit_time_ode_p1, omega_m

__all__ = ["Sweep", "Scale", "RunsBy", "SWEEPS", "CELLS", "get_sweep", "fingerprint", "compute_cell",
           "run_sweep", "open_sweep", "sweep_status", "main"]

SCALES = ("book", "paper")
EXECUTORS = ("local", "dask")


class SweepError(ValueError):
    """A sweep, scale, executor or option that does not exist or does not fit."""


class SchedulerUnreachable(RuntimeError):
    """The Dask scheduler given by ``--scheduler`` could not be reached."""


# ============================================================================
# definitions
# ============================================================================

@dataclass(frozen=True)
class RunsBy:
    """Runs per cell as a step function of one parameter.

    ``RunsBy("d", ((10**5, 1000), (10**6, 400)))`` gives 1000 runs for
    ``d <= 10**5``, 400 for ``10**5 < d <= 10**6`` and is an error above.
    """

    param: str
    steps: tuple  # ((upper bound, inclusive), n_runs), increasing bounds

    def __post_init__(self):
        bounds = [b for b, _ in self.steps]
        if not self.steps or bounds != sorted(bounds):
            raise ValueError(f"RunsBy steps must be non-empty with increasing bounds, got {self.steps}")
        for _, n in self.steps:
            check_int("n_runs", n, 1)

    def __call__(self, params) -> int:
        value = params[self.param]
        for bound, n in self.steps:
            if value <= bound:
                return n
        raise SweepError(f"no run count for {self.param} = {value} (the largest bound is {self.steps[-1][0]})")

    def __str__(self):
        return "; ".join(f"{n} if {self.param} <= {b}" for b, n in self.steps)

    def to_data(self):
        return {"by": self.param, "steps": [[b, n] for b, n in self.steps]}


@dataclass(frozen=True)
class Scale:
    """A grid (``{name: values}``, Cartesian) and the runs per cell (an int or a :class:`RunsBy`)."""

    grid: dict
    runs: int | RunsBy

    def n_runs(self, params) -> int:
        return self.runs(params) if isinstance(self.runs, RunsBy) else self.runs


@dataclass(frozen=True)
class Cell:
    """One cell of a sweep at one scale (see :meth:`Sweep.cells`)."""

    sweep: str
    cell: str
    coords: dict  # grid parameters only
    params: dict  # every parameter (grid and fixed), canonical
    n_runs: int
    seed: int
    key: str = field(repr=False)
    key_json: str = field(repr=False)

    @property
    def entropy(self):
        return store.cell_entropy(self.seed, self.params)

    @property
    def filename(self) -> str:
        return self.key[:16] + ".nc"

    def label(self) -> str:
        return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.coords.items())


@dataclass(frozen=True)
class Sweep:
    """A named, declarative sweep: a cell function over a grid of parameters.

    Parameters
    ----------
    name : str
        Folder name under the results root.
    description : str
    cell : str
        Name of the cell function (a key of :data:`CELLS`).
    fixed : dict
        Parameters shared by every cell.
    scales : dict
        ``{"book": Scale, "paper": Scale}``.
    seed : int
        Seed of the sweep (with the parameters, it seeds every cell).
    """

    name: str
    description: str
    cell: str
    fixed: dict
    scales: dict
    seed: int

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"sweep {self.name}: unknown cell function {self.cell!r}; known: {', '.join(CELLS)}")
        if set(self.scales) != set(SCALES):
            raise ValueError(f"sweep {self.name}: scales must be exactly {SCALES}, got {tuple(self.scales)}")
        check_int("seed", self.seed, 0)
        accepted = set(inspect.signature(CELLS[self.cell]).parameters) - {"seed", "n_runs", "n_threads"}
        for scale, sc in self.scales.items():
            overlap = set(sc.grid) & set(self.fixed)
            if overlap:
                raise ValueError(f"sweep {self.name} ({scale}): {sorted(overlap)} both in the grid and fixed")
            unknown = (set(sc.grid) | set(self.fixed)) - accepted
            if unknown:
                raise ValueError(f"sweep {self.name} ({scale}): {self.cell} takes no parameter {sorted(unknown)}")
            for name, values in sc.grid.items():
                if len(values) == 0 or len(set(values)) != len(values):
                    raise ValueError(f"sweep {self.name} ({scale}): grid values of {name} must be distinct, non-empty")

    def cells(self, scale: str) -> list[Cell]:
        """The cells of the grid at ``scale``, in grid order (the last parameter varies fastest)."""
        sc = self.scales[check_scale(scale)]
        names = list(sc.grid)
        out = []
        for values in itertools.product(*(sc.grid[n] for n in names)):
            coords = dict(zip(names, values))
            params = store.canonical_params({**self.fixed, **coords})
            n_runs = sc.n_runs(params)
            key, key_json = store.cell_key(self.cell, params, n_runs, self.seed)
            out.append(Cell(self.name, self.cell, {n: params[n] for n in names}, params, n_runs, self.seed,
                            key, key_json))
        return out

    def to_data(self) -> dict:
        """The definition as plain data (JSON-serialisable)."""
        return {
            "name": self.name, "description": self.description, "cell": self.cell, "seed": self.seed,
            "fixed": store.canonical_params(self.fixed),
            "scales": {s: {"grid": {k: list(v) for k, v in sc.grid.items()},
                           "runs": sc.runs.to_data() if isinstance(sc.runs, RunsBy) else sc.runs}
                       for s, sc in self.scales.items()},
        }


def check_scale(scale):
    if scale not in SCALES:
        raise SweepError(f"unknown scale {scale!r}; the scales are {', '.join(SCALES)}")
    return scale


# ============================================================================
# cell functions
# ============================================================================

def _fresh(seed):
    """A SeedSequence equal to ``seed`` that nobody has spawned from yet."""
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    return np.random.SeedSequence(seed)


def _problem(p, d, gamma, gamma_over_p, delta):
    if (gamma is None) == (gamma_over_p is None):
        raise ValueError("give exactly one of gamma and gamma_over_p")
    return Problem(p=p, d=d, gamma=gamma if gamma is not None else p * gamma_over_p, delta=delta)


def _map_runs(fn, n_runs, n_threads):
    """``[fn(r) for r in range(n_runs)]`` on ``n_threads`` daemon threads.

    The calling thread only waits (in short slices), so Ctrl-C reaches it at
    once; no new run starts after an interrupt, and runs in flight are
    abandoned (daemon threads end with the process).  Results do not depend
    on the number of threads: run ``r`` owns its random streams.
    """
    n_threads = _sgd._n_threads(n_threads, n_runs)  # validated, at most one per run
    out = [None] * n_runs
    counter = itertools.count()
    stop = threading.Event()
    errors = []

    def worker():
        while not stop.is_set():
            r = next(counter)
            if r >= n_runs:
                return
            try:
                out[r] = fn(r)
            except BaseException as exc:  # handed to the calling thread
                errors.append(exc)
                stop.set()
                return

    threads = [threading.Thread(target=worker, daemon=True, name=f"mdlib-run-{i}") for i in range(n_threads)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.25)
    finally:
        stop.set()
    if errors:
        raise errors[0]
    return out


def _overlaps(init, d):
    """``(μ0, τ0) = (d Σ_j m_j², d Σ_{j≠l} Q_jl²)`` of a one-run State (Eq. 43)."""
    m, Q = init.m[0], init.Q[0]
    off = ~np.eye(m.size, dtype=bool)
    return d * float(np.sum(m**2)), d * float(np.sum(Q[off] ** 2))


_TIME = "t = (SGD steps) gamma/(p d)"


def _default_sgd_method():
    """The method sgd_exit_times uses by default (recorded with every cell)."""
    return str(inspect.signature(_sgd.sgd_exit_times).parameters["method"].default)


def _sgd_attrs(p, d):
    """What a cell records of its SGD: the default method (``sgd_method``, "auto") and the
    engine it runs at (p, d) (``sgd_engine``: "exact", the chain, or "full"), which the
    method's cost model decides and which a refit of that model can change.  (Cells stored
    before 2026-11-30 lack ``sgd_engine``; of those, only the width sweep's (500, 1000) ran
    on full SGD.)"""
    method = _default_sgd_method()
    return {"sgd_method": method, "sgd_engine": _sgd._engine(method, p, d)}


def sgd_ode_exit(seed, n_runs, *, p, d, delta, T, efolds, ode_rtol, ode_atol, gamma=None, gamma_over_p=None,
                 n_threads=1):
    r"""SGD and ODE exit times (Eq. 9) from the same random starts, and the starts' ``(μ0, τ0)``.

    Run ``r``: a random start (projected SGD, ``a = 1``; exact finite-d law,
    :func:`~mdlib.problem.random_init`), the SGD exit time from it
    (:func:`~mdlib.sgd.sgd_exit_times`, its default method, i.e. an exact
    one), the exit time of the ODE (Eq. 21) from the same start
    (:func:`~mdlib.ode.ode_exit_time` at ``ode_rtol``, ``ode_atol``) and
    ``μ0 = d Σ_j m_j²``, ``τ0 = d Σ_{j≠l} Q_jl²`` (Eq. 43), so that Eq. 46 can
    be evaluated on the same starts.  Horizon ``efolds / ω_M(p, γ, Δ)``
    (Eq. 38): a run not escaped by then has exit time ``inf``.

    Tolerance of the ODE: the width sweep uses ``rtol = 1e-6, atol = 1e-10``
    (DOP853).  Against the default ``rtol = 1e-10, atol = 1e-13`` on three
    random starts each at d = 10^4, γ/p = 0.05, the exit times differ by at
    most 2e-7 relatively (p = 1, 20, 100, 200, 500), far below the spread of
    SGD exit times (~10 %), and p = 500 costs ~9 s per start instead of 15-28 s.

    Parameters
    ----------
    seed : SeedSequence
        The cell's seed; run ``r`` uses child ``r``, itself split into
        (start, SGD noise).
    n_runs : int
    p, d, delta, T :
        Width, dimension, noise variance, threshold of Eq. 9.
    gamma, gamma_over_p : float
        The learning rate, given as ``gamma`` or as ``gamma / p`` (exactly one).
    efolds : float
        Horizon in units of ``1/ω_M``.
    ode_rtol, ode_atol : float
        Tolerances of the ODE solver.
    n_threads : int
        Threads over which the runs are spread (results do not depend on it).

    Returns
    -------
    xarray.Dataset
        Variables ``t_sgd``, ``t_ode``, ``mu0``, ``tau0`` on dimension ``run``.
    """
    import xarray as xr

    pb = _problem(p, d, gamma, gamma_over_p, delta)
    t_max = efolds / omega_m(p, pb.gamma, delta)
    children = _fresh(seed).spawn(n_runs)

    def one(r):
        s_start, s_noise = children[r].spawn(2)
        init = random_init(pb, 1, seed=s_start)
        t_sgd = sgd_exit_times(pb, init, T, t_max, seed=s_noise, n_threads=1)[0]
        t_ode = ode_exit_time(pb, init, T, t_max=t_max, rtol=ode_rtol, atol=ode_atol)[0]
        return (t_sgd, t_ode) + _overlaps(init, d)

    res = np.array(_map_runs(one, n_runs, n_threads), dtype=float).reshape(n_runs, 4)
    return xr.Dataset(
        {"t_sgd": ("run", res[:, 0], {"long_name": "SGD exit time (Eq. 9)", "units": _TIME}),
         "t_ode": ("run", res[:, 1], {"long_name": "ODE exit time from the same start", "units": _TIME}),
         "mu0": ("run", res[:, 2], {"long_name": "mu0 = d sum_j m_j(0)^2 (Eq. 43)"}),
         "tau0": ("run", res[:, 3], {"long_name": "tau0 = d sum_{j!=l} Q_jl(0)^2 (Eq. 43)"})},
        attrs={"t_max": t_max, "gamma": pb.gamma, **_sgd_attrs(p, d)})


def sgd_exit(seed, n_runs, *, p, d, delta, T, efolds, start="random", z0=None, gamma=None, gamma_over_p=None,
             n_threads=1):
    r"""SGD exit times (Eq. 9), from random starts or from one fixed start; ODE by its closed form at p = 1.

    Run ``r``: a start (``start="random"``: the exact finite-d law of
    :func:`~mdlib.problem.random_init`; ``start="fixed"``, p = 1 only:
    ``m0 = z0/sqrt(d)``, the same for every run) and the SGD exit time from it
    (:func:`~mdlib.sgd.sgd_exit_times`, its default method).  At ``p = 1`` the
    ODE exit time from the same start is the closed form
    :func:`~mdlib.theory.exit_time_ode_p1` (``inf`` beyond the horizon, as for
    SGD).  Horizon ``efolds / ω_M(p, γ, Δ)``.

    Parameters
    ----------
    seed : SeedSequence
        The cell's seed; run ``r`` uses child ``r``, split into (start, SGD
        noise) (the start stream is unused for a fixed start).
    n_runs : int
    p, d, delta, T, gamma, gamma_over_p, efolds, n_threads :
        As in :func:`sgd_ode_exit`.
    start : {"random", "fixed"}
    z0 : float, optional
        The scaled overlap ``sqrt(d) m0`` of the fixed start (ignored for
        random starts).

    Returns
    -------
    xarray.Dataset
        ``t_sgd``, ``mu0``, ``tau0`` and, at ``p = 1``, ``t_ode``, on dimension ``run``.
    """
    import xarray as xr

    check_choice("start", start, ("random", "fixed"))
    pb = _problem(p, d, gamma, gamma_over_p, delta)
    t_max = efolds / omega_m(p, pb.gamma, delta)
    if start == "fixed":
        if p != 1 or z0 is None:
            raise ValueError("a fixed start needs p = 1 and z0 (its scaled overlap sqrt(d) m0)")
        fixed = make_state(pb, z0 / np.sqrt(d))
    children = _fresh(seed).spawn(n_runs)

    def one(r):
        s_start, s_noise = children[r].spawn(2)
        init = fixed if start == "fixed" else random_init(pb, 1, seed=s_start)
        t_sgd = sgd_exit_times(pb, init, T, t_max, seed=s_noise, n_threads=1)[0]
        t_ode = np.nan
        if p == 1:
            t_ode = float(exit_time_ode_p1(init.m[0, 0], pb.gamma, delta, T))
            t_ode = t_ode if t_ode <= t_max else np.inf
        return (t_sgd, t_ode) + _overlaps(init, d)

    res = np.array(_map_runs(one, n_runs, n_threads), dtype=float).reshape(n_runs, 4)
    data = {"t_sgd": ("run", res[:, 0], {"long_name": "SGD exit time (Eq. 9)", "units": _TIME}),
            "mu0": ("run", res[:, 2], {"long_name": "mu0 = d sum_j m_j(0)^2 (Eq. 43)"}),
            "tau0": ("run", res[:, 3], {"long_name": "tau0 = d sum_{j!=l} Q_jl(0)^2 (Eq. 43)"})}
    if p == 1:
        data["t_ode"] = ("run", res[:, 1], {"long_name": "ODE exit time from the same start (closed form)",
                                            "units": _TIME})
    return xr.Dataset(data, attrs={"t_max": t_max, "gamma": pb.gamma, **_sgd_attrs(p, d)})


#: The cell functions a sweep may name.  Each takes ``(seed, n_runs, *, <parameters>, n_threads)``
#: and returns an xarray Dataset whose variables have dimension ``run`` (or none).
CELLS = {"sgd_ode_exit": sgd_ode_exit, "sgd_exit": sgd_exit}

# No SDE cell function (see the module docstring): integrate_sde has no stop-at-exit yet, and its runs
# share one generator. Once integrate_sde(..., exit=Exit(T)) exists, an SDE cell can call it once per
# run with that run's child seed, as the cells above do for SGD.


# ----------------------------------------------------------------------------
# fingerprints: what the code computes, not which commit it is
# ----------------------------------------------------------------------------

#: Tiny fixed cells run by :func:`fingerprint`, per cell function and per *family* of cells: the
#: engine paths differ between p = 1 (the specialised chain) and p >= 2 (the general chain, or full
#: SGD if the default method selects it), so a change of the p >= 2 engine leaves p = 1 cells current.
CANARIES = {
    "sgd_ode_exit": {
        "p=1": (dict(p=1, d=40, gamma=0.1, delta=1e-4, T=0.05, efolds=30.0, ode_rtol=1e-6, ode_atol=1e-10),),
        "p>=2": (dict(p=3, d=40, gamma_over_p=0.1, delta=1e-4, T=0.05, efolds=30.0, ode_rtol=1e-6,
                      ode_atol=1e-10),),
    },
    "sgd_exit": {
        "p=1": (dict(p=1, d=40, gamma=0.1, delta=1e-4, T=0.05, efolds=30.0, start="random"),
                dict(p=1, d=40, gamma=0.1, delta=1e-4, T=0.05, efolds=30.0, start="fixed", z0=0.5)),
        "p>=2": (dict(p=3, d=40, gamma_over_p=0.1, delta=1e-4, T=0.05, efolds=30.0, start="random"),),
    },
}
_CANARY_RUNS = 3
_CANARY_ENTROPY = 20230529


def family(params) -> str:
    """The family of a cell for its fingerprint: ``"p=1"`` or ``"p>=2"``."""
    return "p=1" if params.get("p", 1) == 1 else "p>=2"


def _canary_full_sgd():
    """Full d-dimensional SGD on a tiny problem: the default method may select it (method="auto")."""
    pb = Problem(p=2, d=12, gamma=0.2, delta=1e-4)
    init = random_init(pb, _CANARY_RUNS, seed=_CANARY_ENTROPY)
    return sgd_exit_times(pb, init, 0.05, 20.0, method="full", seed=_CANARY_ENTROPY, n_threads=1)


def _digits(values):
    """Values at 8 significant digits (robust to last-bit differences between CPUs and BLAS builds)."""
    return [f"{float(v):.7e}" for v in np.ravel(values)]


@functools.cache
def fingerprint(cell: str, family: str = "p=1") -> str:
    """Behavioural fingerprint of a cell function: a hash of what it computes on fixed canary cells.

    The cell function is run on the tiny cells of :data:`CANARIES` for the
    family (``"p=1"``: the p = 1 chain and the ODE; ``"p>=2"``: the general
    chain, the ODE, and full SGD, which the default SGD method may select),
    every result is rounded to 8 significant digits and the sha256 of the
    text is taken (first 16 hex digits).  Code that computes the same numbers
    gives the same fingerprint across commits, CPUs and BLAS builds; a change
    of the computed law changes it.  Computed once per process (cached; about
    a second).

    A stored cell whose fingerprint differs from the current one for its
    family (:func:`family`) is *stale*.
    """
    fn = CELLS[check_choice("cell", cell, tuple(CELLS))]
    canaries = CANARIES[cell][check_choice("family", family, ("p=1", "p>=2"))]
    lines = [cell, family, f"schema {store.SCHEMA_VERSION}"]
    for params in canaries:
        ds = fn(np.random.SeedSequence(_CANARY_ENTROPY), _CANARY_RUNS, n_threads=1, **params)
        for name in sorted(ds.data_vars):
            lines.append(name + " " + " ".join(_digits(ds[name].values)))
    if family == "p>=2":
        lines.append("full-sgd " + " ".join(_digits(_canary_full_sgd())))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


# ============================================================================
# the sweeps
# ============================================================================

_FIG1 = dict(delta=1e-4, T=0.01)  # the setting of the paper's Figure 1 (with p = 1, gamma = 0.1)
_EFOLDS = 30.0  # horizon of every exit-time run: 30 / omega_M, far beyond any exit

#: The chapter's fixed start (book/stochasticity.md): sqrt(d) m0 of
#: random_init(Problem(1, 3000, 0.1, 1e-4), 1, seed=0); checked in tests/test_sweeps.py.
Z0_STOCHASTICITY = -0.531392285450358

_HALF_DECADES = tuple(round(10 ** (k / 2)) for k in range(4, 15))  # 100, 316, 1000, ..., 3162278, 10**7

SWEEPS = {s.name: s for s in (
    Sweep(
        name="demo",
        description="A tiny sweep to try the machinery (seconds): SGD and ODE exit times at two widths and "
                    "two small dimensions.",
        cell="sgd_ode_exit",
        fixed=dict(gamma_over_p=0.05, **_FIG1, efolds=_EFOLDS, ode_rtol=1e-6, ode_atol=1e-10),
        scales={"book": Scale(grid=dict(p=(1, 2), d=(40, 80)), runs=6),
                "paper": Scale(grid=dict(p=(1, 2), d=(40, 80)), runs=12)},
        seed=0,
    ),
    Sweep(
        name="exit_vs_d",
        description="Exit time against d at the Figure 1 setting (p = 1, gamma = 0.1, Delta = 1e-4, T = 0.01): "
                    "SGD (exact chain) from random starts, a point every half decade, with the ODE exit time "
                    "of each start (closed form).",
        cell="sgd_exit",
        fixed=dict(p=1, gamma=0.1, **_FIG1, efolds=_EFOLDS, start="random"),
        scales={"book": Scale(grid=dict(d=_HALF_DECADES[:7]), runs=200),
                "paper": Scale(grid=dict(d=_HALF_DECADES),
                               runs=RunsBy("d", ((10**5, 1000), (10**6, 400), (10**7, 100))))},
        seed=1,
    ),
    Sweep(
        name="stochasticity_d",
        description="The stochasticity chapter's d-scan with SGD: exit times from the chapter's fixed start "
                    "(same sqrt(d) m0 at every d) and from random starts, Figure 1 setting.",
        cell="sgd_exit",
        fixed=dict(p=1, gamma=0.1, **_FIG1, efolds=_EFOLDS, z0=Z0_STOCHASTICITY),
        scales={"book": Scale(grid=dict(d=(10**3, 10**4, 10**5), start=("fixed", "random")), runs=40),
                "paper": Scale(grid=dict(d=(10**3, 10**4, 10**5, 10**6), start=("fixed", "random")), runs=400)},
        seed=2,
    ),
    Sweep(
        name="width",
        description="The paper's width figure, t_ext(SGD)/t_ext(ODE) against p: SGD and the ODE from the same "
                    "random starts, gamma/p = 0.05, Delta = 1e-4, T = 0.01, with (mu0, tau0) of each start "
                    "for Eq. 46.",
        cell="sgd_ode_exit",
        fixed=dict(gamma_over_p=0.05, **_FIG1, efolds=_EFOLDS, ode_rtol=1e-6, ode_atol=1e-10),
        scales={"book": Scale(grid=dict(p=(1, 2, 5, 10, 20), d=(1000, 2000, 5000, 10000)), runs=16),
                "paper": Scale(grid=dict(p=(1, 2, 5, 10, 20, 50, 100, 200, 500), d=(1000, 2000, 5000, 10000)),
                               runs=RunsBy("p", ((200, 64), (500, 16))))},
        seed=3,
    ),
)}


def get_sweep(name) -> Sweep:
    """The sweep called ``name`` (a :class:`Sweep` is returned as is)."""
    if isinstance(name, Sweep):
        return name
    if name not in SWEEPS:
        raise SweepError(f"unknown sweep {name!r}; the sweeps are {', '.join(SWEEPS)}")
    return SWEEPS[name]


# ============================================================================
# cost model (only for progress bars, scheduling and estimates)
# ============================================================================

def _step_seconds(p):
    """CPU seconds per step of the exact chain, measured on the development machine (2026):
    0.09 us at p = 1; 0.7, 3.0, 13.5, 44 us at p = 5, 20, 50, 100 (~1 ms at p = 500)."""
    return 0.09e-6 if p == 1 else (0.5 + 0.02 * p + 0.0045 * p * p) * 1e-6


def _ode_seconds(p):
    """CPU seconds of one ODE exit time at rtol 1e-6 (0.03 s at p <= 20, ~1.5 s at p = 200, ~9 s at p = 500)."""
    return 0.03 + 3.6e-5 * p * p


def estimated_seconds(cell: Cell) -> float:
    """A rough estimate of a cell's CPU time on the development machine.

    SGD steps to the annealed exit time (Eq. 47) times the measured cost per
    step, plus the ODE per start for :func:`sgd_ode_exit`.  Used for the
    progress bar, the order of the cells and ``list``/``show``.
    """
    prm = cell.params
    p, d = prm.get("p", 1), prm["d"]
    gamma = prm["gamma"] if "gamma" in prm else p * prm["gamma_over_p"]
    try:
        t = exit_time_annealed(p, d, gamma, prm.get("delta", 0.0), prm.get("T", 0.01))
    except ValueError:
        t = 1.0
    per_run = t * p * d / gamma * _step_seconds(p)
    if cell.cell == "sgd_ode_exit":
        per_run += _ode_seconds(p)
    return cell.n_runs * per_run


# ============================================================================
# computing one cell
# ============================================================================

def compute_cell(cell: str, params: dict, n_runs: int, seed: int, *, n_threads: int = 1, executor: str = "local",
                 sweep: str = "") -> xarray.Dataset:  # noqa: F821
    """Compute one cell and stamp it with its provenance (runs where the computation runs).

    Parameters
    ----------
    cell : str
        Cell function name.
    params : dict
        All parameters of the cell.
    n_runs : int
    seed : int
        The sweep seed (the cell's entropy is derived from it and ``params``).
    n_threads : int
        Threads for the runs of this cell.
    executor, sweep : str
        Recorded in the attributes.

    Returns
    -------
    xarray.Dataset
        The cell function's result, with the provenance attributes listed in
        :mod:`mdlib.store`.
    """
    params = store.canonical_params(params)
    key, key_json = store.cell_key(cell, params, n_runs, seed)
    entropy = store.cell_entropy(seed, params)
    fam = family(params)
    fp = fingerprint(cell, fam)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    ds = CELLS[cell](np.random.SeedSequence(entropy), n_runs, n_threads=n_threads, **params)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    attrs = {f"param_{k}": (int(v) if isinstance(v, bool) else v) for k, v in params.items()}
    attrs.update(store.environment())
    attrs.update(
        sweep=sweep, cell=cell, key=key, key_json=key_json, n_runs=int(n_runs), seed=int(seed),
        seed_entropy=np.array(entropy, dtype=np.int64), schema_version=store.SCHEMA_VERSION, fingerprint=fp,
        fingerprint_family=fam,
        cpu_time_s=cpu, wall_time_s=wall, host=socket.gethostname(),
        date_utc=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        executor=executor, n_threads=int(n_threads))
    ds.attrs.update(attrs)
    return ds


# ============================================================================
# executors
# ============================================================================

class _Interrupt:
    """Ctrl-C that cannot be lost.

    Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when
    SIGINT arrives; inside a garbage-collector or weakref callback (which Dask runs
    often) the exception is printed with a traceback and swallowed, and the sweep
    would go on.  While a sweep runs, SIGINT sets a flag that the loop over finished
    cells checks (the Dask loop at least every 0.5 s).  With ``deferred`` (Dask) that
    is all it does: the sweep stops at the next check, never inside Dask's machinery;
    otherwise (local: the main thread computes) it also raises at once; should that
    land in a finalizer, Python's report of the swallowed exception is silenced
    (``sys.unraisablehook``: the flag stops the sweep at the next check).  A process
    that ignores SIGINT (started by ``nohup ... &``) keeps ignoring it.
    """

    def __init__(self, deferred=False):
        self.flag = threading.Event()
        self.deferred = deferred
        self.previous = self.previous_hook = None

    def _handler(self, signum, frame):
        self.flag.set()
        if not self.deferred:
            raise KeyboardInterrupt

    def _unraisable(self, unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and self.flag.is_set():
            return  # our Ctrl-C, swallowed by a finalizer: the flag already stops the sweep
        self.previous_hook(unraisable)

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self.previous = signal.signal(signal.SIGINT, self._handler)
            self.previous_hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            sys.unraisablehook = self.previous_hook
        return False

    def check(self):
        if self.flag.is_set():
            raise KeyboardInterrupt


class _LocalExecutor:
    """Cells one after another in this process, the runs of each on ``workers`` threads."""

    def __init__(self, workers):
        self.workers = workers
        self.label = "local"
        self.interrupt = _Interrupt()  # raises at once: this process computes (entered by run_sweep)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def results(self, cells):
        for c in sorted(cells, key=estimated_seconds):  # cheap cells first: early results, less to lose
            try:
                yield c, compute_cell(c.cell, c.params, c.n_runs, c.seed, n_threads=self.workers,
                                      executor=self.label, sweep=c.sweep)
            except Exception as exc:  # noqa: BLE001 - reported per cell, the sweep goes on
                yield c, exc


# A LocalCluster without a dashboard has no use for the diagnostics Dask gathers by default, and on a
# machine whose every core runs a worker they take time from the cells: each worker samples its own
# stack every 10 ms (the dashboard's profile), and every process polls psutil and its event loop
# several times a second.  Measured by benchmarks/sweep_throughput.py.
_QUIET_CLUSTER = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.tick.interval": "500ms",
}


class _DaskExecutor:
    """dask.distributed: a LocalCluster of processes, or an existing scheduler."""

    def __init__(self, workers, scheduler, connect_timeout):
        self.workers, self.scheduler, self.timeout = workers, scheduler, connect_timeout
        self.client = self.cluster = None
        self.interrupt = _Interrupt(deferred=True)  # only a flag: never raise inside Dask (entered by run_sweep)
        self.label = f"dask:{scheduler}" if scheduler else "dask:LocalCluster"

    def __enter__(self):
        import logging

        import dask
        from dask.distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=f"{self.timeout}s")
            except Exception as exc:  # noqa: BLE001 - any failure to connect is reported the same way
                raise SchedulerUnreachable(
                    f"cannot reach the Dask scheduler at {self.scheduler!r} within {self.timeout:g} s "
                    f"({type(exc).__name__}: {exc}); nothing was computed or changed") from None
        else:
            # The worker processes inherit an ignored SIGINT: Ctrl-C in a terminal reaches the whole process
            # group, and only this process should react (it cancels the cells and closes the cluster).
            main = threading.current_thread() is threading.main_thread()
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
            try:
                with dask.config.set(_QUIET_CLUSTER):  # (copied into the worker processes by their nannies)
                    self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                dashboard_address=None, silence_logs=logging.ERROR)
            finally:
                if main:
                    signal.signal(signal.SIGINT, previous)
            self.client = Client(self.cluster)
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False

    def results(self, cells):
        from dask.distributed import wait

        ordered = sorted(cells, key=estimated_seconds, reverse=True)  # largest first (load balance)
        futures = {}
        for rank, c in enumerate(ordered):
            fut = self.client.submit(compute_cell, c.cell, c.params, c.n_runs, c.seed, n_threads=1,
                                     executor=self.label, sweep=c.sweep, key=f"{c.sweep}-{c.key[:16]}",
                                     pure=False, priority=len(ordered) - rank)
            futures[fut] = c
        pending = set(futures)
        try:
            while pending:
                try:
                    done, pending = wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    done = set()
                self.interrupt.check()
                for fut in sorted(done, key=lambda f: futures[f].key):
                    try:
                        yield futures[fut], fut.result()
                    except Exception as exc:  # noqa: BLE001
                        yield futures[fut], exc
        finally:
            self.client.cancel(list(futures))


# ============================================================================
# running, reading, status
# ============================================================================

def _folder(sweep, root):
    return Path(root if root is not None else store.default_root()) / sweep.name


def _current_fingerprint(cell: Cell) -> str:
    return fingerprint(cell.cell, family(cell.params))


def _classify(cell, folder):
    """``(status, attrs)``: status "finished", "stale", "missing" or "unreadable"."""
    path = folder / cell.filename
    if not path.is_file():
        return "missing", {}
    try:
        attrs = store.read_attrs(path)
    except OSError:
        return "unreadable", {}
    if attrs.get("key") != cell.key:
        return "unreadable", attrs
    if attrs.get("fingerprint") != _current_fingerprint(cell):
        return "stale", attrs
    return "finished", attrs


def run_sweep(sweep, scale="book", executor="local", workers=None, scheduler=None, root=None,
              redo_stale=False, progress=True, connect_timeout=10.0) -> dict:
    """Compute the cells of a sweep that are not stored yet.

    Parameters
    ----------
    sweep : str or Sweep
    scale : {"book", "paper"}
    executor : {"local", "dask"}
    workers : int, optional
        Local: threads over the runs of each cell; dask: worker processes of
        the LocalCluster.  Default: the cores this process may use (or the
        environment variable ``NUMBA_NUM_THREADS``).  Not allowed with ``scheduler``
        (the scheduler's workers are used).
    scheduler : str, optional
        Address of a running Dask scheduler (``executor="dask"`` only).
    root : path, optional
        Results root (default :func:`mdlib.store.default_root`).
    redo_stale : bool
        Recompute stale cells (their files are replaced).
    progress : bool
        A progress bar over the estimated work, with an ETA.
    connect_timeout : float
        Seconds to wait for the scheduler.

    Returns
    -------
    dict
        Counts: ``cells``, ``skipped`` (already stored), ``stale_kept``,
        ``computed``, ``failed`` and the ``folder``.

    Raises
    ------
    SweepError
        Unknown sweep, scale or executor, or bad ``workers``.
    mdlib.store.NewerSchemaError
        The folder was written by a newer store (nothing is changed).
    SchedulerUnreachable
        The scheduler cannot be reached within ``connect_timeout`` seconds.
    """
    sweep = get_sweep(sweep)
    check_scale(scale)
    if executor not in EXECUTORS:
        raise SweepError(f"unknown executor {executor!r}; the executors are {', '.join(EXECUTORS)}")
    if scheduler is not None and executor != "dask":
        raise SweepError("--scheduler needs --executor dask")
    if scheduler is not None and workers is not None:
        raise SweepError("--workers applies to the local cluster; with --scheduler the scheduler's workers are used")
    if workers is None:
        workers = _sgd._default_threads()
    try:
        workers = check_int("workers", workers, 1)
    except ValueError as exc:
        raise SweepError(str(exc)) from None
    folder = _folder(sweep, root)
    store.check_schema(folder)
    cells = sweep.cells(scale)
    status = [_classify(c, folder)[0] for c in cells]
    todo = [c for c, s in zip(cells, status) if s in ("missing", "unreadable") or (redo_stale and s == "stale")]
    report = dict(folder=str(folder), cells=len(cells), skipped=len(cells) - len(todo),
                  stale_kept=sum(s == "stale" for s in status) if not redo_stale else 0, computed=0, failed=0)
    say = functools.partial(print, file=sys.stderr, flush=True)
    say(f"sweep {sweep.name} ({scale}): {len(cells)} cells, {report['skipped']} already stored, "
        f"{len(todo)} to compute -> {folder}")
    if report["stale_kept"]:
        say(f"  {report['stale_kept']} stored cells are stale (computed by code whose results differ); "
            "kept as they are: use --redo-stale to recompute them")
    if not todo:
        return report
    ex = (_LocalExecutor(workers) if executor == "local" else
          _DaskExecutor(None if scheduler else workers, scheduler, connect_timeout))
    costs = {c.key: max(1, round(1000 * estimated_seconds(c))) for c in todo}  # integer ms: exact sums
    bar = None
    interrupt = ex.interrupt
    try:
        with interrupt, ex:  # starts the cluster or connects to the scheduler: fails before anything is written
            store.write_manifest(folder, sweep.to_data())
            store.remove_stale_tmp(folder)
            if progress:
                from tqdm import tqdm

                desc = f"{sweep.name} ({scale}): {{}}/{len(todo)} cells"
                bar = tqdm(total=sum(costs.values()), desc=desc.format(0), file=sys.stderr,
                           bar_format="{desc}, {percentage:3.0f}% of the estimated work |{bar}| "
                                      "[{elapsed}<{remaining}]",
                           mininterval=1.0 if sys.stderr.isatty() else 30.0)
            log = bar.write if bar is not None else say
            for cell, result in ex.results(todo):
                interrupt.check()  # a Ctrl-C swallowed where it landed (see _Interrupt) stops the sweep here
                if isinstance(result, Exception):
                    report["failed"] += 1
                    log(f"  FAILED {cell.label()}: {type(result).__name__}: {result}")
                else:
                    if result.attrs.get("key") != cell.key:
                        raise RuntimeError(f"cell {cell.label()} came back with another key")
                    if result.attrs.get("fingerprint") != _current_fingerprint(cell):
                        log(f"  warning: {cell.label()} was computed by a worker whose code differs from this "
                            "process's (fingerprints differ); it is stored and will show as stale")
                    store.write_cell(result, folder / cell.filename)
                    report["computed"] += 1
                    log(f"  stored {cell.label()}: {cell.n_runs} runs, {result.attrs['cpu_time_s']:.1f} s CPU, "
                        f"{result.attrs['wall_time_s']:.1f} s wall")
                if bar is not None:
                    bar.update(costs[cell.key])
                    bar.set_description_str(desc.format(report["computed"] + report["failed"]))
    except KeyboardInterrupt:
        say(f"\ninterrupted: {report['computed']} cells stored by this run are kept; the cells in flight are "
            "dropped. Run the same command again to resume.")
        raise
    finally:
        if bar is not None:
            bar.close()
        store.remove_stale_tmp(folder)
    say(f"sweep {sweep.name} ({scale}): {report['computed']} computed, {report['failed']} failed, "
        f"{report['skipped']} already stored")
    return report


def sweep_status(sweep, scale="paper", root=None):
    """The state of every cell of a sweep at one scale.

    Returns
    -------
    pandas.DataFrame
        One row per cell, in grid order: the grid parameters, ``n_runs``,
        ``status`` ("finished", "stale": computed by code whose fingerprint
        differs from the current one, "missing", "unreadable"), ``file``,
        the provenance attributes of stored cells and ``same_commit``
        (computed at the commit of the code reading it).
    """
    import pandas as pd

    sweep = get_sweep(sweep)
    folder = _folder(sweep, root)
    store.check_schema(folder)
    rows = []
    for c in sweep.cells(scale):
        status, attrs = _classify(c, folder)
        row = dict(c.coords)
        row.update(n_runs=c.n_runs, status=status, file=c.filename)
        row.update({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in attrs.items()
                    if not k.startswith("param_") and k not in ("n_runs", "key_json")})
        if attrs:
            row["same_commit"] = attrs.get("git_commit") == store.environment()["git_commit"]
        rows.append(row)
    return pd.DataFrame(rows)


def open_sweep(sweep, scale="paper", root=None, stale="warn"):
    """Read a sweep: one Dataset combined by coordinates, and one provenance row per cell.

    Parameters
    ----------
    sweep : str or Sweep
    scale : {"book", "paper"}
        Which grid (and run counts) to read.
    root : path, optional
        Results root (default :func:`mdlib.store.default_root`).
    stale : {"warn", "drop", "raise"}
        What to do with cells computed by code whose results differ from the
        current code's (fingerprint mismatch): keep them with a
        ``RuntimeWarning`` (their ``stale`` flag is set), replace them by NaN,
        or raise.

    Returns
    -------
    ds : xarray.Dataset
        Dimensions: the grid parameters, then ``run``; the variables of the
        cell function (NaN where a cell is missing or has fewer runs),
        ``n_runs`` (runs held by each cell) and ``stale`` (bool); the
        attribute ``git_commits`` lists the commits that computed the cells.
    provenance : pandas.DataFrame
        As :func:`sweep_status`: one row per cell with its status and
        provenance (commit, date, CPU time, versions, ...).

    Examples
    --------
    >>> ds, prov = open_sweep("exit_vs_d", scale="paper")          # doctest: +SKIP
    >>> ds.t_sgd.mean("run")                                        # doctest: +SKIP
    """
    check_choice("stale", stale, ("warn", "drop", "raise"))
    sweep = get_sweep(sweep)
    folder = _folder(sweep, root)
    prov = sweep_status(sweep, scale, root)
    cells = sweep.cells(scale)
    n_stale = int((prov["status"] == "stale").sum())
    if n_stale and stale == "raise":
        raise RuntimeError(f"sweep {sweep.name}: {n_stale} stored cells are stale (see sweep_status)")
    datasets = []
    for c, st in zip(cells, prov["status"]):
        keep = st == "finished" or (st == "stale" and stale == "warn")
        datasets.append(store.read_cell(folder / c.filename) if keep else None)
    grid = sweep.scales[scale].grid
    ds = store.combine_cells(grid, [c.coords for c in cells], datasets,
                             attrs=dict(sweep=sweep.name, scale=scale, description=sweep.description,
                                        cell=sweep.cell, seed=sweep.seed, schema_version=store.SCHEMA_VERSION,
                                        **{f"fixed_{k}": v for k, v in store.canonical_params(sweep.fixed).items()}))
    stored = prov[prov["status"].isin(["finished", "stale"])]
    if len(stored):
        commits = stored["git_commit"].str[:10].value_counts()
        ds.attrs["git_commits"] = ", ".join(f"{k} ({v} cells)" for k, v in commits.items())
    shape = tuple(len(v) for v in grid.values())
    ds["stale"] = (tuple(grid), (prov["status"] == "stale").to_numpy().reshape(shape) & (stale == "warn"),
                   {"long_name": "computed by code whose results differ from the current code's"})
    if n_stale and stale == "warn":
        store.warn_stale(sweep.name, n_stale, len(cells))
    return ds, prov


# ============================================================================
# command line
# ============================================================================

def _fmt_seconds(s):
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _cmd_list(args):
    print(f"{'sweep':<16} {'cell':<13} {'book: cells/runs/~CPU':<24} {'paper: cells/runs/~CPU':<24} description")
    for s in SWEEPS.values():
        cols = []
        for scale in SCALES:
            cells = s.cells(scale)
            cols.append(f"{len(cells)}/{sum(c.n_runs for c in cells)}/"
                        f"{_fmt_seconds(sum(estimated_seconds(c) for c in cells))}")
        print(f"{s.name:<16} {s.cell:<13} {cols[0]:<24} {cols[1]:<24} {s.description}")
    print("\n~CPU: a rough estimate (SGD steps and ODE solves at speeds measured on a 2-core development machine); "
          "`show NAME` for a definition.")
    return 0


def _cmd_show(args):
    s = get_sweep(args.name)
    doc = (CELLS[s.cell].__doc__ or "").strip().splitlines()[0]
    print(f"sweep {s.name}: {s.description}\n")
    print(f"cell function: {s.cell} - {doc}")
    print(f"seed: {s.seed}")
    print("fixed: " + ", ".join(f"{k} = {v}" for k, v in s.fixed.items()))
    for scale in SCALES:
        sc = s.scales[scale]
        cells = s.cells(scale)
        print(f"\n{scale}: {len(cells)} cells, {sum(c.n_runs for c in cells)} runs, "
              f"~{_fmt_seconds(sum(estimated_seconds(c) for c in cells))} CPU (rough)")
        for k, v in sc.grid.items():
            print(f"  {k}: {', '.join(map(str, v))}")
        print(f"  runs per cell: {sc.runs}")
        if args.cells:
            for c in cells:
                print(f"    {c.label():<32} n_runs={c.n_runs:<6} {c.filename}  ~{_fmt_seconds(estimated_seconds(c))}")
    print("\nas data:")
    print(json.dumps(s.to_data(), indent=1))
    return 0


def _cmd_status(args):
    s = get_sweep(args.name)
    folder = _folder(s, args.results)
    scales = [args.scale] if args.scale else list(SCALES)
    known = set()
    for scale in scales:
        df = sweep_status(s, scale, args.results)
        cells = s.cells(scale)
        known |= {c.filename for c in cells}
        counts = df["status"].value_counts().to_dict()
        done = df["status"].isin(["finished", "stale"])
        print(f"sweep {s.name} ({scale}), {folder}: {len(df)} cells: "
              + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("finished", "stale", "missing", "unreadable")))
        print(f"  runs stored: {int(df.loc[done, 'n_runs'].sum())} of {int(df['n_runs'].sum())}")
        if done.any():
            commits = df.loc[done, "git_commit"].str[:10].value_counts()
            print("  commits: " + ", ".join(f"{k} ({v} cells)" for k, v in commits.items()))
            print(f"  CPU time stored: {_fmt_seconds(float(df.loc[done, 'cpu_time_s'].sum()))}")
        for st in ("stale", "missing", "unreadable"):
            rows = [c for c, x in zip(cells, df["status"]) if x == st]
            for c in rows[: args.max_list]:
                print(f"  {st}: {c.label()} ({c.n_runs} runs, {c.filename})")
            if len(rows) > args.max_list:
                print(f"  {st}: ... and {len(rows) - args.max_list} more")
    if not args.scale and folder.is_dir():
        other = sorted(p.name for p in folder.glob("*.nc") if p.name not in known)
        if other:
            print(f"  {len(other)} other cell files in the folder (other grids, run counts or schemas)")
    return 0


def _cmd_run(args):
    report = run_sweep(args.name, scale=args.scale, executor=args.executor, workers=args.workers,
                       scheduler=args.scheduler, root=args.results, redo_stale=args.redo_stale,
                       progress=not args.no_progress, connect_timeout=args.connect_timeout)
    return 1 if report["failed"] else 0


def _parser():
    ap = argparse.ArgumentParser(prog="python -m mdlib.sweeps", description="Declarative sweeps and the result store.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the sweeps, their sizes and rough CPU costs")
    p = sub.add_parser("show", help="a sweep's definition")
    p.add_argument("name")
    p.add_argument("--cells", action="store_true", help="list every cell")
    p = sub.add_parser("run", help="compute the cells not stored yet")
    p.add_argument("name")
    p.add_argument("--scale", default="book", help="book (small, fast; default) or paper")
    p.add_argument("--executor", default="local", help="local (default) or dask")
    p.add_argument("--workers", default=None,
                   help="local: threads per cell; dask: worker processes (default: the cores this process may use, "
                        "or $NUMBA_NUM_THREADS)")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (with --executor dask)")
    p.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to wait for the scheduler")
    p.add_argument("--results", default=None, help="results root (default: $MDLIB_RESULTS or <repository>/results)")
    p.add_argument("--redo-stale", action="store_true", help="recompute cells computed by different code")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p = sub.add_parser("status", help="finished, stale and missing cells")
    p.add_argument("name")
    p.add_argument("--scale", default=None, help="book or paper (default: both)")
    p.add_argument("--results", default=None, help="results root")
    p.add_argument("--max-list", type=int, default=20, help="cells listed per kind")
    return ap


def main(argv=None) -> int:
    """The command line (``python -m mdlib.sweeps``); returns the exit status."""
    args = _parser().parse_args(argv)
    if getattr(args, "workers", None) is not None:
        try:
            args.workers = int(args.workers)
        except ValueError:
            print(f"error: --workers must be a positive integer, got {args.workers!r}", file=sys.stderr)
            return 2
    if getattr(args, "scale", None) is not None and args.scale not in SCALES:
        print(f"error: unknown scale {args.scale!r}; the scales are {', '.join(SCALES)}", file=sys.stderr)
        return 2
    commands = {"list": _cmd_list, "show": _cmd_show, "run": _cmd_run, "status": _cmd_status}
    try:
        return commands[args.command](args)
    except (SweepError, store.NewerSchemaError, SchedulerUnreachable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # run through the package module (not __main__) so that Dask workers can import what is submitted
    from mdlib.sweeps import main as _main

    _status = _main()
    if _status == 130:
        # Interrupted: the runs in flight are abandoned on daemon threads (_map_runs), and everything
        # stored is complete on disk.  Python's finalization would stop those threads where they are,
        # which aborts the process when one is inside native code ("terminate called without an
        # active exception"); end it now instead.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_status)
    sys.exit(_status)
