"""Sweeps: definitions, cell functions (seeding contract), fingerprints, executors, CLI, errors."""
import os
import signal
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

import mdlib
from mdlib import store, sweeps
from mdlib.sweeps import RunsBy, Scale, Sweep

REPO = Path(__file__).resolve().parents[1]
P1 = dict(p=1, d=200, gamma=0.1, delta=1e-4, T=0.01, efolds=30.0)
ODE_TOL = dict(ode_rtol=1e-6, ode_atol=1e-10)


def cli(*args, timeout=600):
    """Run ``python -m mdlib.sweeps ARGS`` with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "mdlib.sweeps", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO)


def data_vars(folder):
    """{file name: {variable: values}} of every cell file of a folder."""
    return {p.name: {v: da.values for v, da in store.read_cell(p).data_vars.items()}
            for p in sorted(Path(folder).glob("*.nc"))}


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def tiny_sweep(name="tiny", runs=3, **kw):
    grid = kw.pop("grid", dict(p=(1, 2), d=(30, 50)))
    return Sweep(name=name, description="test", cell="sgd_ode_exit",
                 fixed=dict(gamma_over_p=0.05, delta=1e-4, T=0.01, efolds=30.0, **ODE_TOL),
                 scales={"book": Scale(grid=grid, runs=runs), "paper": Scale(grid=grid, runs=runs)}, seed=5, **kw)


# ============================================================================ definitions

def test_paper_scale_counts_of_the_issue():
    width = {(c.params["p"], c.params["d"]): c for c in sweeps.SWEEPS["width"].cells("paper")}
    assert sorted({p for p, _ in width}) == [1, 2, 5, 10, 20, 50, 100, 200, 500]
    assert sorted({d for _, d in width}) == [1000, 2000, 5000, 10000]
    assert all(c.n_runs >= (64 if p <= 200 else 16) for (p, _), c in width.items())
    assert all(c.params["gamma_over_p"] == 0.05 and c.params["delta"] == 1e-4 and c.params["T"] == 0.01
               for c in width.values())
    assert max(c.params["p"] for c in sweeps.SWEEPS["width"].cells("book")) == 20

    exd = sweeps.SWEEPS["exit_vs_d"].cells("paper")
    assert [c.params["d"] for c in exd] == [round(10 ** (k / 2)) for k in range(4, 15)]
    for c in exd:
        d, n = c.params["d"], c.n_runs
        assert n >= (1000 if d <= 10**5 else 400 if d <= 10**6 else 100)
        assert c.params["p"] == 1 and c.params["gamma"] == 0.1 and c.params["start"] == "random"
    assert max(c.params["d"] for c in sweeps.SWEEPS["exit_vs_d"].cells("book")) == 10**5

    sto = sweeps.SWEEPS["stochasticity_d"].cells("paper")
    assert {(c.params["d"], c.params["start"]) for c in sto} == {
        (10**k, s) for k in range(3, 7) for s in ("fixed", "random")}
    assert all(c.n_runs >= 400 for c in sto)


def test_fixed_start_is_the_stochasticity_chapters():
    pb = mdlib.Problem(1, 3000, 0.1, 1e-4)  # d, gamma, delta, init_seed = 0 of book/stochasticity.md
    z0 = float(np.sqrt(3000) * mdlib.random_init(pb, 1, seed=0).m[0, 0])
    assert z0 == sweeps.Z0_STOCHASTICITY


def test_keys_unique_and_book_cells_are_paper_cells_with_fewer_runs():
    for s in sweeps.SWEEPS.values():
        for scale in ("book", "paper"):
            cells = s.cells(scale)
            assert len({c.key[:16] for c in cells}) == len(cells)
        paper = {tuple(sorted(c.params.items())): c for c in s.cells("paper")}
        for c in s.cells("book"):
            twin = paper.get(tuple(sorted(c.params.items())))
            if twin is not None:  # same seed entropy; the book cell is a prefix of the paper cell
                assert c.entropy == twin.entropy and c.n_runs <= twin.n_runs


def test_adding_grid_values_changes_no_existing_cell():
    a, b = tiny_sweep(grid=dict(p=(1, 2), d=(30, 50))), tiny_sweep(grid=dict(p=(1, 2, 3), d=(20, 30, 50)))
    keys_b = {c.key: c.entropy for c in b.cells("book")}
    for c in a.cells("book"):
        assert keys_b[c.key] == c.entropy


def test_definitions_are_validated():
    with pytest.raises(ValueError, match="takes no parameter"):
        tiny_sweep(grid=dict(p=(1,), d=(30,), typo=(1,)))
    with pytest.raises(ValueError, match="unknown cell function"):
        Sweep("x", "", "nope", {}, {"book": Scale({}, 1), "paper": Scale({}, 1)}, 0)
    with pytest.raises(ValueError, match="distinct"):
        tiny_sweep(grid=dict(p=(1, 1), d=(30,)))
    with pytest.raises(ValueError, match="increasing"):
        RunsBy("d", ((10, 5), (5, 3)))
    runs = RunsBy("d", ((100, 8), (1000, 4)))
    assert (runs({"d": 100}), runs({"d": 101}), str(runs)) == (8, 4, "8 if d <= 100; 4 if d <= 1000")
    with pytest.raises(sweeps.SweepError, match="no run count"):
        runs({"d": 1001})


# ============================================================================ cell functions

def test_run_r_follows_the_documented_seeding():
    """Run r: child r of SeedSequence(entropy), split into (start, SGD noise)."""
    entropy = store.cell_entropy(9, P1)
    ds = sweeps.sgd_exit(np.random.SeedSequence(entropy), 4, **P1)
    s_start, s_noise = np.random.SeedSequence(entropy).spawn(4)[2].spawn(2)
    pb = mdlib.Problem(1, 200, 0.1, 1e-4)
    init = mdlib.random_init(pb, 1, seed=s_start)
    t_max = 30.0 / mdlib.omega_m(1, 0.1, 1e-4)
    assert ds.t_sgd.values[2] == mdlib.sgd_exit_times(pb, init, 0.01, t_max, seed=s_noise)[0]
    assert ds.mu0.values[2] == 200 * init.m[0, 0] ** 2 and ds.tau0.values[2] == 0.0
    assert ds.t_ode.values[2] == mdlib.exit_time_ode_p1(init.m[0, 0], 0.1, 1e-4, 0.01)


@pytest.mark.parametrize("cell,params", [
    ("sgd_ode_exit", dict(P1, **ODE_TOL)),
    ("sgd_ode_exit", dict(p=3, d=60, gamma_over_p=0.05, delta=1e-4, T=0.01, efolds=30.0, **ODE_TOL)),
    ("sgd_exit", dict(P1, start="random")),
    ("sgd_exit", dict(P1, start="fixed", z0=0.7)),
])
def test_prefix_property_and_thread_independence(cell, params):
    """The first k runs of a cell are bitwise the cell with n_runs = k, whatever the threads."""
    fn = sweeps.CELLS[cell]
    ss = np.random.SeedSequence(store.cell_entropy(3, params))
    small = fn(ss, 3, n_threads=1, **params)
    big = fn(ss, 5, n_threads=3, **params)
    again = fn(ss, 5, n_threads=1, **params)
    for v in small.data_vars:
        assert big[v].values[:3].tobytes() == small[v].values.tobytes(), v
        assert big[v].values.tobytes() == again[v].values.tobytes(), v
        assert np.all(np.isfinite(big[v].values)), v


def test_sgd_ode_exit_values():
    ds = sweeps.sgd_ode_exit(np.random.SeedSequence(1), 6, **dict(P1, **ODE_TOL))
    # at p = 1 the numerical ODE agrees with the closed form (the tolerance chosen for the width sweep)
    closed = mdlib.exit_time_ode_p1(np.sqrt(ds.mu0.values / 200), 0.1, 1e-4, 0.01)
    np.testing.assert_allclose(ds.t_ode.values, closed, rtol=1e-6)
    assert np.all(ds.tau0.values == 0) and ds.attrs["t_max"] == 30.0 / mdlib.omega_m(1, 0.1, 1e-4)
    # p = 3: tau0 = d sum_{j != l} Q_jl^2 of the start
    ds3 = sweeps.sgd_ode_exit(np.random.SeedSequence(1), 2, p=3, d=60, gamma_over_p=0.05, delta=1e-4, T=0.01,
                              efolds=30.0, **ODE_TOL)
    s_start, _ = np.random.SeedSequence(1).spawn(2)[1].spawn(2)
    init = mdlib.random_init(mdlib.Problem(3, 60, 0.15, 1e-4), 1, seed=s_start)
    Q = init.Q[0]
    assert np.isclose(ds3.tau0.values[1], 60 * (np.sum(Q**2) - np.sum(np.diag(Q) ** 2)), rtol=1e-12)
    assert ds3.attrs["gamma"] == 3 * 0.05  # gamma = p * gamma_over_p


def test_sgd_exit_fixed_start():
    ds = sweeps.sgd_exit(np.random.SeedSequence(2), 5, **dict(P1, start="fixed", z0=-0.5))
    assert np.allclose(ds.mu0.values, 0.25) and len(set(ds.t_ode.values)) == 1
    assert len(set(ds.t_sgd.values)) == 5  # the noise differs from run to run
    with pytest.raises(ValueError, match="fixed start needs"):
        sweeps.sgd_exit(np.random.SeedSequence(2), 2, **dict(P1, start="fixed"))
    with pytest.raises(ValueError, match="exactly one of gamma"):
        sweeps.sgd_exit(np.random.SeedSequence(2), 2, p=1, d=50, delta=0.0, T=0.01, efolds=30.0)


def test_errors_in_runs_reach_the_caller():
    def fn(r):
        if r == 3:
            raise ZeroDivisionError("run 3")
        return r

    with pytest.raises(ZeroDivisionError, match="run 3"):
        sweeps._map_runs(fn, 8, 2)
    assert sweeps._map_runs(lambda r: r * r, 5, 3) == [0, 1, 4, 9, 16]


# ============================================================================ fingerprints

def test_fingerprint_tracks_the_computed_law(monkeypatch):
    fp1, fp2 = sweeps.fingerprint("sgd_exit", "p=1"), sweeps.fingerprint("sgd_exit", "p>=2")
    sweeps.fingerprint.cache_clear()
    assert sweeps.fingerprint("sgd_exit", "p=1") == fp1  # deterministic
    assert len({fp1, fp2, sweeps.fingerprint("sgd_ode_exit", "p=1"), sweeps.fingerprint("sgd_ode_exit", "p>=2")}) == 4
    assert sweeps.family({"p": 1}) == "p=1" and sweeps.family({"p": 2}) == "p>=2"
    real = sweeps.sgd_exit_times

    def perturbed(rel, p_min=1):
        def fn(problem, *a, **k):
            return real(problem, *a, **k) * (1 + (rel if problem.p >= p_min else 0.0))
        return fn

    try:
        # last-bit noise: the same fingerprints
        sweeps.fingerprint.cache_clear()
        monkeypatch.setattr(sweeps, "sgd_exit_times", perturbed(1e-15))
        assert (sweeps.fingerprint("sgd_exit", "p=1"), sweeps.fingerprint("sgd_exit", "p>=2")) == (fp1, fp2)
        # a change of the law at p >= 2 only: p = 1 cells stay current
        sweeps.fingerprint.cache_clear()
        monkeypatch.setattr(sweeps, "sgd_exit_times", perturbed(1e-6, p_min=2))
        assert sweeps.fingerprint("sgd_exit", "p=1") == fp1 and sweeps.fingerprint("sgd_exit", "p>=2") != fp2
        # a change of the law at p = 1
        sweeps.fingerprint.cache_clear()
        monkeypatch.setattr(sweeps, "sgd_exit_times", perturbed(1e-6))
        assert sweeps.fingerprint("sgd_exit", "p=1") != fp1
    finally:
        monkeypatch.undo()
        sweeps.fingerprint.cache_clear()
    assert sweeps.fingerprint("sgd_exit", "p=1") == fp1


# ============================================================================ running and reading

def test_run_resume_read_and_provenance(tmp_path):
    sw = tiny_sweep()
    rep = sweeps.run_sweep(sw, root=tmp_path, workers=2, progress=False)
    assert (rep["computed"], rep["skipped"], rep["failed"]) == (4, 0, 0)
    folder = tmp_path / "tiny"
    first = data_vars(folder)
    assert len(first) == 4 and (folder / store.MANIFEST).is_file()
    # resumable: finished cells are skipped; a lost cell is recomputed, bitwise the same
    assert sweeps.run_sweep(sw, root=tmp_path, progress=False)["computed"] == 0
    lost = sw.cells("book")[1].filename
    (folder / lost).unlink()
    rep = sweeps.run_sweep(sw, root=tmp_path, workers=1, progress=False)
    assert (rep["computed"], rep["skipped"]) == (1, 3)
    again = data_vars(folder)
    assert all(again[f][v].tobytes() == first[f][v].tobytes() for f in first for v in first[f])

    ds, prov = sweeps.open_sweep(sw, scale="book", root=tmp_path)
    assert ds.t_sgd.dims == ("p", "d", "run") and ds.sizes["run"] == 3
    assert list(ds.p.values) == [1, 2] and list(ds.d.values) == [30, 50]
    assert np.all(ds.n_runs.values == 3) and not ds.stale.any()
    cell = sw.cells("book")[2]  # p = 2, d = 30
    assert ds.t_sgd.sel(p=2, d=30).values.tobytes() == first[cell.filename]["t_sgd"].tobytes()
    assert list(prov["status"]) == ["finished"] * 4 and list(prov["p"]) == [1, 1, 2, 2]
    row = prov.iloc[2]
    assert row["file"] == cell.filename and row["key"] == cell.key
    assert row["fingerprint"] == sweeps.fingerprint("sgd_ode_exit", "p>=2") and row["fingerprint_family"] == "p>=2"
    for col in ("git_commit", "git_dirty", "mdlib_version", "numpy_version", "numba_version", "cpu_time_s",
                "wall_time_s", "host", "date_utc", "executor", "seed_entropy", "schema_version"):
        assert col in prov.columns, col
    assert list(row["seed_entropy"]) == list(cell.entropy) and row["executor"] == "local" and row["same_commit"]
    assert ds.attrs["git_commits"] == f"{store.environment()['git_commit'][:10]} (4 cells)"
    attrs = store.read_attrs(folder / cell.filename)
    assert attrs["param_p"] == 2 and attrs["param_gamma_over_p"] == 0.05 and attrs["n_runs"] == 3
    # the engine that method="auto" ran, not only the method's name
    assert (attrs["sgd_method"], attrs["sgd_engine"]) == ("auto", "exact") and row["sgd_engine"] == "exact"


def test_a_cell_records_the_engine_auto_picked():
    """At (p, d) = (5, 8) the cost model picks full SGD: the cell says so."""
    ds = sweeps.sgd_exit(np.random.SeedSequence(0), 2, p=5, d=8, gamma_over_p=0.05, delta=1e-4, T=0.01,
                         efolds=5.0)
    assert (ds.attrs["sgd_method"], ds.attrs["sgd_engine"]) == ("auto", "full")


def test_missing_cells_and_run_counts_per_cell(tmp_path):
    sw = tiny_sweep(runs=RunsBy("d", ((30, 2), (50, 4))))
    sweeps.run_sweep(sw, root=tmp_path, progress=False)
    (tmp_path / "tiny" / sw.cells("book")[3].filename).unlink()  # p = 2, d = 50
    ds, prov = sweeps.open_sweep(sw, scale="book", root=tmp_path)
    assert ds.n_runs.values.tolist() == [[2, 4], [2, 0]]
    assert np.all(np.isnan(ds.t_sgd.sel(p=1, d=30).values[2:])) and np.all(np.isfinite(ds.t_sgd.sel(p=1, d=50)))
    assert np.all(np.isnan(ds.t_sgd.sel(p=2, d=50)))
    assert list(prov["status"]) == ["finished", "finished", "finished", "missing"]


def test_stale_cells_are_reported_never_silently_mixed(tmp_path):
    sw = tiny_sweep()
    sweeps.run_sweep(sw, root=tmp_path, progress=False)
    folder = tmp_path / "tiny"
    cell = sw.cells("book")[0]
    ds = store.read_cell(folder / cell.filename)
    ds.attrs["fingerprint"] = "0000000000000000"  # as if computed by code with another law
    ds["t_sgd"] = ds.t_sgd * 2
    store.write_cell(ds, folder / cell.filename)

    prov = sweeps.sweep_status(sw, "book", tmp_path)
    assert list(prov["status"]) == ["stale", "finished", "finished", "finished"]
    with pytest.warns(RuntimeWarning, match="1 of 4 stored cells .* stale"):
        ds_w, _ = sweeps.open_sweep(sw, scale="book", root=tmp_path)
    assert ds_w.stale.values.tolist() == [[True, False], [False, False]]
    ds_d, _ = sweeps.open_sweep(sw, scale="book", root=tmp_path, stale="drop")
    assert np.all(np.isnan(ds_d.t_sgd.sel(p=1, d=30))) and ds_d.n_runs.sel(p=1, d=30) == 0
    with pytest.raises(RuntimeError, match="stale"):
        sweeps.open_sweep(sw, scale="book", root=tmp_path, stale="raise")
    # run keeps stale cells unless asked; --redo-stale recomputes them
    assert sweeps.run_sweep(sw, root=tmp_path, progress=False)["stale_kept"] == 1
    assert store.read_attrs(folder / cell.filename)["fingerprint"] == "0000000000000000"
    rep = sweeps.run_sweep(sw, root=tmp_path, redo_stale=True, progress=False)
    assert rep["computed"] == 1
    assert list(sweeps.sweep_status(sw, "book", tmp_path)["status"]) == ["finished"] * 4


def test_failing_cell_is_reported_and_the_others_stored(tmp_path):
    sw = tiny_sweep(grid=dict(p=(1, 2), d=(3, 30)))  # d = 3 is too small for p = 2 (d > p + 1)
    rep = sweeps.run_sweep(sw, root=tmp_path, progress=False)
    assert (rep["computed"], rep["failed"]) == (3, 1)
    assert list(sweeps.sweep_status(sw, "book", tmp_path)["status"]) == ["finished", "finished", "missing",
                                                                         "finished"]


# ============================================================================ errors

def test_api_errors(tmp_path):
    with pytest.raises(sweeps.SweepError, match="unknown sweep 'nope'; the sweeps are demo"):
        sweeps.run_sweep("nope", root=tmp_path)
    with pytest.raises(sweeps.SweepError, match="unknown scale 'huge'"):
        sweeps.run_sweep("demo", scale="huge", root=tmp_path)
    with pytest.raises(sweeps.SweepError, match="unknown executor"):
        sweeps.run_sweep("demo", executor="mpi", root=tmp_path)
    for bad in (0, -2, 1.5, "2"):
        with pytest.raises(sweeps.SweepError, match="workers"):
            sweeps.run_sweep("demo", workers=bad, root=tmp_path)
    with pytest.raises(sweeps.SweepError, match="--scheduler needs --executor dask"):
        sweeps.run_sweep("demo", scheduler="tcp://127.0.0.1:1", root=tmp_path)
    assert not (tmp_path / "demo").exists()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_unreachable_scheduler_and_newer_schema_lose_nothing(tmp_path):
    sw = tiny_sweep()
    sweeps.run_sweep(sw, root=tmp_path, progress=False)
    (tmp_path / "tiny" / sw.cells("book")[0].filename).unlink()  # one cell left to compute
    before = snapshot(tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(sweeps.SchedulerUnreachable, match="cannot reach the Dask scheduler"):
        sweeps.run_sweep(sw, root=tmp_path, executor="dask", scheduler=f"tcp://127.0.0.1:{_free_port()}",
                         connect_timeout=2, progress=False)
    assert time.perf_counter() - t0 < 60
    assert snapshot(tmp_path) == before

    newer = store.read_cell(tmp_path / "tiny" / sw.cells("book")[1].filename)
    newer.attrs["schema_version"] = store.SCHEMA_VERSION + 1
    store.write_cell(newer, tmp_path / "tiny" / "from_the_future.nc")
    before = snapshot(tmp_path)
    for call in (lambda: sweeps.run_sweep(sw, root=tmp_path, progress=False),
                 lambda: sweeps.open_sweep(sw, "book", root=tmp_path),
                 lambda: sweeps.sweep_status(sw, "book", root=tmp_path)):
        with pytest.raises(store.NewerSchemaError, match="update mdlib"):
            call()
    assert snapshot(tmp_path) == before


def cli_here(capsys, *args):
    """``python -m mdlib.sweeps ARGS`` in this process (``sweeps.main``, the code the module runs):
    ``(exit status, stdout, stderr)``.  A subprocess would add only the interpreter's start."""
    capsys.readouterr()
    try:
        status = sweeps.main(list(args))
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.slow
def test_cli_errors(tmp_path, capsys):
    res = str(tmp_path)
    cases = [(("run", "nope", "--results", res), "unknown sweep 'nope'"),
             (("run", "demo", "--scale", "huge", "--results", res), "unknown scale 'huge'"),
             (("run", "demo", "--workers", "0", "--results", res), "workers must be >= 1"),
             (("run", "demo", "--workers", "two", "--results", res), "--workers must be a positive integer"),
             (("run", "demo", "--executor", "mpi", "--results", res), "unknown executor 'mpi'"),
             (("status", "nope", "--results", res), "unknown sweep"),
             (("run", "demo", "--executor", "dask", "--scheduler", f"tcp://127.0.0.1:{_free_port()}",
               "--connect-timeout", "2", "--results", res), "cannot reach the Dask scheduler")]
    for args, message in cases:
        status, _, err = cli_here(capsys, *args)
        assert status == 2, (args, err)
        assert message in err, (args, err)
        assert "Traceback" not in err
    assert not (tmp_path / "demo").exists()
    status, out, _ = cli_here(capsys, "list")
    assert status == 0 and "exit_vs_d" in out and "width" in out
    status, out, _ = cli_here(capsys, "show", "width", "--cells")
    assert status == 0 and "64 if p <= 200; 16 if p <= 500" in out
    assert '"cell": "sgd_ode_exit"' in out


