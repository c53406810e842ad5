"""Speed of the engine, as ratios measured in one run (machines are noisy).

    python benchmarks/perf.py            # prints a Markdown table

Rows:
* full-dimensional SGD: time per step, and that time divided by the time
  numpy needs just to draw d standard normals (the floor of any
  full-dimensional SGD; target: within 2x);
* the exact chain: time per step and its speed-up over full SGD at the same
  (p, d) (targets: >= 300x at (1, 3000), >= 20x at (20, 5000));
* ODE integration time to t = 10 at p = 1, 20, 100.

Each timing is the best of a few repetitions.
"""
from __future__ import annotations

import time

import numpy as np

import mdlib
from mdlib.sgd import _ChainRun, _FullRun

TARGETS = {(1, 3000): 300.0, (20, 5000): 20.0}


def best_of(fn, repeat=5):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def per_step(engine, p, d, n_steps):
    pb = mdlib.Problem(p=p, d=d, gamma=0.05 * p, delta=1e-4)
    init = mdlib.random_init(pb, 1, seed=0)
    run = engine(pb, init.coords[0], init.a[0], np.random.default_rng(0))
    run.advance(10)  # compile / warm up
    return best_of(lambda: run.advance(n_steps)) / n_steps


def numpy_floor(d, n=300):
    rng = np.random.default_rng(0)

    def draw():
        for _ in range(n):
            rng.standard_normal(d)

    return best_of(draw) / n


def main():
    rows = []
    for (p, d), target in TARGETS.items():
        floor = numpy_floor(d)
        full = per_step(_FullRun, p, d, 2000 if p == 1 else 300)
        chain = per_step(_ChainRun, p, d, 200_000 if p == 1 else 20_000)
        rows.append((p, d, floor, full, chain, target))
    print("| (p, d) | numpy: d normals | full SGD / step | full / floor (target <= 2) "
          "| full steps/s | chain / step | chain steps/s | chain speed-up (target) |")
    print("|---|---|---|---|---|---|---|---|")
    for p, d, floor, full, chain, target in rows:
        print(f"| ({p}, {d}) | {floor * 1e6:.1f} µs | {full * 1e6:.1f} µs | {full / floor:.2f} "
              f"| {1 / full:,.0f} | {chain * 1e9:.0f} ns | {1 / chain:,.0f} | {full / chain:,.0f}x (>= {target:.0f}x) |")

    try:
        from mdlib import integrate_ode
    except ImportError:
        print("\n(mdlib.integrate_ode not available: ODE timings skipped)")
        return
    print("\n| p | ODE to t = 10 (one initial condition) |")
    print("|---|---|")
    for p in (1, 20, 100):
        pb = mdlib.Problem(p=p, d=10_000, gamma=0.05 * p, delta=1e-4)
        init = mdlib.random_init(pb, 1, seed=0)
        integrate_ode(pb, init, 0.1)  # warm up
        sec = best_of(lambda: integrate_ode(pb, init, 10.0), repeat=2)
        print(f"| {p} | {sec:.3f} s |")


if __name__ == "__main__":
    main()
