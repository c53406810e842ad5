"""Random streams of the stochastic integrators (private)."""
from __future__ import annotations

import numpy as np


def run_generators(seed, n_runs):
    """One ``numpy.random.Generator`` per run, spawned from one ``SeedSequence``.

    A run's stream then depends only on the seed and on the run's index, not
    on how many runs are integrated together.  A ``SeedSequence`` argument is
    copied before spawning (``spawn`` advances the object it is called on),
    so the same seed, int or ``SeedSequence``, always gives the same streams
    (the rule of :mod:`mdlib.sgd`).
    """
    if isinstance(seed, np.random.SeedSequence):
        ss = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    else:
        ss = np.random.SeedSequence(seed)
    return [np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(n_runs)]
