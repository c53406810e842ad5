r"""One figure style for the whole book, and the plots chapters share.

Call :func:`use_style` once at the top of a chapter.  Colours are fixed per
kind of result (SGD, exact chain, ODE, SDE, theory), so a reader learns
them once.  Every plotting function takes an ``ax`` and returns it.
"""
from __future__ import annotations

import numpy as np

from .trajectory import Trajectory

__all__ = ["use_style", "COLORS", "LABELS", "plot_risk", "plot_overlap", "plot_exit_hist", "mark_exit"]

#: colour of each kind of result (colour-blind safe, Okabe-Ito palette)
COLORS = {
    "sgd-full": "#0072B2",
    "sgd-exact": "#56B4E9",
    "ode": "#000000",
    "sde": "#E69F00",
    "theory": "#D55E00",
    "theory2": "#CC79A7",
    "other": "#009E73",
}

#: legend label of each kind of result
LABELS = {
    "sgd-full": "SGD (full $d$)",
    "sgd-exact": "SGD (exact chain)",
    "ode": "ODE ($d\\to\\infty$)",
    "sde": "SDE",
}


def use_style():
    """Set the book's matplotlib style: readable in print and on a phone."""
    import matplotlib as mpl  # (here, as pyplot below: `import mdlib` in a sweep's worker draws nothing)

    mpl.rcParams.update({
        "figure.figsize": (6.4, 4.0),
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "savefig.bbox": "tight",
        "font.size": 11,
        "axes.titlesize": 11,
        "axes.labelsize": 11,
        "legend.fontsize": 9,
        "legend.frameon": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.25,
        "lines.linewidth": 1.6,
        "figure.constrained_layout.use": True,
    })


def _color(trajectory: Trajectory, color):
    return color if color is not None else COLORS.get(trajectory.method, COLORS["other"])


def _plot_runs(ax, trajectory, y, runs, mean, color, label, alpha, **kwargs):
    """Draw ``y[r]`` (shape (n_runs, n_t)) for the selected runs and/or their mean."""
    c = _color(trajectory, color)
    label = LABELS.get(trajectory.method, trajectory.method) if label is None else label
    if isinstance(runs, str) and runs == "all":
        idx = list(range(trajectory.n_runs))
    else:
        idx = [] if runs is None else list(runs)
    if alpha is None:
        alpha = 1.0 if len(idx) <= 1 else max(0.15, 1.5 / np.sqrt(len(idx) + 1))
    for k, r in enumerate(idx):
        ax.plot(trajectory.t, y[r], color=c, alpha=alpha, lw=1.0 if mean else 1.4,
                label=label if (k == 0 and not mean) else None, **kwargs)
    if mean:
        ax.plot(trajectory.t, np.nanmean(y, axis=0), color=c, lw=2.4, label=label, **kwargs)
    ax.set_xlabel("$t = \\nu\\gamma/(pd)$")


def plot_risk(ax, trajectory: Trajectory, *, runs="all", mean=False, excess=True, color=None,
              label=None, alpha=None, logx=False, logy=True, **kwargs):
    r"""Population risk against time, one line per run (and/or the mean).

    Parameters
    ----------
    ax : matplotlib Axes
    trajectory : Trajectory
    runs : "all", None, or index array
        Which runs to draw individually (None: none).
    mean : bool
        Also draw the mean over runs (thicker line).
    excess : bool
        Plot ``R - Δ/2`` (as in Fig. 1) instead of ``R``.
    """
    y = trajectory.excess_risk if excess else trajectory.risk
    _plot_runs(ax, trajectory, y, runs, mean, color, label, alpha, **kwargs)
    ax.set_ylabel("$\\mathcal{R}(t) - \\Delta/2$" if excess else "$\\mathcal{R}(t)$")
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    return ax


