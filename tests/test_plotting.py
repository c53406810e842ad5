"""The shared plots draw what they say, with the book's labels."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mdlib  # noqa: E402
from mdlib import plotting  # noqa: E402


@pytest.fixture(scope="module")
def traj():
    pb = mdlib.Problem(p=2, d=100, gamma=0.1, delta=0.01)
    return mdlib.simulate_sgd(pb, mdlib.random_init(pb, 3, seed=0), 1.0, seed=0)


def test_runs_and_mean_are_drawn_with_the_method_colour(traj):
    plotting.use_style()
    fig, ax = plt.subplots()
    plotting.plot_risk(ax, traj, mean=True)
    assert len(ax.lines) == traj.n_runs + 1
    assert ax.lines[-1].get_color() == plotting.COLORS["sgd-exact"]
    np.testing.assert_allclose(ax.lines[-1].get_ydata(), traj.excess_risk.mean(axis=0))
    assert ax.get_yscale() == "log" and "Delta" in ax.get_ylabel()
    plt.close(fig)


def test_overlaps_and_bad_kind(traj):
    fig, ax = plt.subplots()
    plotting.plot_overlap(ax, traj, kind="max_abs_m", runs=[0])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.abs(traj.m[0]).max(axis=1))
    with pytest.raises(ValueError, match="kind"):
        plotting.plot_overlap(ax, traj, kind="Q")
    plt.close(fig)


def test_exit_marks_skip_infinite_times_and_histograms():
    fig, ax = plt.subplots()
    plotting.mark_exit(ax, [0.5, np.inf, 1.0])
    assert len(ax.lines) == 2
    plotting.plot_exit_hist(ax, {"a": (np.array([1.0, 2.0, np.inf]), "k")})
    assert "2 runs" in ax.patches[-1].get_label()
    plt.close(fig)


def test_spectra_draw_formula_and_monte_carlo_with_error_bars():
    fig, ax = plt.subplots()
    plotting.plot_spectra(ax, {"a": ([-1.0, 0.0, 2.0], [-0.9, 0.1, 2.1], [0.1, 0.1, 0.2]),
                               "b": ([1.0, 1.0, 1.0], [1.0, 1.1, 0.9], [0.05, 0.05, 0.05])})
    formula = [ln for ln in ax.lines if ln.get_marker() != "None" and ln.get_markerfacecolor() == "none"]
    np.testing.assert_allclose(formula[0].get_ydata(), [-1.0, 0.0, 2.0])
    np.testing.assert_allclose(formula[0].get_xdata(), [0.8, 1.8, 2.8])  # offset per group
    bars = ax.containers
    assert len(bars) == 2
    seg = bars[0][2][0].get_segments()[2]  # the error bar of the third eigenvalue of "a": 3 SE
    np.testing.assert_allclose([seg[0][1], seg[1][1]], [2.1 - 0.6, 2.1 + 0.6])
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["a", "b", "formula"]
    with pytest.raises(ValueError, match="same length"):
        plotting.plot_spectra(ax, {"c": ([1.0], [1.0, 2.0], [0.1])})
    plt.close(fig)


def test_band_draws_the_mean_over_the_quantiles():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 11)
    y = rng.normal(size=(50, 11)) + t
    fig, ax = plt.subplots()
    plotting.plot_band(ax, t, y, color="C3", label="runs", q=(0.25, 0.75))
    np.testing.assert_allclose(ax.lines[0].get_ydata(), y.mean(axis=0))
    assert ax.lines[0].get_label() == "runs" and ax.lines[0].get_color() == "C3"
    band = ax.collections[0].get_paths()[0].vertices  # the polygon of fill_between: lower edge, then upper
    lo, hi = np.quantile(y, [0.25, 0.75], axis=0)
    assert np.isclose(band[:, 1].min(), lo.min()) and np.isclose(band[:, 1].max(), hi.max())
    with pytest.raises(ValueError, match="n_runs"):
        plotting.plot_band(ax, t, y[:, :5])
    plt.close(fig)


def test_runs_and_exits_draw_both_panels():
    pb = mdlib.Problem(p=1, d=200, gamma=0.1, delta=1e-4)
    start = mdlib.random_init(pb, 1, seed=1)
    runs = [mdlib.simulate_sgd(pb, start.repeat(2), 3.0, seed=2), mdlib.integrate_ode(pb, start, 3.0)]
    fig, axes = plotting.new_figure(ncols=2)
    times = {"sgd-exact": np.array([0.5, 1.0, 1.5, np.inf]), "sde": np.array([0.6, 1.2])}
    plotting.plot_runs_and_exits(axes[0], runs, times, marks=[(0.8, "ODE", "k", "-")], bins=5)
    left, right = axes[0]
    assert len(left.lines) == 3 and left.get_xscale() == "log" and left.get_xlim()[0] == pytest.approx(1e-2)
    labels = [t.get_text() for t in right.get_legend().get_texts()]
    assert "SGD (exact chain) (3 runs)" in labels and "SDE (2 runs)" in labels and "ODE" in labels
    assert right.get_xlim()[0] == pytest.approx(0.45) and right.lines[0].get_xdata()[0] == 0.8
    plt.close(fig)


def test_estimates_side_by_side_on_a_log_axis():
    fig, ax = plt.subplots()
    plotting.plot_estimates(ax, [10.0, 100.0], {"sgd-exact": ([1.0, 2.0], [0.1, 0.2]), "sde": ([1.5, 2.5], [0.1, 0.1])})
    assert ax.get_xscale() == "log" and len(ax.containers) == 2
    np.testing.assert_allclose(ax.containers[0][0].get_xdata(), [10 / 1.07**0.5, 100 / 1.07**0.5])
    np.testing.assert_allclose(ax.containers[1][0].get_ydata(), [1.5, 2.5])
    assert ax.containers[1][0].get_color() == plotting.COLORS["sde"]
    with pytest.raises(ValueError, match="shape of x"):
        plotting.plot_estimates(ax, [1.0], {"sde": ([1.0, 2.0], [0.1, 0.1])})
    plt.close(fig)
