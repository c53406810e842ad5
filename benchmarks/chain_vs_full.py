"""The exact chain against full-dimensional SGD, in distribution (full version).

    python benchmarks/chain_vs_full.py > benchmarks/chain_vs_full.txt

For p = 1 and p = 3, projected and plain, second layer fixed and trained,
draws 1000 random initial conditions, runs both simulators from each (with
independent noise) until the exit time of Eq. 9 (risk criterion; the
max-m criterion of App. I when the second layer is trained), and compares
the two samples of exit times: two-sample Kolmogorov-Smirnov and
Anderson-Darling tests, and the difference of means in standard errors.
The fast test suite runs a 300-run version (tests/test_sgd.py).
"""
from __future__ import annotations

import time

import numpy as np
from scipy import stats

import mdlib

N_RUNS = 1000
T = 0.5
CASES = [
    dict(p=1, d=200, gamma=0.1, delta=1e-3),
    dict(p=1, d=200, gamma=0.05, delta=1e-3, spherical=False),
    dict(p=1, d=200, gamma=0.1, delta=1e-3, train_second_layer=True),
    dict(p=3, d=100, gamma=0.3, delta=1e-3),
    dict(p=3, d=100, gamma=0.15, delta=1e-3, spherical=False),
    dict(p=3, d=100, gamma=0.3, delta=1e-3, train_second_layer=True),
    dict(p=3, d=100, gamma=0.15, delta=1e-3, spherical=False, train_second_layer=True),
]


def main():
    print(f"Exit times (T = {T}) of the exact chain and of full-dimensional SGD, {N_RUNS} runs each.\n")
    print("| p | d | γ | projected | 2nd layer | criterion | chain mean ± SE | full mean ± SE "
          "| |Δmean|/SE | KS p-value | AD p-value | time chain / full |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k, kw in enumerate(CASES):
        pb = mdlib.Problem(**kw)
        crit = "max_m" if pb.train_second_layer else "risk"
        init = mdlib.random_init(pb, N_RUNS, seed=1000 + k)
        t0 = time.perf_counter()
        ec = mdlib.sgd_exit_times(pb, init, T, 200.0, method="exact", seed=2000 + k, criterion=crit)
        t1 = time.perf_counter()
        ef = mdlib.sgd_exit_times(pb, init, T, 200.0, method="full", seed=3000 + k, criterion=crit)
        t2 = time.perf_counter()
        assert np.all(np.isfinite(ec)) and np.all(np.isfinite(ef)), "some runs did not exit"
        se_c, se_f = ec.std(ddof=1) / np.sqrt(N_RUNS), ef.std(ddof=1) / np.sqrt(N_RUNS)
        z = abs(ec.mean() - ef.mean()) / np.hypot(se_c, se_f)
        ks = stats.ks_2samp(ec, ef).pvalue
        ad = stats.anderson_ksamp([ec, ef], variant="midrank",
                                 method=stats.PermutationMethod(n_resamples=2000, random_state=k)).pvalue
        print(f"| {pb.p} | {pb.d} | {pb.gamma} | {pb.spherical} | {'trained' if pb.train_second_layer else 'fixed'} "
              f"| {crit} | {ec.mean():.4f} ± {se_c:.4f} | {ef.mean():.4f} ± {se_f:.4f} | {z:.2f} "
              f"| {ks:.3f} | {ad:.3f} | {t1 - t0:.1f} s / {t2 - t1:.1f} s |")


if __name__ == "__main__":
    main()
