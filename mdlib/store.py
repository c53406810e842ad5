r"""The result store: one netCDF file per cell of a sweep, stamped with its provenance.

A *cell* of a sweep is one point of its parameter grid, computed with
``n_runs`` independent runs.  Its result is a pure function of its *key*,

.. code-block:: text

    {"cell": <cell function>, "params": <every parameter>, "n_runs": n,
     "seed": <sweep seed>, "schema": SCHEMA_VERSION}

written as canonical JSON (sorted keys, no spaces, Python's shortest
round-trip float repr).  The file of a cell is
``<root>/<sweep>/<first 16 hex digits of sha256(key)>.nc``: an
:class:`xarray.Dataset` (dimension ``run``) written with h5netcdf to a
temporary name in the same folder, then renamed (``os.replace``, atomic on
POSIX), so a killed process never leaves a half-written cell under a real
name.

The random numbers of a cell come from ``SeedSequence(cell_entropy(seed,
params))``: the sweep seed followed by four 32-bit words of the sha256 of
the canonical parameters.  They depend neither on the cell's position in
the grid (adding grid values changes no existing cell) nor on ``n_runs``
(run ``r`` uses child ``r``, so a cell with fewer runs is a prefix of the
same cell with more runs).

Each file records, as attributes, every parameter (``param_<name>``), the
key, the seed entropy, the schema version, the mdlib version, the git commit
(and whether ``mdlib/`` had uncommitted changes), the numpy / numba / scipy /
xarray versions, the CPU and wall time of the cell, the host, the date (UTC),
the executor and the *fingerprint* of the cell function (see
:func:`mdlib.sweeps.fingerprint`): a stored cell whose fingerprint differs
from the current code's was computed by code that gives different numbers,
and is reported as *stale*.

This module knows nothing about the sweeps themselves (see
:mod:`mdlib.sweeps`); it names, writes, reads and combines cells.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import numbers
import os
import socket
import subprocess
import warnings
from pathlib import Path

import numpy as np

__all__ = ["SCHEMA_VERSION", "canonical_json", "canonical_params", "cell_key", "cell_entropy", "default_root",
           "environment", "write_cell", "read_cell", "read_attrs", "check_schema", "write_manifest",
           "combine_cells", "NewerSchemaError"]

#: Version of the layout of a cell file.  It enters every key, so cells written
#: under another schema are never read as current ones.  Bump it when the
#: meaning or the layout of the stored variables changes.
SCHEMA_VERSION = 1

#: File describing a sweep folder (the sweep's definition and the schema).
MANIFEST = "sweep.json"

#: Attributes that describe where and when a cell was computed (they differ
#: between two computations of the same cell; the data variables do not).
RUN_ATTRS = ("cpu_time_s", "wall_time_s", "host", "date_utc", "executor", "n_threads")


class NewerSchemaError(RuntimeError):
    """A results folder was written by a newer version of the store."""


# ----------------------------------------------------------------------------
# keys and seeds
# ----------------------------------------------------------------------------

def canonical_params(params):
    """Parameters as a dict of plain JSON values, checked.

    Values must be ``bool``, ``int``, ``float`` (finite) or ``str``; numpy
    scalars are converted to their Python counterparts.  Integers and floats
    are kept apart (``1000`` and ``1000.0`` are different values: write grids
    with the type the cell function expects).

    Raises
    ------
    ValueError
        For a name that is not a string or a value of another type.
    """
    out = {}
    for name, value in params.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"parameter names must be non-empty strings, got {name!r}")
        if isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, numbers.Integral):
            value = int(value)
        elif isinstance(value, numbers.Real):
            value = float(value)
            if not np.isfinite(value):
                raise ValueError(f"parameter {name} must be finite, got {value}")
        elif not isinstance(value, str):
            raise ValueError(f"parameter {name} must be a bool, int, float or str, got {type(value).__name__}")
        out[name] = value
    return dict(sorted(out.items()))


def canonical_json(obj) -> str:
    """JSON with sorted keys and no spaces (floats in shortest round-trip form)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def cell_key(cell: str, params, n_runs: int, seed: int) -> tuple[str, str]:
    """The key of a cell: ``(sha256 hex digest, canonical JSON)``.

    Parameters
    ----------
    cell : str
        Name of the cell function.
    params : dict
        Every parameter of the cell (grid and fixed ones).
    n_runs : int
        Runs in the cell.
    seed : int
        The sweep's seed.

    Examples
    --------
    >>> digest, text = cell_key("sgd_exit", {"p": 1, "d": 100}, 10, 0)
    >>> text
    '{"cell":"sgd_exit","n_runs":10,"params":{"d":100,"p":1},"schema":1,"seed":0}'
    >>> len(digest)
    64
    """
    text = canonical_json({"cell": cell, "params": canonical_params(params), "n_runs": int(n_runs),
                           "seed": int(seed), "schema": SCHEMA_VERSION})
    return hashlib.sha256(text.encode()).hexdigest(), text