@pytest.mark.slow
def test_the_module_runs_from_the_shell(tmp_path):
    """``python -m mdlib.sweeps``: its exit status reaches the shell (0, 2 on a bad name), errors
    are one line, not a traceback."""
    out = cli("list")
    assert out.returncode == 0 and "exit_vs_d" in out.stdout, out.stderr
    out = cli("run", "nope", "--results", str(tmp_path))
    assert out.returncode == 2 and "error: unknown sweep 'nope'" in out.stderr and "Traceback" not in out.stderr
    assert not list(tmp_path.iterdir())


# ============================================================================ executors (slow: subprocesses)

@pytest.mark.slow
def test_local_and_dask_executors_store_bitwise_identical_results(tmp_path, capsys):
    """`run demo --scale book` with --executor local and with --executor dask --workers 2 (a
    LocalCluster of two worker processes; both runs in this process, whose imports the cluster's
    workers do not share: the module's start from the shell is tested above)."""
    local, dask = tmp_path / "local", tmp_path / "dask"
    status, _, err = cli_here(capsys, "run", "demo", "--scale", "book", "--executor", "local",
                              "--results", str(local), "--no-progress")
    assert status == 0, err
    status, _, err = cli_here(capsys, "run", "demo", "--scale", "book", "--executor", "dask", "--workers", "2",
                              "--results", str(dask), "--no-progress")
    assert status == 0, err
    a, b = data_vars(local / "demo"), data_vars(dask / "demo")
    assert sorted(a) == sorted(b) and len(a) == len(sweeps.SWEEPS["demo"].cells("book"))
    for f in a:
        assert a[f].keys() == b[f].keys()
        for v in a[f]:
            assert a[f][v].tobytes() == b[f][v].tobytes(), (f, v)
    executors = {store.read_attrs(p)["executor"] for p in (dask / "demo").glob("*.nc")}
    assert executors == {"dask:LocalCluster"}
    status, out, _ = cli_here(capsys, "status", "demo", "--scale", "book", "--results", str(dask))
    assert status == 0 and "4 finished, 0 stale, 0 missing" in out, out


