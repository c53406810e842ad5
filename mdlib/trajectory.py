r"""One result type for SGD, the exact chain, ODE and SDE, and exit times.

Every time-evolution routine of :mod:`mdlib` returns a :class:`Trajectory`
saved on a common time grid, so chapters overlay SGD, ODE and SDE curves
and compute exit times (Eq. 9) without glue code.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validate import check_choice, check_int, check_real, check_T
from .problem import Problem
from .risk import population_risk

__all__ = ["Trajectory", "Exit", "time_grid", "exit_time"]


def time_grid(t_max: float, t_min: float | None = None, n_log: int = 150, n_lin: int = 250) -> np.ndarray:
    """Times that resolve both the plateau and the escape.

    The union of ``0``, ``n_log`` log-spaced points from ``t_min`` to
    ``t_max`` (the start of the dynamics) and ``n_lin`` evenly spaced points
    on ``[0, t_max]`` (the escape, which happens at ``t = O(log d)``).

    Parameters
    ----------
    t_max : float
        Final time, ``> 0``.
    t_min : float, optional
        First log-spaced time; default ``t_max * 1e-4``.
    n_log, n_lin : int
        Numbers of log-spaced and linearly spaced points.

    Returns
    -------
    ndarray
        Sorted unique times starting at 0 and ending at ``t_max``.
    """
    t_max = check_real("t_max", t_max, positive=True)
    t_min = t_max * 1e-4 if t_min is None else check_real("t_min", t_min, positive=True)
    if t_min >= t_max:
        raise ValueError(f"t_min must be < t_max, got t_min = {t_min}, t_max = {t_max}")
    n_log = check_int("n_log", n_log, 0)
    n_lin = check_int("n_lin", n_lin, 2)
    t = np.concatenate([[0.0], np.geomspace(t_min, t_max, n_log) if n_log else [], np.linspace(0, t_max, n_lin)])
    return np.unique(t)


def _em_segments(t_save, t_max, dt, to_t_max):
    """The steps of a fixed-step integrator (Euler–Maruyama) that saves at ``t_save``.

    The time axis from 0 to the last save time (or to ``t_max`` if
    ``to_t_max``: a run that stops at its exit may go on past the last save)
    is cut at every save time, and each segment into equal steps of at most
    ``dt``.  Returns ``(t0, steps, h, save)``: segment ``s`` starts at
    ``t0[s]`` and makes ``steps[s]`` steps of size ``h[s]``; its end is save
    point ``save[s]`` of ``t_save``, or ``-1``.  A save at ``t = 0`` is the
    start, not a segment.

    Examples
    --------
    >>> t0, steps, h, save = _em_segments(np.array([0.0, 0.25, 1.0]), 2.0, 0.1, True)
    >>> t0.tolist(), steps.tolist(), save.tolist()
    ([0.0, 0.25, 1.0], [3, 8, 10], [1, 2, -1])
    >>> h.round(6).tolist()
    [0.083333, 0.09375, 0.1]
    """
    ends = np.unique(np.concatenate([t_save, [t_max] if to_t_max else []]))
    ends = ends[ends > 0]
    t0 = np.concatenate([[0.0], ends[:-1]])
    steps = np.array([max(1, int(np.ceil(span / dt - 1e-9))) for span in ends - t0], dtype=np.int64)
    h = (ends - t0) / np.maximum(steps, 1)
    save = np.full(ends.size, -1, dtype=np.int64)
    on_grid = np.isin(ends, t_save)
    save[on_grid] = np.searchsorted(t_save, ends[on_grid])
    return t0, steps, h, save


@dataclass(frozen=True)
class Exit:
    r"""Stop each run at its exit from mediocrity (Eq. 9) and record the time.

    Passed as ``exit=`` to :func:`~mdlib.simulate_sgd`, :func:`~mdlib.integrate_ode`
    and :func:`~mdlib.integrate_sde`, in the spirit of the ``events`` of
    :func:`scipy.integrate.solve_ivp`: every run stops at the first time its
    :meth:`gap` reaches zero, and :attr:`Trajectory.t_exit` holds that time.

    Parameters
    ----------
    T : float
        Relative threshold, ``0 < T < 1``.
    criterion : {"risk", "max_m"}
        ``"risk"`` (Eq. 9): the first ``t`` with
        ``R(t) - Δ/2 <= (1 - T)(R(0) - Δ/2)``; ``"max_m"`` (App. I, for a
        trained second layer): ``max_j m_j(t)² >= T + (1 - T) max_j m_j(0)²``.
        For a problem with a link other than the paper's (``Problem.link``),
        ``R`` is that link's risk (:func:`mdlib.links.population_risk`): the
        integrators pass ``link=problem.link`` to :meth:`level` and :meth:`gap`.

    Examples
    --------
    >>> import mdlib
    >>> pb = mdlib.Problem(p=1, d=1000, gamma=0.1, delta=1e-4)
    >>> init = mdlib.random_init(pb, 4, seed=0)
    >>> traj = mdlib.integrate_ode(pb, init, 50.0, t_save=(), exit=mdlib.Exit(T=0.01))
    >>> traj.t_exit.shape
    (4,)
    """

    T: float
    criterion: str = "risk"

    def __post_init__(self):
        object.__setattr__(self, "T", check_T(self.T))
        check_choice("criterion", self.criterion, ("risk", "max_m"))

    @property
    def mode(self) -> int:
        """Code of the criterion for the numba kernels: 1 risk, 2 max_m."""
        return 1 if self.criterion == "risk" else 2

    def level(self, m0, Q0, a0, delta, link=None):
        """The threshold of each run from its start, shape ``m0.shape[:-1]``.

        ``(1 - T)(R(0) - Δ/2)`` for ``"risk"``, ``T + (1 - T) max_j m_j(0)²``
        for ``"max_m"``; ``link``: the problem's link (``None``: the paper's).
        """
        if self.criterion == "risk":
            return (1 - self.T) * (_risk_of(link, m0, Q0, a0, delta) - delta / 2)
        return self.T + (1 - self.T) * np.max(np.asarray(m0) ** 2, axis=-1)

    def gap(self, m, Q, a, delta, level, link=None):
        """Distance to the threshold, ``<= 0`` once the run has exited."""
        if self.criterion == "risk":
            return _risk_of(link, m, Q, a, delta) - delta / 2 - level
        return level - np.max(np.asarray(m) ** 2, axis=-1)


def _risk_of(link, m, Q, a, delta):
    """Eq. 6 for the paper's link (``None``), :func:`mdlib.links.population_risk` for another."""
    if link is None:
        return population_risk(m, Q, a, delta)
    from .links import population_risk as link_risk  # (mdlib.links imports this module)

    return link_risk(link, m, Q, a, delta)