def plot_overlap(ax, trajectory: Trajectory, *, kind="max_abs_m", runs="all", mean=False, color=None,
                 label=None, alpha=None, **kwargs):
    r"""An overlap against time: ``kind`` is ``"m"`` (p = 1), ``"max_abs_m"``
    (``max_j |m_j|``, App. I) or ``"offdiag_Q"`` (root mean square of the
    off-diagonal ``Q_jl``)."""
    if kind == "m":
        y = trajectory.m[..., 0]
        ylabel = "$m(t)$"
    elif kind == "max_abs_m":
        y = np.max(np.abs(trajectory.m), axis=2)
        ylabel = "$\\max_j |m_j(t)|$"
    elif kind == "offdiag_Q":
        if trajectory.Q is None:
            raise ValueError("this trajectory did not store Q")
        p = trajectory.problem.p
        off = ~np.eye(p, dtype=bool)
        y = np.sqrt(np.mean(trajectory.Q[..., off] ** 2, axis=-1)) if p > 1 else np.zeros(trajectory.risk.shape)
        ylabel = "rms$_{j\\neq l}\\, Q_{jl}(t)$"
    else:
        raise ValueError(f"kind must be 'm', 'max_abs_m' or 'offdiag_Q', got {kind!r}")
    _plot_runs(ax, trajectory, y, runs, mean, color, label, alpha, **kwargs)
    ax.set_ylabel(ylabel)
    return ax


def mark_exit(ax, times, *, color="k", label=None, **kwargs):
    """Vertical dotted lines at exit times (``inf`` entries are skipped)."""
    times = np.atleast_1d(times)
    first = True
    for t in times[np.isfinite(times)]:
        ax.axvline(t, color=color, ls=":", lw=1.0, label=label if first else None, **kwargs)
        first = False
    return ax


def plot_exit_hist(ax, samples: dict, *, bins=40, density=True):
    """Overlaid step histograms of exit times, ``samples = {label: (times, color)}``."""
    finite = [np.asarray(v[0])[np.isfinite(v[0])] for v in samples.values()]
    lo = min(x.min() for x in finite if x.size)
    hi = max(x.max() for x in finite if x.size)
    edges = np.linspace(lo, hi, bins + 1)
    for (label, (_, color)), x in zip(samples.items(), finite):
        ax.hist(x, bins=edges, density=density, histtype="step", lw=1.8, color=color, label=f"{label} ({x.size} runs)")
    ax.set_xlabel("exit time $t_{\\rm ext}$")
    ax.set_ylabel("density" if density else "count")
    return ax


def new_figure(ncols=1, nrows=1, **kwargs):
    """``plt.subplots`` with the book's sizes (width 6.4 in per 1-2 panels)."""
    w = 6.4 if ncols <= 2 else 3.3 * ncols
    h = 4.0 * nrows if ncols == 1 else 3.4 * nrows
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(w, h), squeeze=False, **kwargs)


__all__.append("new_figure")



def plot_spectra(ax, spectra: dict, *, k_se=3.0, markers=("v", "^", "s", "o", "D")):
    r"""Eigenvalues of a formula against their Monte Carlo estimates, one group of markers per matrix.

    ``spectra = {label: (formula, mc, se)}``: for each matrix (e.g. the Hessian
    at one critical point) the formula's eigenvalues and the Monte Carlo
    Rayleigh quotients along the formula's eigenvectors, with their standard
    errors, all of the same length.  The formula is drawn with open markers,
    the Monte Carlo estimates with filled markers and ``k_se``-SE error bars;
    the groups are offset slightly along the index axis.
    """
    n = len(spectra)
    offsets = np.linspace(-0.2, 0.2, n) if n > 1 else [0.0]
    for (label, (formula, mc, se)), off, mk in zip(spectra.items(), offsets, markers):
        formula, mc, se = (np.asarray(v, dtype=float) for v in (formula, mc, se))
        if not formula.shape == mc.shape == se.shape or formula.ndim != 1:
            raise ValueError(f"{label}: formula, mc and se must be 1-d arrays of the same length")
        k = np.arange(1, formula.size + 1) + off
        ax.plot(k, formula, ls="none", marker=mk, mfc="none", ms=9, color=COLORS["theory"])
        ax.errorbar(k, mc, yerr=k_se * se, ls="none", marker=mk, ms=4, color=COLORS["sgd-full"], label=label)
    ax.plot([], [], ls="none", marker="o", mfc="none", ms=9, color=COLORS["theory"], label="formula")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("eigenvalue index $k$")
    ax.legend(ncol=2)
    return ax


