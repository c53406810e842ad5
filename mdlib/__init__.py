"""mdlib: numerics for "Escaping mediocrity" (Arnaboldi, Krzakala, Loureiro, Stephan).

Public names are re-exported here; chapters import only these.
"""
from .problem import Problem, State, random_init, make_state
from .risk import population_risk
from .trajectory import Trajectory, Exit, time_grid, exit_time
from .sgd import simulate_sgd, sgd_exit_times
from . import plotting
from .moments import isserlis, displacement_moments, displacement_moment_series
from .ode import ode_drift, drift_p1, integrate_ode, ode_exit_time, jacobian_at_mediocrity, mediocrity_rates
from .sde import increment_covariance, integrate_sde, ito_correction_size, finite_d_drift_correction
from .theory import (omega_m, omega_q, gamma_max, gamma_opt, asymptotic_excess_risk, sample_mu_tau,
                     exit_time_given_init, exit_time_linearized, exit_time_annealed, exit_time_quenched,
                     exit_time_annealed_p1, exit_time_quenched_p1, exit_time_ode_p1, steps_to_exit, min_steps,
                     overparam_gain, overparam_gain_finite, ou_parameters_p1, ou_exit_time,
                     ou_exit_time_numeric, ou_exit_time_mc)
from . import landscape
from .errata import ERRATA, Erratum, errata_table

# The sweeps and the result store import xarray and pandas: loaded on first use (mdlib.open_sweep, ...),
# which also lets `python -m mdlib.sweeps` run the module without importing it twice.
_LAZY = {"store": ("store", None), "sweeps": ("sweeps", None), "SWEEPS": ("sweeps", "SWEEPS"),
         "open_sweep": ("sweeps", "open_sweep"), "run_sweep": ("sweeps", "run_sweep"),
         "sweep_status": ("sweeps", "sweep_status")}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'mdlib' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    mod = importlib.import_module(f".{module}", __name__)
    return mod if attr is None else getattr(mod, attr)
