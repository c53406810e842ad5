r"""What every chapter of the book needs besides the model: parameters, statistics, glue, claims.

A chapter is prose with short code cells that call :mod:`mdlib`. This module holds the
bookkeeping those cells share, so that no chapter defines it again:

* :func:`check_params` validates the values of a chapter's ``parameters`` cell (a rerun
  with a bad value fails at once, naming the parameter);
* :func:`seeds` spawns one named :class:`numpy.random.SeedSequence` per experiment;
* :func:`mean_se`, :func:`ratio_se` and :func:`finite` are the statistics of the text;
* :func:`glue` publishes a number to the text (``{glue:text}`name:.3f```), as a plain
  Python number; :func:`glue_params` publishes the parameters the text quotes;
* :func:`claim` checks one claim of the book against its evidence, with a stated
  tolerance, raises :class:`ClaimError` (failing the build) when the evidence does not
  support it, and glues what was measured. The landing page's claim-by-claim table is
  generated from the ``claim(...)`` calls of the chapters
  (``scripts/make_claims_table.py``), so every row is backed by a check.

Examples
--------
>>> from mdlib import book
>>> m, se = book.mean_se([1.0, 2.0, 3.0])
>>> round(m, 3), round(se, 3)
(2.0, 0.577)
>>> round(book.claim("demo_mean", m, se=se, expected=2.5, k=3, glue_values=False).z, 3)
-0.866
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ._validate import check_int, check_real

__all__ = ["check_params", "seeds", "mean_se", "ratio_se", "finite", "glue", "glue_params",
           "claim", "Claim", "ClaimError", "RELATIONS"]


# --------------------------------------------------------------------------- parameters
def check_params(namespace, *, ints=None, positive=None, nonnegative=None, unit_interval=None,
                 bools=None):
    """Validate a chapter's parameters, naming the first bad one.

    Parameters
    ----------
    namespace : mapping
        Where the parameters live (``globals()`` in a chapter).
    ints : dict, optional
        ``{name: minimum}``: integers (not bools, not floats) at least ``minimum``.
    positive, nonnegative : iterable of str, optional
        Finite real numbers ``> 0`` or ``>= 0`` (integers accepted).
    unit_interval : iterable of str, optional
        Real numbers in the open interval ``(0, 1)`` (thresholds such as ``T``).
    bools : iterable of str, optional
        ``True`` or ``False``.

    Raises
    ------
    ValueError
        The message names the parameter and says what it must be.
    """
    def value(name):
        if name not in namespace:
            raise ValueError(f"parameter {name!r} is not defined")
        return namespace[name]

    for name, minimum in (ints or {}).items():
        check_int(name, value(name), minimum)
    for name in positive or ():
        check_real(name, value(name), positive=True)
    for name in nonnegative or ():
        check_real(name, value(name), nonnegative=True)
    for name in unit_interval or ():
        x = check_real(name, value(name))
        if not 0 < x < 1:
            raise ValueError(f"{name} must be in (0, 1), got {x}")
    for name in bools or ():
        if not isinstance(value(name), (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {value(name)!r}")


def seeds(seed, *names):
    """One independent :class:`~numpy.random.SeedSequence` per named experiment.

    Children are spawned in the order of ``names``: append new names at the end
    so that the existing experiments keep their seeds.

    Examples
    --------
    >>> s = seeds(0, "figure", "scan")
    >>> sorted(s)
    ['figure', 'scan']
    """
    seed = check_int("seed", seed, 0)
    return dict(zip(names, np.random.SeedSequence(seed).spawn(len(names))))


# --------------------------------------------------------------------------- statistics
def finite(x):
    """The finite entries of ``x`` as a 1-d float array (e.g. runs that escaped)."""
    x = np.asarray(x, dtype=float).ravel()
    return x[np.isfinite(x)]


def mean_se(x, axis=None):
    """Sample mean and its standard error ``std(ddof=1)/sqrt(n)``.

    With fewer than two values the standard error is ``nan`` (not 0: an
    unmeasured error must not pass a check).
    """
    x = np.asarray(x, dtype=float)
    n = x.size if axis is None else x.shape[axis]
    mean = x.mean(axis=axis)
    se = x.std(axis=axis, ddof=1) / np.sqrt(n) if n >= 2 else np.full_like(mean, np.nan)
    if axis is None:
        return float(mean), float(se)
    return mean, se


def ratio_se(num, den):
    """``mean(num)/mean(den)`` and its delta-method standard error, for paired samples."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    if num.shape != den.shape or num.ndim != 1 or num.size < 2:
        raise ValueError("num and den must be paired 1-d samples of at least two values")
    r = num.mean() / den.mean()
    return r, np.std(num - r * den, ddof=1) / np.sqrt(num.size) / abs(den.mean())


# --------------------------------------------------------------------------- glue
def _plain(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"only numbers and strings are glued, got {type(value).__name__}")


def glue(name, value):
    """Publish ``value`` to the text as ``{glue:text}`name```, as a plain int, float or str."""
    from myst_nb import glue as _glue

    _glue(name, _plain(value), display=False)


