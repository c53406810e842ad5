"""Calibration of ``method="auto"``'s cost model (``mdlib.sgd._COST_*``).

    python benchmarks/cost_model.py > benchmarks/cost_model.txt

Measures the time per step of the exact chain and of full SGD (one thread, CPU
time, the two alternated as in ``perf.py``) where their costs cross, d from
about p to about 10 p, and fits the two models of ``mdlib.sgd`` by least
squares on the relative error:

* chain: ``a + b n + c n²`` with n = p + 1 (a separate constant for the p = 1
  kernel);
* full SGD: ``a + d (b + c p)``.

It prints the fit beside the constants in ``mdlib.sgd`` and, for every
measured point, which engine each model picks and how much slower the pick is
than the faster engine.  Only the comparison of the two costs matters, so the
fit is what to copy into ``mdlib.sgd`` when the engines change.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import datetime  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
from perf import engine, machine, per_step, timed_pair  # noqa: E402
from scipy.optimize import least_squares  # noqa: E402

from mdlib.sgd import _COST_CHAIN, _COST_CHAIN_P1, _COST_FULL, _ChainRun, _FullRun, _step_costs  # noqa: E402

# (p, d values around where the two engines cost the same)
GRID = {1: (3, 4, 6, 10), 2: (6, 10, 15, 20, 30), 3: (8, 12, 20, 30), 5: (8, 15, 20, 30, 45),
        10: (15, 30, 45, 70), 20: (30, 50, 70, 100, 150), 50: (60, 100, 150, 250),
        100: (110, 150, 200, 300, 500), 200: (220, 300, 400, 600, 1000), 500: (520, 750, 1000, 1500, 2000)}


def measure():
    rows = []
    for p, ds in GRID.items():
        for d in ds:
            n_chain = max(200, int(4e6 / (p + 1) ** 2))
            n_full = max(50, int(4e6 / (p * d)))
            c, f = timed_pair(per_step(engine(_ChainRun, p, d), n_chain), per_step(engine(_FullRun, p, d), n_full))
            rows.append((p, d, c * 1e9, f * 1e9))
            print(f"({p}, {d}): chain {c * 1e9:.0f} ns, full {f * 1e9:.0f} ns", file=sys.stderr, flush=True)
    return np.array(rows)


def costs(p, d, x_chain, x_full):
    """Modelled (chain, full) costs at the measured points: ``mdlib.sgd._step_costs`` with the
    constants ``x_chain`` = (a, b, c, p = 1) and ``x_full`` = (a, b, c)."""
    return np.array([_step_costs(int(pi), di, x_chain[3], x_chain[:3], x_full) for pi, di in zip(p, d)]).T


def pick(chain, full):
    return np.where(chain <= full, "exact", "full")


def main():
    print("# Cost model of `method=\"auto\"`: measured and fitted\n")
    cpu, uname = machine()
    print(f"{datetime.date.today().isoformat()}; {cpu}, {os.cpu_count()} cores; `{uname}`; one thread.\n")
    rows = measure()
    p, d, c, f = rows.T
    fit_c = least_squares(lambda x: costs(p, d, x, _COST_FULL)[0] / c - 1, x0=[*_COST_CHAIN, _COST_CHAIN_P1],
                          bounds=(0, np.inf)).x
    fit_f = least_squares(lambda x: costs(p, d, fit_c, x)[1] / f - 1, x0=_COST_FULL, bounds=(0, np.inf)).x
    print("| model (ns per step) | in mdlib.sgd | fitted here |")
    print("|---|---|---|")
    print(f"| chain, p = 1 | {_COST_CHAIN_P1:.0f} | {fit_c[3]:.0f} |")
    print(f"| chain, a + b n + c n² | {_COST_CHAIN[0]:.0f} + {_COST_CHAIN[1]:.0f} n + {_COST_CHAIN[2]:.2f} n² "
          f"| {fit_c[0]:.0f} + {fit_c[1]:.0f} n + {fit_c[2]:.2f} n² |")
    print(f"| full SGD, a + d (b + c p) | {_COST_FULL[0]:.0f} + d ({_COST_FULL[1]:.1f} + {_COST_FULL[2]:.2f} p) "
          f"| {fit_f[0]:.0f} + d ({fit_f[1]:.1f} + {fit_f[2]:.2f} p) |")
    cur = pick(*costs(p, d, [*_COST_CHAIN, _COST_CHAIN_P1], _COST_FULL))
    new = pick(*costs(p, d, fit_c, fit_f))
    best = np.minimum(c, f)
    cost = {"exact": c, "full": f}
    slow_cur = np.array([cost[k][i] for i, k in enumerate(cur)]) / best
    slow_new = np.array([cost[k][i] for i, k in enumerate(new)]) / best
    print("\n| (p, d) | chain | full SGD | faster | mdlib.sgd picks | picked / faster | fit picks | picked / faster |")
    print("|---|---|---|---|---|---|---|---|")
    for i in range(len(p)):
        print(f"| ({p[i]:.0f}, {d[i]:.0f}) | {c[i]:,.0f} ns | {f[i]:,.0f} ns | {'exact' if c[i] <= f[i] else 'full'} "
              f"| {cur[i]} | {slow_cur[i]:.2f} | {new[i]} | {slow_new[i]:.2f} |")
    print(f"\nWorst pick: mdlib.sgd {slow_cur.max():.2f}x the faster engine, the fit {slow_new.max():.2f}x.")


if __name__ == "__main__":
    main()
