r"""One figure style for the whole book, and the plots chapters share.

Call :func:`use_style` once at the top of a chapter.  Colours are fixed per
kind of result (SGD, exact chain, ODE, SDE, theory), so a reader learns
them once.  Every plotting function takes an ``ax`` and returns it.
"""
from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
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
    return plt.subplots(nrows, ncols, figsize=(w, h), squeeze=False, **kwargs)


__all__.append("new_figure")