def glue_params(namespace, *names, prefix="par_"):
    """Glue the parameters the text quotes, as ``par_<name>``."""
    for name in names:
        glue(prefix + name, namespace[name])


# --------------------------------------------------------------------------- claims
RELATIONS = {
    "==": "agrees with",
    "<=": "is not significantly above",
    ">=": "is not significantly below",
    "<": "is significantly below",
    ">": "is significantly above",
    "!=": "differs significantly from",
}


class ClaimError(AssertionError):
    """A claim of the book is not supported by this build's evidence."""


@dataclass(frozen=True)
class Claim:
    """The outcome of :func:`claim` (returned when the claim holds)."""

    key: str
    measured: float
    se: float
    expected: float
    relation: str
    tolerance: float
    z: float
    text: str


def claim(key, measured, *, expected, se=0.0, relation="==", k=3.0, model_error=0.0, fmt=".3g",
          text=None, paper=None, statement=None, where=None, verdict=None, glue_values=True):
    r"""Check a claim against the evidence measured in this build, and glue it.

    The claim is that ``measured`` (with standard error ``se``) stands in
    ``relation`` to ``expected``, with the tolerance ``k · se + model_error``:

    ========  ===================================================================
    ``==``    ``|measured - expected| <= k se + model_error`` (consistent)
    ``<=``    ``measured - expected <= k se + model_error`` (not significantly above)
    ``>=``    ``expected - measured <= k se + model_error`` (not significantly below)
    ``<``     ``expected - measured > k se + model_error`` (significantly below)
    ``>``     ``measured - expected > k se + model_error`` (significantly above)
    ``!=``    ``|measured - expected| > k se + model_error`` (significantly different)
    ========  ===================================================================

    ``model_error`` is a stated, independently justified allowance (for example
    the linearisation error of a formula, measured elsewhere), never a fudge.

    On success the value is glued as ``key`` (and ``key_se``, ``key_expected``,
    ``key_z``), and a one-line summary as ``claim_key``, which the landing page's
    table pastes. A missing measurement (``nan``) fails the claim.

    Parameters
    ----------
    key : str
        Unique name of the claim in the book (a Python identifier).
    measured, expected : float
        What this build measured, and what the claim says it should be.
    se : float
        Standard error of ``measured`` (0 for an exact computation).
    relation : {"==", "<=", ">=", "<", ">", "!="}
    k : float
        Number of standard errors allowed.
    model_error : float
        Additional stated tolerance, ``>= 0``.
    fmt : str
        Format of the numbers in the summary.
    text : str, optional
        Summary template, formatted with ``measured, se, expected, z``
        (default: ``"{measured} ± {se} vs {expected}"``).
    paper, statement, where, verdict : str, optional
        The row of the landing page's claims table: where the claim is in the
        paper, what it says (MyST), the chapter section(s) as MyST references,
        and the verdict. They are read from the chapter source by
        ``scripts/make_claims_table.py`` and must be string literals there.
    glue_values : bool
        Glue the values (False outside a notebook, e.g. in tests).

    Returns
    -------
    Claim

    Raises
    ------
    ClaimError
        If the evidence does not support the claim, or is missing.
    """
    if not isinstance(key, str) or not key.isidentifier():
        raise ValueError(f"key must be an identifier, got {key!r}")
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {', '.join(RELATIONS)}; got {relation!r}")
    k = check_real("k", k, nonnegative=True)
    model_error = check_real("model_error", model_error, nonnegative=True)
    measured, expected, se = float(measured), float(expected), float(se)
    if not (math.isfinite(measured) and math.isfinite(expected)) or math.isnan(se) or se < 0:
        raise ClaimError(f"claim {key!r}: the evidence is missing or invalid (measured {measured}, "
                         f"se {se}, expected {expected}): nothing was measured")
    tol = k * se + model_error
    diff = measured - expected
    holds = {"==": abs(diff) <= tol, "<=": diff <= tol, ">=": -diff <= tol,
             "<": -diff > tol, ">": diff > tol, "!=": abs(diff) > tol}[relation]
    z = diff / se if se > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    numbers_ = {"measured": format(measured, fmt), "se": format(se, fmt), "expected": format(expected, fmt),
                "z": f"{z:.1f}"}
    summary = (text or ("{measured} ± {se} vs {expected}" if se > 0 else "{measured} vs {expected}")).format(**numbers_)
    if not holds:
        raise ClaimError(
            f"claim {key!r} fails: measured {numbers_['measured']} ± {numbers_['se']} "
            f"{RELATIONS[relation]} expected {numbers_['expected']}? No: the difference is "
            f"{diff:.3g} ({z:.2f} SE) against a tolerance of {k:g} SE + {model_error:.3g} = {tol:.3g}"
        )
    if glue_values:
        glue(key, measured)
        glue(f"{key}_se", se)
        glue(f"{key}_expected", expected)
        glue(f"{key}_z", z if math.isfinite(z) else 0.0)
        glue(f"claim_{key}", summary)
    return Claim(key, measured, se, expected, relation, tol, z, summary)
