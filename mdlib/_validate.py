"""Argument checks shared by every public function of :mod:`mdlib`.

Each check returns the value converted to its canonical type, or raises a
``ValueError`` whose message names the offending parameter.  One rule per
kind of argument, in one place: a problem, an initial state, a threshold
``T``, a time grid ``t_save``, an exit criterion.
"""
from __future__ import annotations

import numbers

import numpy as np


def check_int(name, value, minimum=None):
    """An integer (not a bool, not a float that happens to be whole) ``>= minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            raise ValueError(f"{name} must be an integer, got {value!r} (a float)")
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_real(name, value, *, positive=False, nonnegative=False):
    """A finite real number (optionally ``> 0`` or ``>= 0``), as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_bool(name, value):
    """True or False (numpy booleans allowed), as a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(name, value, choices):
    """One of ``choices`` (compared with ``==``)."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_T(T):
    """The relative exit threshold of Eq. 9, ``0 < T < 1``."""
    T = check_real("T", T)
    if not 0 < T < 1:
        raise ValueError(f"T must be in (0, 1), got {T}")
    return T


def check_problem(problem):
    """A :class:`~mdlib.problem.Problem`."""
    from .problem import Problem

    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a Problem, got {type(problem).__name__}")
    return problem


def check_init(problem, init):
    """A :class:`~mdlib.problem.State` that fits ``problem`` (also checks ``problem``)."""
    from .problem import State

    check_problem(problem)
    if not isinstance(init, State):
        raise ValueError(f"init must be a State (from random_init or make_state), got {type(init).__name__}")
    init.check_matches(problem)
    return init


def check_t_save(t_save, t_max, default):
    """Save times: strictly increasing, finite, in ``[0, t_max]``; possibly empty.

    ``None`` gives ``default(t_max)``.  An empty grid is allowed (a run that is
    only asked for its exit time records nothing).
    """
    if t_save is None:
        t_save = default(t_max)
    t_save = np.asarray(t_save, dtype=float)
    if t_save.ndim != 1:
        raise ValueError(f"t_save must be a 1-d array of times, got shape {t_save.shape}")
    if t_save.size and (not np.all(np.isfinite(t_save)) or t_save[0] < 0 or t_save[-1] > t_max * (1 + 1e-12)
                        or np.any(np.diff(t_save) <= 0)):
        raise ValueError(f"t_save must be strictly increasing times in [0, t_max = {t_max}]")
    return t_save


def check_exit(exit):
    """``None`` or an :class:`~mdlib.trajectory.Exit` (the ``exit=`` of the integrators)."""
    from .trajectory import Exit

    if exit is not None and not isinstance(exit, Exit):
        raise ValueError(f"exit must be an Exit (mdlib.Exit(T, criterion)) or None, got {type(exit).__name__}")
    return exit