def cell_entropy(seed: int, params) -> tuple[int, ...]:
    """Entropy of a cell's ``SeedSequence``: the sweep seed and 4 words hashed from the parameters.

    Independent of ``n_runs``, of the cell function and of the cell's place in
    the grid.
    """
    digest = hashlib.sha256(canonical_json(canonical_params(params)).encode()).digest()
    words = np.frombuffer(digest[:16], dtype="<u4")
    return (int(seed),) + tuple(int(w) for w in words)


# ----------------------------------------------------------------------------
# where and with what
# ----------------------------------------------------------------------------

_PACKAGE_DIR = Path(__file__).resolve().parent


def default_root() -> Path:
    """The results folder: ``$MDLIB_RESULTS`` if set, else ``results/`` of the repository.

    The repository is the folder holding the ``mdlib`` package when it also
    holds ``pyproject.toml`` (a clone, used through ``PYTHONPATH`` or an
    editable install); otherwise ``./results`` of the working directory.
    """
    env = os.environ.get("MDLIB_RESULTS")
    if env:
        return Path(env)
    repo = _PACKAGE_DIR.parent
    if (repo / "pyproject.toml").is_file():
        return repo / "results"
    return Path.cwd() / "results"


def _git(*args):
    try:
        out = subprocess.run(["git", "-C", str(_PACKAGE_DIR), *args], capture_output=True, text=True,
                             timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.lru_cache(maxsize=1)
def environment() -> dict:
    """Versions of the code that computes (cached per process).

    ``git_dirty`` is 1 if ``mdlib/`` has uncommitted changes (then the commit
    alone does not identify the code), 0 if not, -1 if unknown (no git, or not
    a clone).
    """
    from importlib import metadata

    import numba
    import scipy
    import xarray

    try:
        version = metadata.version("mdlib")
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--", ".") if commit else None
    import platform

    return {
        "mdlib_version": version,
        "git_commit": commit or "unknown",
        "git_dirty": -1 if status is None else int(bool(status)),
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "numba_version": numba.__version__,
        "scipy_version": scipy.__version__,
        "xarray_version": xarray.__version__,
    }


# ----------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------

def _tmp_name(path: Path) -> Path:
    return path.parent / f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp"


def write_cell(ds, path) -> Path:
    """Write a cell atomically: to a temporary file in the same folder, fsync, then rename.

    On any error (or Ctrl-C) the temporary file is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def remove_stale_tmp(folder) -> int:
    """Remove temporary files left in ``folder`` by dead processes of this host; return their number."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    host = socket.gethostname()
    removed = 0
    for tmp in folder.glob(".*.tmp"):
        parts = tmp.name.rsplit(".", 3)  # ".<name>.nc", host, pid, "tmp"
        if len(parts) != 4 or parts[1] != host or not parts[2].isdigit():
            continue
        pid = int(parts[2])
        alive = pid == os.getpid()
        if not alive:
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except PermissionError:
                alive = True
        if not alive:
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
    return removed


def read_cell(path):
    """The Dataset of a cell file, loaded into memory (the file is closed)."""
    import xarray as xr

    return xr.load_dataset(path, engine="h5netcdf")


def read_attrs(path) -> dict:
    """The attributes of a cell file, without reading its data."""
    import h5netcdf

    with h5netcdf.File(path, "r") as f:
        return {k: _plain(v) for k, v in f.attrs.items()}


def _plain(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v.item()
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_manifest(folder, definition: dict) -> None:
    """Write ``<folder>/sweep.json`` (the sweep definition and the schema), atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"schema": SCHEMA_VERSION, "sweep": definition}, indent=1, sort_keys=True) + "\n"
    path = folder / MANIFEST
    if path.is_file() and path.read_text() == text:
        return
    tmp = _tmp_name(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def check_schema(folder) -> None:
    """Raise :class:`NewerSchemaError` if ``folder`` was written by a newer store.

    Looks at the manifest and at the ``schema_version`` of every cell file
    (their attributes only).  Nothing is modified.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    found = []
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            found.append((int(json.loads(manifest.read_text())["schema"]), manifest.name))
        except (ValueError, KeyError, TypeError) as exc:
            raise NewerSchemaError(f"{manifest} is not a sweep manifest this mdlib can read ({exc})") from exc
    for path in sorted(folder.glob("*.nc")):
        try:
            found.append((int(read_attrs(path).get("schema_version", 0)), path.name))
        except OSError:
            continue  # unreadable files are reported by status, not here
    newer = [(v, name) for v, name in found if v > SCHEMA_VERSION]
    if newer:
        v, name = max(newer)
        raise NewerSchemaError(
            f"{folder} holds results written with store schema {v} ({name}, and {len(newer) - 1} more), "
            f"newer than this mdlib's schema {SCHEMA_VERSION}: update mdlib to read or extend them "
            "(nothing was changed)")


# ----------------------------------------------------------------------------
# combining cells
# ----------------------------------------------------------------------------

def combine_cells(grid: dict, cells, datasets, attrs=None):
    """One Dataset from the cells of a Cartesian grid (missing cells are NaN).

    Parameters
    ----------
    grid : dict
        ``{name: values}``: the grid dimensions, in order.
    cells : list of dict
        The grid coordinates of each cell.
    datasets : list of Dataset or None
        The cell results (``None`` for a missing cell).  Variables with
        dimension ``run`` become ``(*grid, run)``, scalars become ``(*grid)``;
        cells with fewer runs are padded with NaN.
    attrs : dict, optional
        Attributes of the combined Dataset.

    Returns
    -------
    xarray.Dataset
        With coordinates the grid values and ``run``, and the variable
        ``n_runs`` (runs held by each cell; 0 where missing).
    """
    import xarray as xr

    names = list(grid)
    shape = tuple(len(grid[n]) for n in names)
    index = {n: {v: i for i, v in enumerate(grid[n])} for n in names}
    present = [ds for ds in datasets if ds is not None]
    max_runs = max((ds.sizes.get("run", 0) for ds in present), default=0)
    var_dims, var_attrs = {}, {}
    for ds in present:
        for v, da in ds.data_vars.items():
            if da.dims not in ((), ("run",)):
                raise ValueError(f"variable {v} has dimensions {da.dims}; a cell holds () or ('run',)")
            var_dims.setdefault(v, da.dims)
            var_attrs.setdefault(v, dict(da.attrs))
    data = {v: np.full(shape + ((max_runs,) if dims else ()), np.nan) for v, dims in var_dims.items()}
    n_runs = np.zeros(shape, dtype=np.int64)
    for cell, ds in zip(cells, datasets):
        if ds is None:
            continue
        pos = tuple(index[n][cell[n]] for n in names)
        n_runs[pos] = ds.sizes.get("run", 0)
        for v, da in ds.data_vars.items():
            values = np.asarray(da.values, dtype=float)
            if da.dims:
                data[v][pos + (slice(0, values.size),)] = values
            else:
                data[v][pos] = values
    out = xr.Dataset(
        {v: ((*names, "run") if var_dims[v] else tuple(names), data[v], var_attrs[v]) for v in data},
        coords={**{n: list(grid[n]) for n in names}, "run": np.arange(max_runs)},
        attrs=dict(attrs or {}))
    out["n_runs"] = (tuple(names), n_runs, {"long_name": "runs held by the cell (0: not computed)"})
    return out


def warn_stale(sweep: str, n_stale: int, n_cells: int, stacklevel=3):
    warnings.warn(
        f"sweep {sweep!r}: {n_stale} of {n_cells} stored cells were computed by code whose results differ "
        "from this mdlib's (their fingerprint differs: stale); see the 'status' column of the provenance "
        "table, or recompute them with `python -m mdlib.sweeps run ... --redo-stale`",
        RuntimeWarning, stacklevel=stacklevel)
