"""Random admissible sufficient statistics, shared by the ODE and SDE tests."""
import numpy as np


def random_state(rng, p, spherical):
    """A random admissible (m, Q, a): the Gram matrix of random vectors
    (unit norm when ``spherical``), and a random positive second layer."""
    V = rng.standard_normal((p + 1, p + 3))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    if not spherical:
        V[1:] *= rng.uniform(0.7, 1.3, (p, 1))
    G = V @ V.T
    return G[1:, 0], G[1:, 1:], rng.uniform(0.5, 1.5, p)