__all__.append("plot_spectra")


def plot_band(ax, t, y, *, color=None, label=None, q=(0.1, 0.9), alpha=0.2, **kwargs):
    """The mean over runs of ``y`` (shape ``(n_runs, n_t)``) against ``t``, over a band of quantiles ``q``.

    The band shows how far individual runs stray from the mean (by default the
    10–90 % range); ``kwargs`` go to the mean's line.
    """
    y = np.asarray(y, dtype=float)
    t = np.asarray(t, dtype=float)
    if y.ndim != 2 or y.shape[1] != t.size:
        raise ValueError(f"y must have shape (n_runs, {t.size}), got {y.shape}")
    lo, hi = np.nanquantile(y, q, axis=0)
    line, = ax.plot(t, np.nanmean(y, axis=0), color=color, label=label, **{"lw": 2.0, **kwargs})
    ax.fill_between(t, lo, hi, color=line.get_color(), alpha=alpha, lw=0)
    return ax


__all__.append("plot_band")


def plot_runs_and_exits(axes, trajectories, exit_times, *, marks=(), bins=40, t_min=1e-2):
    r"""The paper's Figures 1 and 3 with their statistics: runs from one start, and the law of their exit times.

    Left (``axes[0]``): the excess risk of every run of each trajectory
    (SGD, SDE, the ODE, ... coloured by method) against time on a
    logarithmic axis from ``t_min``.  Right (``axes[1]``): step histograms of
    the exit times of many runs from the same start, ``exit_times = {kind:
    times}`` with ``kind`` a key of :data:`COLORS` and :data:`LABELS`, and
    vertical lines at reference times, ``marks = [(time, label, color,
    linestyle), ...]`` (the ODE's exit time, a theory's mean).  The time axis
    of the histograms ends at the 99.5 % quantile of the pooled exit times.

    Returns
    -------
    axes
    """
    left, right = axes[0], axes[1]
    for tr in trajectories:
        plot_risk(left, tr, logx=True)
    left.set_xlim(t_min, max(tr.t[-1] for tr in trajectories))
    left.legend(loc="lower left", fontsize=8)
    plot_exit_hist(right, {LABELS.get(k, k): (np.asarray(v), COLORS.get(k, COLORS["other"]))
                           for k, v in exit_times.items()}, bins=bins)
    for t, label, color, ls in marks:
        right.axvline(t, color=color, ls=ls, lw=2, label=label)
    pooled = np.concatenate([np.asarray(v, dtype=float) for v in exit_times.values()])
    pooled = pooled[np.isfinite(pooled)]
    right.set_xlim(0.9 * pooled.min(), np.quantile(pooled, 0.995))
    right.legend(loc="upper right", fontsize=8)
    return axes


def plot_estimates(ax, x, estimates, *, spread=1.07, markers="os^D", capsize=3):
    r"""Estimates with standard-error bars of several methods at the same ``x``, side by side on a log axis.

    ``estimates = {kind: (mean, se)}`` (arrays of the length of ``x``;
    ``kind`` a key of :data:`COLORS` and :data:`LABELS`); method ``k`` of
    ``n`` is drawn at ``x * spread**(k - (n - 1)/2)`` so that the bars do not
    overlap, and the x axis is made logarithmic.

    Returns
    -------
    ax
    """
    x = np.asarray(x, dtype=float)
    n = len(estimates)
    for k, (kind, (mean, se)) in enumerate(estimates.items()):
        mean, se = np.asarray(mean, dtype=float), np.asarray(se, dtype=float)
        if mean.shape != x.shape or se.shape != x.shape:
            raise ValueError(f"{kind}: mean and se must have the shape of x, {x.shape}")
        ax.errorbar(x * spread ** (k - (n - 1) / 2), mean, yerr=se, fmt=markers[k % len(markers)], capsize=capsize,
                    color=COLORS.get(kind, COLORS["other"]), label=LABELS.get(kind, kind))
    ax.set_xscale("log")
    return ax


__all__ += ["plot_runs_and_exits", "plot_estimates"]
