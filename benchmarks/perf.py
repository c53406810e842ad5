"""Speed of the SGD engines, as ratios measured in one run (machines are noisy).

    python benchmarks/perf.py > benchmarks/perf.txt     # Markdown tables

1. Time per step against p at d = 10^4, one thread, for the exact chain and
   full-dimensional SGD, each beside its numpy floor:
   * chain floor: a (p+1)x(p+1) matrix-vector product plus a rank-1 update
     (``lam = C @ g; C -= np.outer(u, g)``), the arithmetic any exact chain
     step must do; target: chain <= 2x floor at p = 500;
   * full floor: d standard normals, a p x d matrix-vector product and a
     rank-1 update (``x = rng.standard_normal(d); lam = W @ x;
     W -= np.outer(c, x)``);
2. ``method="auto"``: both engines where their costs cross (d close to p),
   and whether the cost model of ``mdlib.sgd`` picks the faster one (target:
   the pick within 1.3x of the faster).
3. Recording overhead: a run recorded on the default time grid against the
   same run recording nothing (``t_save=()``); target <= 1.2x.
4. The targets kept from before: full SGD within 2x of the time numpy needs
   to draw d normals, and the chain's speed-up over full SGD at (1, 3000) and
   (20, 5000).
5. ODE integration time to t = 10 at p = 1, 20, 100.

Each timing is the best of a few repetitions of the CPU time of the calling
thread (``time.thread_time``: everything runs on one thread, and CPU time is
far less sensitive than wall time to the other jobs of a shared machine); the
two sides of a ratio are measured alternately.  numpy's BLAS is limited to
one thread too.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # the floors run on one thread, like each SGD run

import datetime  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

import mdlib  # noqa: E402
from mdlib.sgd import _COST_CHAIN, _COST_CHAIN_P1, _COST_FULL, _auto_method, _ChainRun, _FullRun  # noqa: E402

D = 10_000
PS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


def best_of(fn, repeat=5):
    best = np.inf
    for _ in range(repeat):
        t0 = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t0)
    return best


def best_pair(fa, fb, repeat=5):
    """Best times of fa and fb, measured alternately."""
    ta = tb = np.inf
    for _ in range(repeat):
        ta = min(ta, best_of(fa, 1))
        tb = min(tb, best_of(fb, 1))
    return ta, tb


def pairs(fa, fb, repeat):
    """Times of fa and fb, measured alternately ``repeat`` times each."""
    ta, tb = [], []
    for _ in range(repeat):
        ta.append(best_of(fa, 1))
        tb.append(best_of(fb, 1))
    return np.array(ta), np.array(tb)


def problem(p, d):
    return mdlib.Problem(p=p, d=d, gamma=0.05 * p, delta=1e-4)


def engine(kind, p, d):
    pb = problem(p, d)
    init = mdlib.random_init(pb, 1, seed=0)
    run = kind(pb, init.coords[0], init.a[0], np.random.default_rng(0))
    run.advance(3)  # compile / warm up
    return run


def chain_floor(p, n_rep):
    n = p + 1
    rng = np.random.default_rng(0)
    C = np.tril(rng.standard_normal((n, n)))
    g = rng.standard_normal(n)

    def steps():
        for _ in range(n_rep):
            lam = C @ g
            C[...] -= np.outer(1e-9 * lam, g)

    return steps, n_rep


def full_floor(p, d, n_rep):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((p, d))

    def steps():
        for _ in range(n_rep):
            x = rng.standard_normal(d)
            lam = W @ x
            W[...] -= np.outer(1e-9 * lam, x)

    return steps, n_rep


def per_step(run, n_steps):
    return (lambda: run.advance(n_steps)), n_steps


def timed_pair(a, b, repeat=5):
    (fa, na), (fb, nb) = a, b
    ta, tb = best_pair(fa, fb, repeat)
    return ta / na, tb / nb


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            info = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
        info = {k.strip(): v.strip() for k, v in info.items()}
        cpu = f"{info['model name']} (family {info['cpu family']}, model {info['model']}; cache {info['cache size']})"
    except (OSError, KeyError):
        pass
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip() or platform.platform()
    return cpu, uname


def table_per_step():
    print(f"## 1. Time per step at d = {D}, one thread\n")
    print("| p | chain | chain floor | chain / floor | full SGD | full floor | full / floor | full / chain |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for p in PS:
        n_chain = max(100, int(4e7 / (p + 1) ** 2 / 20))
        n_full = max(10, int(2e8 / (p * D) / 20))
        chain, cfl = timed_pair(per_step(engine(_ChainRun, p, D), n_chain), chain_floor(p, min(n_chain, 4000)))
        full, ffl = timed_pair(per_step(engine(_FullRun, p, D), n_full), full_floor(p, D, n_full), repeat=3)
        rows.append((p, chain, cfl, full, ffl))
        print(f"| {p} | {chain * 1e6:.3g} µs | {cfl * 1e6:.3g} µs | {chain / cfl:.2f} | {full * 1e6:.4g} µs "
              f"| {ffl * 1e6:.4g} µs | {full / ffl:.2f} | {full / chain:,.0f}x |", flush=True)
    ratio = rows[-1][1] / rows[-1][2]
    ok = ratio <= 2.0
    print(f"\nchain / numpy floor at p = 500: {ratio:.2f} (target <= 2): {'PASS' if ok else 'FAIL'}")
    return ok


AUTO_CASES = [(1, 3), (1, 5), (1, 10), (2, 10), (2, 30), (5, 20), (5, 60), (20, 60), (20, 200), (50, 200),
              (100, 150), (100, 500), (200, 300), (200, 1000), (500, 1000), (500, 2000)]


def table_auto():
    print("\n## 2. `method=\"auto\"`: the two engines near where their costs cross\n")
    print("| (p, d) | chain | full SGD | auto picks | picked / faster (target <= 1.3) |")
    print("|---|---|---|---|---|")
    ok = True
    for p, d in AUTO_CASES:
        n_chain = max(100, int(4e6 / (p + 1) ** 2))
        n_full = max(50, int(4e6 / (p * d)))
        chain, full = timed_pair(per_step(engine(_ChainRun, p, d), n_chain), per_step(engine(_FullRun, p, d), n_full))
        pick = _auto_method(p, d)
        ratio = (chain if pick == "exact" else full) / min(chain, full)
        ok &= ratio <= 1.3
        print(f"| ({p}, {d}) | {chain * 1e9:,.0f} ns | {full * 1e9:,.0f} ns | {pick} "
              f"| {ratio:.2f} {'PASS' if ratio <= 1.3 else 'FAIL'} |", flush=True)
    print(f"\nCost model (ns per step, mdlib.sgd): chain {_COST_CHAIN_P1:.0f} at p = 1, else "
          f"{_COST_CHAIN[0]:.0f} + {_COST_CHAIN[1]:.0f} n + {_COST_CHAIN[2]:.2f} n² (n = p + 1); "
          f"full SGD {_COST_FULL[0]:.0f} + d ({_COST_FULL[1]:.0f} + {_COST_FULL[2]:.2f} p).")
    return ok


def recording_cases():
    """(label, problem, t_max, n_runs, method): the cases of the issue."""
    cases = []
    for p, d, steps, n_runs, method in [(1, 3000, None, 200, "exact"), (20, D, 6000, 10, "exact"),
                                        (500, D, 2500, 1, "exact"), (20, 5000, 6000, 1, "full"),
                                        (500, D, 250, 1, "full")]:
        pb = problem(p, d)
        t_max = 2.0 if steps is None else steps * pb.dt
        cases.append((pb, t_max, n_runs, method))
    return cases


def table_recording():
    print("\n## 3. Recording overhead: default time grid against no saves (`t_save=()`), one thread\n")
    print("Seven alternating pairs of runs; the verdict is on the ratio of the best times (the median of the "
          "pairwise ratios, beside it, shows the spread a shared machine adds).\n")
    print("| engine | (p, d) | runs × steps | saved points | no saves | recorded | overhead (target <= 1.2) "
          "| median of pairwise ratios |")
    print("|---|---|---|---|---|---|---|---|")
    ok = True
    for pb, t_max, n_runs, method in recording_cases():
        init = mdlib.random_init(pb, n_runs, seed=0)

        def sim(t_save, init=init, pb=pb, t_max=t_max, method=method):
            return mdlib.simulate_sgd(pb, init, t_max, method=method, seed=1, t_save=t_save, n_threads=1)

        n_t = sim(None).t.size  # (also compiles)
        plain, rec = pairs(lambda: sim(()), lambda: sim(None), repeat=7)
        ratio = rec.min() / plain.min()
        ok &= ratio <= 1.2
        print(f"| {'chain' if method == 'exact' else 'full SGD'} | ({pb.p}, {pb.d}) | {n_runs} × {pb.steps(t_max)} "
              f"| {n_t} | {plain.min():.3f} s | {rec.min():.3f} s | {ratio:.2f} {'PASS' if ratio <= 1.2 else 'FAIL'} "
              f"| {np.median(rec / plain):.2f} |", flush=True)
    return ok


def table_old_targets():
    print("\n## 4. Full SGD against drawing d normals; the chain's speed-up over full SGD\n")
    print("| (p, d) | numpy: d normals | full SGD / step | full / normals (target <= 2) "
          "| chain / step | chain speed-up (target) |")
    print("|---|---|---|---|---|---|")
    ok = True
    for (p, d), target in {(1, 3000): 300.0, (20, 5000): 20.0}.items():
        rng = np.random.default_rng(0)

        def normals(rng=rng, d=d):
            for _ in range(300):
                rng.standard_normal(d)

        full, floor = timed_pair(per_step(engine(_FullRun, p, d), 2000 if p == 1 else 300), (normals, 300))
        chain = timed_pair(per_step(engine(_ChainRun, p, d), 200_000 if p == 1 else 20_000), (lambda: None, 1))[0]
        good = full / floor <= 2 and full / chain >= target
        ok &= good
        print(f"| ({p}, {d}) | {floor * 1e6:.1f} µs | {full * 1e6:.1f} µs | {full / floor:.2f} "
              f"| {chain * 1e9:.0f} ns | {full / chain:,.0f}x (>= {target:.0f}x) {'PASS' if good else 'FAIL'} |")
    return ok


def table_ode():
    print("\n## 5. ODE integration to t = 10 (one initial condition)\n")
    print("| p | time |")
    print("|---|---|")
    for p in (1, 20, 100):
        pb = problem(p, D)
        init = mdlib.random_init(pb, 1, seed=0)
        mdlib.integrate_ode(pb, init, 0.1)  # warm up
        sec = best_of(lambda: mdlib.integrate_ode(pb, init, 10.0), repeat=2)
        print(f"| {p} | {sec:.3f} s |")


def main():
    cpu, uname = machine()
    print("# SGD engine benchmark\n")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{datetime.date.today().isoformat()}; {cpu}, {os.cpu_count()} cores; `{uname}`; "
          f"numpy {np.__version__}, numba {numba.__version__}; load average at the start {load:.1f}.\n")
    ok = table_per_step()
    ok &= table_auto()
    ok &= table_recording()
    ok &= table_old_targets()
    table_ode()
    print(f"\nAll targets: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
