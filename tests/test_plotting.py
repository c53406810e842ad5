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