@dataclass(frozen=True)
class Trajectory:
    """Sufficient statistics of ``n_runs`` runs on a common time grid.

    Attributes
    ----------
    t : ndarray, shape (n_t,)
        Times, in units ``t = ν γ / (p d)``.
    m : ndarray, shape (n_runs, n_t, p)
    Q : ndarray, shape (n_runs, n_t, p, p) or None
        ``None`` when not stored (large p, to save memory).
    a : ndarray, shape (n_runs, n_t, p)
    risk : ndarray, shape (n_runs, n_t)
        Population risk (Eq. 6, or that of ``problem.link``), including ``Δ/2``.
    problem : Problem
    method : str
        ``"sgd-full"``, ``"sgd-exact"``, ``"ode"`` or ``"sde"``.
    diverged : ndarray of bool, shape (n_runs,)
        Runs that blew up (their values are NaN from the divergence on).
    t_exit : ndarray, shape (n_runs,), or None
        Exit times when the integrator was given ``exit=`` (:class:`Exit`):
        ``inf`` for runs that had not exited by ``t_max``, ``nan`` for
        diverged runs.  Saved values after a run's exit are NaN.
    exit : Exit or None
        The exit criterion used, if any.
    """

    t: np.ndarray
    m: np.ndarray
    Q: np.ndarray | None
    a: np.ndarray
    risk: np.ndarray
    problem: Problem
    method: str
    diverged: np.ndarray = field(default=None)
    t_exit: np.ndarray | None = None
    exit: Exit | None = None

    def __post_init__(self):
        if self.diverged is None:
            object.__setattr__(self, "diverged", np.zeros(self.m.shape[0], dtype=bool))

    @property
    def n_runs(self) -> int:
        return self.m.shape[0]

    @property
    def excess_risk(self) -> np.ndarray:
        """``R(t) - Δ/2``, shape (n_runs, n_t): the quantity of Eq. 9."""
        return self.risk - self.problem.delta / 2

    def run(self, i) -> Trajectory:
        """The runs ``i`` (int, slice or index array) as a Trajectory."""
        idx = np.atleast_1d(np.arange(self.n_runs)[i])
        return Trajectory(
            self.t, self.m[idx], None if self.Q is None else self.Q[idx], self.a[idx],
            self.risk[idx], self.problem, self.method, self.diverged[idx],
            None if self.t_exit is None else self.t_exit[idx], self.exit,
        )

    def at(self, t: float):
        """Index of the saved time closest to ``t``."""
        return int(np.argmin(np.abs(self.t - t)))

    @staticmethod
    def concatenate(trajectories) -> Trajectory:
        """Stack the runs of trajectories saved on the same grid."""
        trajectories = list(trajectories)
        first = trajectories[0]
        for tr in trajectories[1:]:
            if not np.array_equal(tr.t, first.t) or tr.problem != first.problem or tr.exit != first.exit:
                raise ValueError("trajectories must share time grid, problem and exit criterion")
        cat = lambda name: np.concatenate([getattr(tr, name) for tr in trajectories])  # noqa: E731
        Q = None if any(tr.Q is None for tr in trajectories) else cat("Q")
        t_exit = None if first.t_exit is None else cat("t_exit")
        return Trajectory(first.t, cat("m"), Q, cat("a"), cat("risk"), first.problem, first.method, cat("diverged"),
                          t_exit, first.exit)


