"""The result store: keys, seeds, atomic writes, schema checks, combining cells."""
import json
import os

import numpy as np
import pytest
import xarray as xr

from mdlib import store

# ---------------------------------------------------------------- keys and seeds

def test_canonical_params_types_and_order():
    out = store.canonical_params({"p": np.int64(2), "gamma": np.float32(0.5), "flag": np.bool_(True), "kind": "x"})
    assert list(out) == ["flag", "gamma", "kind", "p"]
    assert type(out["p"]) is int and type(out["gamma"]) is float and type(out["flag"]) is bool
    # an int and a float are different values (grids must use the type the cell expects)
    assert store.canonical_json(store.canonical_params({"d": 1000})) != \
        store.canonical_json(store.canonical_params({"d": 1000.0}))


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": float("inf")}, {"x": [1, 2]}, {"x": None}, {3: 1}])
def test_canonical_params_rejects(bad):
    with pytest.raises(ValueError):
        store.canonical_params(bad)


def test_cell_key_is_canonical():
    k1, text = store.cell_key("sgd_exit", {"p": 1, "d": 100, "gamma": 0.1}, 10, 3)
    k2, _ = store.cell_key("sgd_exit", {"gamma": 0.1, "d": 100, "p": np.int64(1)}, 10, 3)
    assert k1 == k2 and len(k1) == 64
    assert json.loads(text) == {"cell": "sgd_exit", "params": {"d": 100, "gamma": 0.1, "p": 1}, "n_runs": 10,
                                "seed": 3, "schema": store.SCHEMA_VERSION}
    # every ingredient of the key changes it
    others = [store.cell_key("sgd_ode_exit", {"p": 1, "d": 100, "gamma": 0.1}, 10, 3),
              store.cell_key("sgd_exit", {"p": 1, "d": 101, "gamma": 0.1}, 10, 3),
              store.cell_key("sgd_exit", {"p": 1, "d": 100, "gamma": 0.1}, 11, 3),
              store.cell_key("sgd_exit", {"p": 1, "d": 100, "gamma": 0.1}, 10, 4)]
    assert len({k1} | {k for k, _ in others}) == 5


def test_cell_entropy_depends_on_seed_and_params_only():
    e = store.cell_entropy(7, {"p": 1, "d": 100})
    assert e[0] == 7 and len(e) == 5 and all(0 <= w < 2**32 for w in e[1:])
    assert e == store.cell_entropy(7, {"d": 100, "p": 1})
    assert e != store.cell_entropy(8, {"p": 1, "d": 100})
    assert e != store.cell_entropy(7, {"p": 1, "d": 101})


# ---------------------------------------------------------------- files

def _cell_ds(n=5, seed=0, **attrs):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    x[1] = np.inf
    x[2] = np.nan
    return xr.Dataset({"t_sgd": ("run", x, {"long_name": "test"}), "scalar": ((), 3.5)},
                      attrs={"schema_version": store.SCHEMA_VERSION, "key": "abc", **attrs})


def test_write_read_roundtrip_bitwise(tmp_path):
    ds = _cell_ds(seed_entropy=np.array([1, 2**32 - 1], dtype=np.int64), note="é")
    path = store.write_cell(ds, tmp_path / "sub" / "cell.nc")
    back = store.read_cell(path)
    assert np.array_equal(back.t_sgd.values, ds.t_sgd.values, equal_nan=True)
    assert back.t_sgd.values.tobytes() == ds.t_sgd.values.tobytes()
    assert back.attrs["note"] == "é" and list(back.attrs["seed_entropy"]) == [1, 2**32 - 1]
    attrs = store.read_attrs(path)
    assert attrs["key"] == "abc" and attrs["schema_version"] == store.SCHEMA_VERSION
    assert [p.name for p in path.parent.iterdir()] == ["cell.nc"]  # no temporary file left


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = store.write_cell(_cell_ds(seed=1), tmp_path / "cell.nc")
    before = path.read_bytes()
    bad = _cell_ds(seed=2, bad={"a dict": "cannot be a netCDF attribute"})
    with pytest.raises((TypeError, ValueError)):
        store.write_cell(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["cell.nc"]


def test_interrupted_write_removes_temporary(tmp_path, monkeypatch):
    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(store.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.write_cell(_cell_ds(), tmp_path / "cell.nc")
    assert list(tmp_path.iterdir()) == []


def test_remove_stale_tmp(tmp_path):
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    host = socket.gethostname()
    stale = tmp_path / f".x.nc.{host}.{dead_pid}.tmp"
    mine = tmp_path / f".y.nc.{host}.{os.getpid()}.tmp"
    other_host = tmp_path / f".z.nc.elsewhere.{dead_pid}.tmp"
    for f in (stale, mine, other_host):
        f.write_text("")
    assert store.remove_stale_tmp(tmp_path) == 1
    assert not stale.exists() and mine.exists() and other_host.exists()


# ---------------------------------------------------------------- schema

def test_newer_schema_is_refused_and_nothing_changes(tmp_path):
    folder = tmp_path / "sw"
    store.write_manifest(folder, {"name": "sw"})
    store.check_schema(folder)  # current schema: fine
    store.write_cell(_cell_ds(), folder / "a.nc")
    store.check_schema(folder)
    store.write_cell(_cell_ds(schema_version=store.SCHEMA_VERSION + 1), folder / "b.nc")
    snapshot = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(store.NewerSchemaError, match=f"schema {store.SCHEMA_VERSION + 1}.*b.nc"):
        store.check_schema(folder)
    (folder / "b.nc").unlink()
    (folder / store.MANIFEST).write_text(json.dumps({"schema": store.SCHEMA_VERSION + 5, "sweep": {}}))
    with pytest.raises(store.NewerSchemaError, match="newer than"):
        store.check_schema(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name == "a.nc"} == {"a.nc": snapshot["a.nc"]}
    store.check_schema(tmp_path / "absent")  # no folder yet: nothing to check


# ---------------------------------------------------------------- combining

def test_combine_cells_pads_and_counts():
    grid = {"p": (1, 2), "d": (10, 20, 30)}
    cells = [{"p": p, "d": d} for p in grid["p"] for d in grid["d"]]
    datasets = []
    for i, c in enumerate(cells):
        n = 2 + i
        datasets.append(None if c == {"p": 2, "d": 20} else
                        xr.Dataset({"t": ("run", np.arange(n) + 10.0 * i), "s": ((), float(i))}))
    out = store.combine_cells(grid, cells, datasets, attrs={"sweep": "x"})
    assert out.t.dims == ("p", "d", "run") and out.sizes["run"] == 7 and out.s.dims == ("p", "d")
    assert list(out.n_runs.values.ravel()) == [2, 3, 4, 5, 0, 7]
    assert np.array_equal(out.t.sel(p=1, d=20).values, [10, 11, 12, np.nan, np.nan, np.nan, np.nan], equal_nan=True)
    assert np.all(np.isnan(out.t.sel(p=2, d=20).values)) and np.isnan(out.s.sel(p=2, d=20))
    assert out.s.sel(p=2, d=30) == 5.0 and out.attrs["sweep"] == "x"


def test_environment_records_versions():
    env = store.environment()
    for key in ("mdlib_version", "git_commit", "git_dirty", "numpy_version", "numba_version", "scipy_version",
                "xarray_version", "python_version"):
        assert key in env
    assert env["git_dirty"] in (-1, 0, 1)