def test_a_swallowed_ctrl_c_is_not_reported_twice():
    """A KeyboardInterrupt that lands in a finalizer is printed by Python with a traceback (its
    unraisable hook); the sweep's own Ctrl-C is silenced there (its flag stops the sweep), anything
    else is still reported."""
    it = sweeps._Interrupt()
    seen = []
    it.previous_hook = seen.append
    ours, other = types.SimpleNamespace(exc_value=KeyboardInterrupt()), types.SimpleNamespace(exc_value=ValueError())
    it._unraisable(ours)  # no Ctrl-C yet: not ours, reported
    it.flag.set()
    it._unraisable(ours)
    it._unraisable(other)
    assert seen == [ours, other]
    with pytest.raises(KeyboardInterrupt):
        it.check()


def _sigint_default():
    # A process started in the background by a non-interactive shell (nohup ... &, some CI runners)
    # inherits an ignored SIGINT, and Python then keeps ignoring it: give the child the disposition
    # a terminal's foreground process has, which is what this test simulates.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "dask"])
def test_ctrl_c_stops_cleanly(tmp_path, executor):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while cells are in flight:
    exit 130 soon, finished cells kept, no partial or temporary files, no traceback.  The book-scale
    width sweep: 20 cells of 0.5 to 5 s, so cells are in flight whenever the first one is stored."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # two threads locally; one Dask worker process, which gets the SIGINT of the whole group as a
    # second one would (a two-worker cluster runs in the bitwise test above)
    workers = "2" if executor == "local" else "1"
    proc = subprocess.Popen([sys.executable, "-m", "mdlib.sweeps", "run", "width", "--scale", "book",
                             "--executor", executor, "--workers", workers, "--results", str(tmp_path), "--no-progress"],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_sigint_default)
    folder = tmp_path / "width"
    deadline = time.time() + 400
    while time.time() < deadline and len(list(folder.glob("*.nc"))) < 1 and proc.poll() is None:
        time.sleep(0.2)
    assert len(list(folder.glob("*.nc"))) >= 1 and proc.poll() is None, "no cell finished in time"
    os.killpg(proc.pid, signal.SIGINT)
    t0 = time.time()
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert time.time() - t0 < 60
    assert "interrupted" in err and "Traceback" not in err, err
    names = [p.name for p in folder.iterdir()]
    assert not [n for n in names if n.endswith(".tmp")]
    stored = sorted(folder.glob("*.nc"))
    cells = sweeps.SWEEPS["width"].cells("book")
    assert 1 <= len(stored) < len(cells)
    keys = {c.filename: c.key for c in cells}
    for p in stored:
        assert store.read_attrs(p)["key"] == keys[p.name]
        assert np.all(np.isfinite(store.read_cell(p).t_sgd.values))
