"""mdlib: numerics for "Escaping mediocrity" (Arnaboldi, Krzakala, Loureiro, Stephan).

Public names are re-exported here; chapters import only these (``import mdlib``,
then ``mdlib.<name>``; the App. H geometry as ``mdlib.landscape.<name>``).
"""
from . import diffusion, landscape, links, noise, plotting, stats
from .diffusion import DiffusionP1, dynkin_tables
from .errata import ERRATA, Erratum, errata_table, printed_hessian_eq67, printed_hessian_eq83
from .links import (
    Link,
    bagj_learning_rate,
    critical_learning_rate,
    critical_overlap,
    mediocrity_expansion,
    sample_complexity_exponent,
)
from .moments import (
    app_c_cases,
    displacement_moment_series,
    displacement_moments,
    field_covariance,
    isserlis,
    moment2,
    moment4_aabb,
    moment4_abcc,
    moment6_abccdd,
    moment_monte_carlo,
)
from .noise import exit_time_sgd_p1, noise_variances, noisy_linear_exit_time, noisy_linear_exit_time_mu0
from .ode import (
    drift_p1,
    drift_p1_monte_carlo,
    growth_rate_sensitivity,
    integrate_ode,
    jacobian_at_mediocrity,
    mediocrity_growth_rate,
    mediocrity_rates,
    ode_drift,
    ode_exit_time,
    ode_gamma_opt,
    ode_steps_to_exit,
    p1_exact_solution,
    second_layer_delay,
)
from .problem import Problem, State, make_state, random_init
from .risk import correlated_network, population_risk, population_risk_mc
from .sde import (
    finite_d_drift_correction,
    increment_covariance,
    increment_mean,
    integrate_sde,
    ito_correction_size,
    p1_covariance_eq55,
    projected_covariance,
    sde_exit_times,
)
from .sgd import sgd_exit_times, simulate_sgd
from .stats import variance_components
from .theory import (
    asymptotic_excess_risk,
    exit_time_annealed,
    exit_time_annealed_p1,
    exit_time_given_init,
    exit_time_linearized,
    exit_time_ode_p1,
    exit_time_quenched,
    exit_time_quenched_p1,
    gamma_max,
    gamma_opt,
    min_steps,
    mu_tau,
    omega_m,
    omega_q,
    ou_exit_time,
    ou_exit_time_numeric,
    ou_parameters_p1,
    overparam_gain,
    overparam_gain_finite,
    sample_mu_tau,
    second_layer_plateau,
    steps_to_exit,
)
from .trajectory import Exit, Trajectory, exit_time, time_grid

__all__ = [
    "diffusion", "landscape", "links", "noise", "plotting", "stats", "DiffusionP1", "dynkin_tables", "ERRATA",
    "Erratum", "errata_table", "printed_hessian_eq67", "printed_hessian_eq83", "Link", "bagj_learning_rate",
    "critical_learning_rate", "critical_overlap", "mediocrity_expansion", "sample_complexity_exponent",
    "displacement_moment_series",
    "displacement_moments", "field_covariance", "isserlis", "moment2", "moment4_aabb", "moment4_abcc",
    "moment6_abccdd", "exit_time_sgd_p1", "noise_variances", "noisy_linear_exit_time",
    "noisy_linear_exit_time_mu0", "drift_p1",
    "drift_p1_monte_carlo", "growth_rate_sensitivity", "integrate_ode", "jacobian_at_mediocrity",
    "mediocrity_growth_rate", "mediocrity_rates", "ode_drift", "ode_exit_time", "ode_gamma_opt",
    "ode_steps_to_exit", "p1_exact_solution", "second_layer_delay", "Problem", "State", "make_state", "random_init",
    "population_risk", "population_risk_mc", "finite_d_drift_correction", "increment_covariance", "increment_mean",
    "integrate_sde", "ito_correction_size", "p1_covariance_eq55", "projected_covariance", "sde_exit_times",
    "sgd_exit_times",
    "simulate_sgd", "variance_components", "asymptotic_excess_risk", "exit_time_annealed", "exit_time_annealed_p1",
    "exit_time_given_init", "exit_time_linearized", "exit_time_ode_p1", "exit_time_quenched",
    "exit_time_quenched_p1", "gamma_max", "gamma_opt", "min_steps", "mu_tau", "omega_m", "omega_q", "ou_exit_time",
    "ou_exit_time_numeric", "ou_parameters_p1", "overparam_gain", "overparam_gain_finite", "sample_mu_tau",
    "second_layer_plateau", "steps_to_exit", "Exit", "Trajectory", "exit_time", "time_grid"
]
__all__ += ["app_c_cases", "moment_monte_carlo", "correlated_network"]  # the setup chapter

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