def _first_crossing(t, g):
    """First time where ``g`` (shape (n_runs, n_t)) becomes <= 0, by linear
    interpolation between saved points; inf where it never does."""
    out = np.full(g.shape[0], np.inf)
    below = g <= 0
    hit = below.any(axis=1)
    k = np.argmax(below, axis=1)
    for r in np.nonzero(hit)[0]:
        j = k[r]
        if j == 0:
            out[r] = t[0]
            continue
        g0, g1 = g[r, j - 1], g[r, j]
        out[r] = t[j - 1] + (t[j] - t[j - 1]) * g0 / (g0 - g1)
    return out


def exit_time(trajectory: Trajectory, T: float, criterion: str = "risk") -> np.ndarray:
    r"""Exit time from mediocrity of every run (Eq. 9).

    ``criterion="risk"`` (Eq. 9): the first ``t`` with

    .. math::  \mathcal{R}(t) - \Delta/2 \le (1 - T)\,(\mathcal{R}(0) - \Delta/2),

    which on the sphere at ``p = 1`` reads ``m(t)² >= T + (1 - T) m(0)²``.

    ``criterion="max_m"`` (App. I, for a trained second layer, whose risk
    moves at once by fitting ``a``): the same threshold written for the
    largest overlap, ``max_j m_j(t)² >= T + (1 - T) max_j m_j(0)²``.

    The crossing is located by linear interpolation between saved points.

    Parameters
    ----------
    trajectory : Trajectory
    T : float
        Relative threshold, ``0 < T < 1``.
    criterion : {"risk", "max_m"}

    Returns
    -------
    ndarray, shape (n_runs,)
        Exit times; ``inf`` for runs that do not exit before the last saved
        time (and for diverged runs).
    """
    if not isinstance(trajectory, Trajectory):
        raise ValueError(f"trajectory must be a Trajectory, got {type(trajectory).__name__}")
    ex = Exit(T, criterion)
    if ex.criterion == "risk":
        e = trajectory.excess_risk
        g = e - (1 - ex.T) * e[:, :1]
    else:
        mm = np.max(trajectory.m**2, axis=2)
        g = (ex.T + (1 - ex.T) * mm[:, :1]) - mm
    g = np.where(np.isnan(g), np.inf, g)
    return _first_crossing(trajectory.t, g)
