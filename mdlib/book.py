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
from pathlib import Path

import numpy as np

from ._validate import check_int, check_real

__all__ = ["check_params", "seeds", "mean_se", "ratio_se", "finite", "glue", "glue_params", "plain_math",
           "sweep_data", "SweepData", "store_recheck",
           "claim", "Claim", "ClaimError", "RELATIONS", "glue_figure", "glue_all"]


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


_MATH_SYMBOLS = {"Delta": "Δ", "gamma": "γ", "omega": "ω", "sigma": "σ", "mu": "μ", "tau": "τ", "rho": "ρ",
                 "theta": "θ", "kappa": "κ", "lambda": "λ", "nu": "ν", "alpha": "α", "beta": "β", "ge": "≥",
                 "geq": "≥", "le": "≤", "leq": "≤", "to": "→", "infty": "∞", "sqrt": "√", "star": "⋆", "pm": "±",
                 "times": "×", "cdot": "·", "approx": "≈", "sim": "~", "in": "∈", "ldots": "…", "dots": "…",
                 "log": "log", "exp": "exp", "rm": "", "mathrm": "", ",": " "}


def plain_math(text):
    r"""``text`` with its ``$...$`` maths written in Unicode, for ``{glue:text}``.

    ``{glue:text}`` pastes text verbatim (maths would show as raw TeX), and
    ``{glue:md}`` cannot paste across documents, so the claim summaries the
    landing page pastes are glued in plain Unicode.

    Examples
    --------
    >>> plain_math(r"$\gamma_{\rm opt}$ = 0.08 at $d \ge 1000$")
    'γ_opt = 0.08 at d ≥ 1000'
    """
    import re

    def one(m):
        def sym(k):
            value = _MATH_SYMBOLS.get(k.group(1), k.group(1))
            return value + (k.group(2) if value else "")  # "\\rm opt" -> "opt"

        s = re.sub(r"\\([A-Za-z]+|,)(\s*)", sym, m.group(1))
        return s.replace("{", "").replace("}", "")

    return re.sub(r"\$([^$]*)\$", one, text)


