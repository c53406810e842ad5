"""CPU time of `make test` against `make book`, on equal footing, measured in one run.

    python benchmarks/make_cost.py > benchmarks/make_cost.txt      # ~25 min on 2 cores

The measure of issue 10: the CPU time (user + sys of every waited-for child process, what
``/usr/bin/time`` reports) of ``make test`` against that of ``make book``, one after the
other on the same machine; target ``make test <= 1.5 x make book``.

Both targets execute every chapter, and the chapters call the numba kernels, which numba
compiles once and caches on disk.  Whichever target runs first in a clone pays that
compilation (~50-60 s of CPU) and the second reuses it, so the order alone moves the ratio
by ~0.3.  This script therefore compares the two on equal footing, in a fresh clone of
``HEAD`` (its virtual environment built first, not timed; the numba cache in a folder of
the clone, ``NUMBA_CACHE_DIR``):

1. **cold**: numba cache and ``_build`` emptied before each target, as on a fresh clone;
2. **warm**: both right after, the kernels compiled (``make book`` still executes every
   chapter: it empties the execution cache itself).

and, for the record, the two orders in one clone from a cold cache (test then book, book
then test), which is what a naive "one after the other" measures.  The clone is removed at
the end (``--keep`` to keep it).
"""
from __future__ import annotations

import argparse
import datetime
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf import machine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.5


def timed(cmd, cwd, env, log):
    """Run ``cmd``; return (exit status, wall seconds, CPU seconds of its process tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log, "w") as out:
        status = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return status, wall, cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary clone and its logs")
    args = ap.parse_args(argv)

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix="make_cost_"))
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    nb_cache = clone / ".numba_cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(nb_cache)}

    def cold():
        shutil.rmtree(nb_cache, ignore_errors=True)
        shutil.rmtree(clone / "_build", ignore_errors=True)

    cpu, uname = machine()
    load = os.getloadavg()[0]
    print("# CPU time of `make test` against `make book`\n")
    print(f"{datetime.date.today().isoformat()}; commit {head}; {cpu}, {os.cpu_count()} cores; `{uname}`; "
          f"load average at the start {load:.1f}.\n")
    status, wall, _ = timed(["make", "venv"], clone, env, tmp / "venv.log")
    if status:
        sys.exit(f"make venv failed (exit {status}); see {tmp / 'venv.log'}")
    print(f"Fresh clone of {head}; `make venv` first ({wall:.0f} s, not counted).  CPU = user + sys of the "
          "whole process tree; each line one run, in the order shown.\n")
    print("| footing | `make test` CPU (wall) | `make book` CPU (wall) | test / book "
          f"(target <= {TARGET}) |")
    print("|---|---|---|---|")

    def pair(label, runs):
        """Time ``runs``, (target, empty the caches first?) in order; print the line, return the ratio."""
        res = {}
        for target, from_cold in runs:
            if from_cold:
                cold()
            status, wall, cpu_s = timed(["make", target], clone, env, tmp / f"{label}-{target}.log")
            if status:
                sys.exit(f"make {target} failed (exit {status}) in the {label} pair; see {tmp}")
            res[target] = (cpu_s, wall)
        ratio = res["test"][0] / res["book"][0]
        print(f"| {label} | {res['test'][0]:.0f} s ({res['test'][1]:.0f} s) | {res['book'][0]:.0f} s "
              f"({res['book'][1]:.0f} s) | {ratio:.2f} {'PASS' if ratio <= TARGET else 'FAIL'} |", flush=True)
        return ratio

    equal_footing = [pair("cold: each from an empty numba cache", [("test", True), ("book", True)]),
                     pair("warm: kernels compiled", [("test", False), ("book", False)])]
    pair("one clone, cold, test then book", [("test", True), ("book", False)])
    pair("one clone, cold, book then test", [("book", True), ("test", False)])
    print("\nThe two orders in one clone differ by who compiles the kernels; the equal-footing "
          "lines are the measure.")
    if args.keep:
        print(f"\n(clone and logs kept in {tmp})")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if max(equal_footing) <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
