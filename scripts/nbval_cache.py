"""pytest plugin: nbval tests each chapter once, and the book build reuses that execution.

    pytest --nbval-lax -p nbval_cache --nbval-cache _build/.jupyter_cache book/*.ipynb

nbval executes every code cell of a notebook in one kernel and fails on the first cell
that raises. With this plugin, once every cell of a notebook has passed, the notebook
with the outputs nbval received (``IPyNbCell.test_outputs``) is stored in the
jupyter-cache that the book build reads (``execute_notebooks: cache`` in
``_config.yml``). The build then finds every chapter in the cache and executes none of
them again: ``make test`` runs each chapter exactly once. ``python scripts/bookinfo.py
cache-check STAMP`` verifies that afterwards.

A notebook with a failing cell is not stored, so the build would execute it (and fail)
again; ``make test`` stops before the build when nbval fails.
"""
from __future__ import annotations

import copy
import fcntl
import time
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--nbval-cache", default=None, metavar="DIR",
                     help="store every notebook whose cells all passed, with its outputs, "
                          "in the jupyter-cache DIR (read by the book build)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not hasattr(item, "test_outputs"):  # not an nbval cell
        return
    state = item.parent.__dict__.setdefault("_nbval_cache", {"failed": False, "start": time.time()})
    if report.failed or (report.skipped and call.when == "call"):
        state["failed"] = True


def pytest_runtest_teardown(item, nextitem):
    cache_dir = item.config.getoption("--nbval-cache")
    if not cache_dir or not hasattr(item, "test_outputs"):
        return
    notebook = item.parent
    if nextitem is not None and nextitem.parent is notebook:
        return  # not the notebook's last cell yet
    state = notebook.__dict__.get("_nbval_cache", {"failed": True})
    if state["failed"]:
        return
    items = [i for i in notebook.session.items if i.parent is notebook]
    nb = copy.deepcopy(notebook.nb)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    if len(code_cells) != len(items):
        raise RuntimeError(f"nbval_cache: {notebook.fspath}: {len(items)} tested cells for "
                           f"{len(code_cells)} code cells")
    for count, (cell, it) in enumerate(zip(code_cells, items), start=1):
        cell.outputs = [copy.deepcopy(o) for o in (it.test_outputs or [])]
        cell.execution_count = count
        for out in cell.outputs:
            if out.get("output_type") == "execute_result":
                out["execution_count"] = count
    store(Path(cache_dir), Path(str(notebook.fspath)), nb, time.time() - state["start"])


def store(cache_dir: Path, path: Path, nb, seconds: float) -> None:
    """Add the executed notebook to the jupyter-cache (one writer at a time: xdist workers)."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir.parent / ".jupyter_cache.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cache = get_cache(str(cache_dir))
        cache.cache_notebook_bundle(
            CacheBundleIn(nb, str(path.resolve()), data={"execution_seconds": seconds, "executed_by": "nbval"}),
            check_validity=False, overwrite=True,
        )