def glue_figure(name, fig):
    """Publish a matplotlib figure for ``{glue:figure}`name``` (with its caption in the text), and close it."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
    from myst_nb import glue as _glue

    if not isinstance(fig, Figure):
        raise ValueError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    _glue(name, fig, display=False)
    plt.close(fig)


def glue_params(namespace, *names, prefix="par_"):
    """Glue the parameters the text quotes, as ``par_<name>``."""
    for name in names:
        glue(prefix + name, namespace[name])


def glue_all(values, prefix=""):
    """Glue every entry of the mapping ``values`` as ``prefix + key`` (see :func:`glue`)."""
    for key, value in values.items():
        glue(prefix + key, value)


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
        glue(f"claim_{key}", plain_math(summary))
    return Claim(key, measured, se, expected, relation, tol, z, summary)


# --------------------------------------------------------------------------- the result store
@dataclass(frozen=True)
class SweepData:
    """What a chapter draws from a sweep (see :func:`sweep_data`).

    Attributes
    ----------
    ds : xarray.Dataset
        Grid parameters and ``run`` as dimensions (see :func:`mdlib.sweeps.open_sweep`).
    provenance : pandas.DataFrame
        One row per cell: status, runs, commit, date, CPU time, ...
    origin : str
        ``"store"`` (every cell read from the store), ``"mixed"`` (cells the
        store lacks were computed now) or ``"computed"`` (nothing read from the store).
    note : str
        One or two plain sentences for the page: where the numbers come from.
    """

    ds: object
    provenance: object
    origin: str
    note: str


def _runs_text(n):
    n = sorted({int(v) for v in n})
    return f"{n[0]} runs per cell" if len(n) == 1 else f"{n[0]} to {n[-1]} runs per cell"


def _provenance_text(prov, name, scale):
    stored = prov[prov["status"].isin(["finished", "stale"])]
    if not len(stored):
        return ""
    commits = sorted({str(c)[:10] for c in stored["git_commit"]})
    dates = sorted(str(d)[:10] for d in stored["date_utc"])
    when = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    cpu_h = float(stored["cpu_time_s"].sum()) / 3600
    text = (f"Sweep '{name}' ({scale} scale) from the result store: {len(stored)} cells, "
            f"{_runs_text(stored['n_runs'])}, computed at commit {', '.join(commits)} on {when}, "
            f"{cpu_h:.2f} CPU hours in all.")
    n_stale = int((stored["status"] == "stale").sum())
    if n_stale:
        text += (f" {n_stale} of these cells were computed by code whose results differ from this build's "
                 "(stale); the check below recomputes cells with the current code.")
    return text


def sweep_data(name, *, source="store", fixed=None, grid=None, book_runs=None, root=None, cache=None,
               workers=None):
    """The data of a sweep for a chapter: from the result store, or computed now.

    ``source="store"`` reads the paper-scale cells of :data:`mdlib.sweeps.SWEEPS`
    ``[name]`` from the store (``results/<name>/``); cells the store lacks are
    computed now at book scale and the note says so. ``source="compute"``
    computes the grid now at book scale (with ``book_runs`` runs per cell).
    When the chapter's parameters (``fixed``, or ``grid`` values) are not the
    ones the store holds, the cells are computed now whatever ``source``
    says, and the note says why.

    Parameters
    ----------
    name : str
        A sweep of :data:`mdlib.sweeps.SWEEPS`.
    source : {"store", "compute"}
    fixed : dict, optional
        Fixed parameters as the chapter sets them (compared with the sweep's).
    grid : dict, optional
        The grid values the chapter wants, ``{param: values}``.
    book_runs : int, optional
        Runs per computed cell (default: the sweep's book scale).
    root : path, optional
        The result store (default ``results/`` of the repository).
    cache : path, optional
        Where computed cells go (default ``_build/sweeps`` of the repository):
        never the committed store.
    workers : int, optional
        Threads for computed cells (default: the cores this process may use, or the
        environment variable ``NUMBA_NUM_THREADS``).

    Returns
    -------
    SweepData
    """
    import dataclasses

    from . import store, sweeps
    from .sgd import _default_threads

    if source not in ("store", "compute"):
        raise ValueError(f"source must be 'store' or 'compute', got {source!r}")
    sw = sweeps.get_sweep(name)
    paper = sw.scales["paper"]
    fixed = store.canonical_params(fixed or {})
    unknown = set(fixed) - set(sw.fixed)
    if unknown:
        raise ValueError(f"sweep {name}: {sorted(unknown)} are not fixed parameters of it ({sorted(sw.fixed)})")
    grid = {k: tuple(v) for k, v in (grid or {}).items()}
    for k in grid:
        if k not in paper.grid:
            raise ValueError(f"sweep {name}: {k!r} is not a grid parameter ({sorted(paper.grid)})")
    base_fixed = store.canonical_params(sw.fixed)
    differs = {k: v for k, v in fixed.items() if base_fixed[k] != v}
    outside = {k: [x for x in v if x not in paper.grid[k]] for k, v in grid.items()}
    outside = {k: v for k, v in outside.items() if v}
    want = {k: grid.get(k, v) for k, v in paper.grid.items()}
    cache = Path(cache) if cache is not None else store.default_root().parent / "_build" / "sweeps"

    def compute(reason):
        book = sw.scales["book"]
        runs = book_runs if book_runs is not None else book.runs
        custom = dataclasses.replace(sw, fixed={**sw.fixed, **fixed},
                                     scales={"book": sweeps.Scale(grid=want, runs=runs), "paper": paper})
        sweeps.run_sweep(custom, scale="book", root=cache, workers=workers, progress=True)
        ds, prov = sweeps.open_sweep(custom, scale="book", root=cache)
        n = _runs_text(prov["n_runs"])
        return SweepData(ds, prov, "computed", f"Computed now, {len(prov)} cells with {n}: {reason}.")

    if source == "compute":
        return compute("the chapter was run with source = 'compute'")
    if differs or outside:
        what = [f"{k} = {v} (the store holds {base_fixed[k]})" for k, v in differs.items()]
        what += [f"{k} in {v} (not in the stored grid)" for k, v in outside.items()]
        return compute("the store does not hold " + "; ".join(what))
    ds, prov = sweeps.open_sweep(sw, scale="paper", root=root)
    ds = ds.sel({k: list(v) for k, v in grid.items()})
    sel = np.ones(len(prov), bool)
    for k, v in grid.items():
        sel &= prov[k].isin(v).to_numpy()
    prov = prov[sel].reset_index(drop=True)
    missing = prov["status"].isin(["missing", "unreadable"]).to_numpy()
    note = _provenance_text(prov, name, "paper")
    if not missing.any():
        return SweepData(ds, prov, "store", note)
    # the cells the store lacks: computed now with the book's runs per cell (cached outside the store)
    runs = book_runs if book_runs is not None else sw.scales["book"].runs
    wanted = [c for c in sw.cells("paper") if all(c.coords[k] in v for k, v in grid.items())]
    todo = [c for c, m in zip(wanted, missing) if m]
    folder = cache / name
    computed = []
    for c in todo:
        n = runs(c.params) if isinstance(runs, sweeps.RunsBy) else int(runs)
        key, _ = store.cell_key(c.cell, c.params, n, c.seed)
        path = folder / (key[:16] + ".nc")
        if not path.is_file():
            threads = workers if workers is not None else _default_threads()
            store.write_cell(sweeps.compute_cell(c.cell, c.params, n, c.seed, n_threads=threads, sweep=name), path)
        computed.append((c.coords, store.read_cell(path)))
    book_ds = store.combine_cells({k: sorted({co[k] for co, _ in computed}) for k in paper.grid},
                                  [co for co, _ in computed], [d for _, d in computed])
    filled = ds.combine_first(book_ds)
    extra = book_ds["n_runs"].reindex_like(ds["n_runs"]).fillna(0).astype(int)
    filled["n_runs"] = ds["n_runs"].where(ds["n_runs"] > 0, extra)
    n_new = sorted({int(d.attrs["n_runs"]) for _, d in computed})
    note = (note + " " if note else "") + (f"{len(todo)} of the {len(prov)} cells are not in the store; they were "
                                           f"computed now with {_runs_text(n_new)}.")
    return SweepData(filled, prov, "mixed" if not missing.all() else "computed", note)  # computed: none stored


def store_recheck(name, cells, *, n_runs, seed, variables=("t_sgd",), level=1e-3, root=None):
    """Recompute stored cells with fresh, independent runs and compare their means with the store.

    A stale or wrong store fails this check: for every cell in ``cells`` (a
    list of ``{grid parameter: value}``) the cell function is run again with
    ``n_runs`` runs from seed ``seed`` (independent of the stored runs), and
    each variable's mean over finite values is compared with the stored mean,
    ``z = (m_new - m_store) / sqrt(se_new² + se_store²)``.

    Returns
    -------
    max_abs_z : float
        The largest ``|z|`` over cells and variables.
    threshold : float
        The Bonferroni limit for that many z-tests at family-wise level
        ``level`` (:func:`mdlib.stats.bonferroni_z`).
    table : pandas.DataFrame
        One row per cell and variable: stored and new means, standard errors, z.
    """
    import pandas as pd

    from . import stats, store, sweeps

    sw = sweeps.get_sweep(name)
    ds, prov = sweeps.open_sweep(sw, scale="paper", root=root)
    rows = []
    for coords in cells:
        params = store.canonical_params({**sw.fixed, **coords})
        new = sweeps.compute_cell(sw.cell, params, n_runs, seed, sweep=f"{name}-recheck")
        old = ds.sel(coords)
        if int(old["n_runs"]) == 0:
            raise ValueError(f"sweep {name}: the store holds no runs for {coords}")
        for var in variables:
            a, b = finite(old[var].values), finite(new[var].values)
            (ma, sa), (mb, sb) = mean_se(a), mean_se(b)
            rows.append(dict(coords, variable=var, store_mean=ma, store_se=sa, store_runs=a.size,
                             new_mean=mb, new_se=sb, new_runs=b.size, z=(mb - ma) / math.hypot(sa, sb)))
    table = pd.DataFrame(rows)
    return float(np.abs(table["z"]).max()), stats.bonferroni_z(len(table), level), table
