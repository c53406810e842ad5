"""mdlib: numerics for "Escaping mediocrity" (Arnaboldi, Krzakala, Loureiro, Stephan).

Public names are re-exported here; chapters import only these.
"""
from .problem import Problem, State, random_init, make_state
from .risk import population_risk
from .trajectory import Trajectory, time_grid, exit_time
from .sgd import simulate_sgd, sgd_exit_times
from . import plotting
