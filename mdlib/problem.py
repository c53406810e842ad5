r"""The setting of the paper and the state of the network.

Conventions used throughout the book (see the Setup chapter):

* data ``x ~ N(0, I_d / d)``, teacher ``w* in S^{d-1}(sqrt(d))``, label
  ``y = (w*·x)^2 + sqrt(Δ) z`` with ``z ~ N(0, 1)`` (paper Eq. 2);
* network ``f(x) = (1/p) Σ_j a_j (w_j·x)^2`` (Eq. 3), loss ``(f - y)^2 / 2``;
* sufficient statistics ``m = W w*/d``, ``Q = W Wᵀ/d`` (Eq. 5);
* first-layer learning rate ``γ``; second-layer learning rate ``γ/d``, i.e.
  ``a_j ← a_j - (γ/d) ∂ℓ/∂a_j`` (the scaling of App. B, which gives the
  second layer the same time scale as the first);
* time ``t = ν γ / (p d)`` after ``ν`` SGD steps.

A :class:`State` holds the sufficient statistics ``(m, Q, a)`` of a batch of
runs.  Internally it also carries *coordinates*: a lower-triangular matrix
``C`` of shape ``(p+1, p+1)`` per run whose rows are ``w*/sqrt(d)`` (row 0)
and ``w_j/sqrt(d)`` (rows 1..p) written in an orthonormal basis of a
``(p+1)``-dimensional subspace containing all of them.  ``C Cᵀ`` is the
overlap matrix ``Ω`` of Eq. 5, so the coordinates are an exact, d-free
description of the weights up to a rotation of R^d — which is all SGD on
isotropic data can depend on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._linalg import psd_cholesky
from ._validate import check_bool, check_choice, check_int, check_problem, check_real

__all__ = ["Problem", "State", "random_init", "make_state"]


@dataclass(frozen=True)
class Problem:
    """An immutable, validated description of the learning problem.

    Parameters
    ----------
    p : int
        Width of the network (number of hidden units), ``p >= 1``.
    d : int
        Input dimension, ``d > p + 1`` (so that the data has a direction
        orthogonal to all weights and the teacher).
    gamma : float
        First-layer learning rate ``γ > 0`` (Eq. 4).  The second layer, when
        trained, uses ``γ/d``.
    delta : float, default 0
        Label-noise variance ``Δ >= 0`` (Eq. 2).
    spherical : bool, default True
        Projected SGD on the sphere ``S^{d-1}(sqrt(d))`` (Eq. 20) if True,
        plain SGD (Eq. 4) otherwise.
    train_second_layer : bool, default False
        Train the second-layer weights ``a`` (App. I) or keep them fixed.

    Raises
    ------
    ValueError
        If a value is out of its domain; the message names the parameter.
    """

    p: int
    d: int
    gamma: float
    delta: float = 0.0
    spherical: bool = True
    train_second_layer: bool = False

    def __post_init__(self):
        p = check_int("p", self.p, 1)
        d = check_int("d", self.d, 1)
        if d <= p + 1:
            raise ValueError(f"d must be > p + 1 = {p + 1}, got d = {d}")
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "gamma", check_real("gamma", self.gamma, positive=True))
        object.__setattr__(self, "delta", check_real("delta", self.delta, nonnegative=True))
        object.__setattr__(self, "spherical", check_bool("spherical", self.spherical))
        object.__setattr__(
            self, "train_second_layer", check_bool("train_second_layer", self.train_second_layer)
        )

    @property
    def dt(self) -> float:
        """Time elapsed per SGD step, ``γ / (p d)`` (App. B)."""
        return self.gamma / (self.p * self.d)

    def steps(self, t: float) -> int:
        """Number of SGD steps (= samples seen) needed to reach time ``t``."""
        return int(np.ceil(t / self.dt - 1e-9))


@dataclass(frozen=True)
class State:
    """Sufficient statistics of ``n_runs`` networks (see module docstring).

    Attributes
    ----------
    m : ndarray, shape (n_runs, p)
        Overlaps with the teacher, ``m_j = w_j·w*/d``.
    Q : ndarray, shape (n_runs, p, p)
        Overlaps between hidden units, ``Q_jl = w_j·w_l/d``.
    a : ndarray, shape (n_runs, p)
        Second-layer weights.
    coords : ndarray, shape (n_runs, p + 1, p + 1)
        Lower-triangular coordinates: row 0 is ``w*/sqrt(d)``, row ``j`` is
        ``w_j/sqrt(d)``, in an orthonormal basis; ``coords @ coordsᵀ = Ω``.
    """

    m: np.ndarray
    Q: np.ndarray
    a: np.ndarray
    coords: np.ndarray = field(repr=False)

    @property
    def n_runs(self) -> int:
        return self.m.shape[0]

    @property
    def p(self) -> int:
        return self.m.shape[1]

    def run(self, i) -> State:
        """The sub-batch of runs ``i`` (an int, slice or index array)."""
        idx = np.atleast_1d(np.arange(self.n_runs)[i])
        return State(self.m[idx], self.Q[idx], self.a[idx], self.coords[idx])

    def repeat(self, n: int) -> State:
        """``n`` copies of a single-run state (e.g. many SGD runs from one start)."""
        if self.n_runs != 1:
            raise ValueError(f"repeat needs a single-run state, this one has {self.n_runs} runs")
        n = check_int("n", n, 1)
        rep = lambda x: np.repeat(x, n, axis=0)  # noqa: E731
        return State(rep(self.m), rep(self.Q), rep(self.a), rep(self.coords))

    def check_matches(self, problem: Problem) -> None:
        """Raise ValueError if this state does not fit ``problem``."""
        if self.p != problem.p:
            raise ValueError(f"init has p = {self.p} hidden units but the problem has p = {problem.p}")
        if problem.spherical and not np.allclose(np.diagonal(self.Q, axis1=1, axis2=2), 1.0, atol=1e-8):
            raise ValueError("init has Q_jj != 1 but the problem is spherical (projected SGD)")


def _stats_from_coords(C):
    """(m, Q) from coordinates, ``Ω = C Cᵀ``."""
    omega = C @ np.swapaxes(C, -1, -2)
    return omega[..., 1:, 0].copy(), omega[..., 1:, 1:].copy()


def random_init(problem: Problem, n_runs: int = 1, seed=None, a_init: str = "ones") -> State:
    r"""Random initial conditions of Eqs. 18 and 86, sampled exactly at finite d.

    In projected mode the weights are uniform on ``S^{d-1}(sqrt(d))``
    (Eq. 86); otherwise ``w_j ~ N(0, I_d)`` (Eq. 18).  The teacher is uniform
    on the same sphere.  Instead of drawing d-dimensional vectors, the
    Gram matrix of the ``p + 1`` Gaussian vectors ``(w*, w_1, ..., w_p)`` is
    drawn from its Wishart law through the Bartlett decomposition
    (``C_ii^2 ~ χ²(d - i)``, ``C_ij ~ N(0, 1)`` below the diagonal), which
    is exact and costs O(p²) whatever d.  Hence ``sqrt(d) m_j`` and
    ``sqrt(d) Q_jl`` have exactly the finite-d law of Eq. 19 (→ N(0, 1)).

    Parameters
    ----------
    problem : Problem
    n_runs : int
        Number of independent initial conditions.
    seed : int or numpy.random.SeedSequence or None
        Seed for reproducibility.
    a_init : {"ones", "bernoulli"}
        Second layer ``a_j = 1`` (paper's default) or ``a_j ~ Bernoulli(1/2)``
        (App. I).

    Returns
    -------
    State
    """
    check_problem(problem)
    n_runs = check_int("n_runs", n_runs, 1)
    check_choice("a_init", a_init, ("ones", "bernoulli"))
    p, d = problem.p, problem.d
    rng = np.random.default_rng(seed)
    n = p + 1
    C = np.zeros((n_runs, n, n))
    dof = d - np.arange(n)  # chi-square degrees of freedom on the diagonal
    C[:, np.arange(n), np.arange(n)] = np.sqrt(rng.chisquare(dof, size=(n_runs, n)))
    rows, cols = np.tril_indices(n, -1)
    C[:, rows, cols] = rng.standard_normal((n_runs, rows.size))
    norms = np.linalg.norm(C, axis=2, keepdims=True)
    if problem.spherical:
        C /= norms
    else:  # teacher on the sphere, students Gaussian: |w_j|^2/d ~ χ²_d/d
        C[:, :1] /= norms[:, :1]
        C[:, 1:] /= np.sqrt(d)
    m, Q = _stats_from_coords(C)
    if a_init == "ones":
        a = np.ones((n_runs, p))
    else:
        a = rng.integers(0, 2, size=(n_runs, p)).astype(float)
    return State(m, Q, a, C)


def make_state(problem: Problem, m, Q=None, a=None) -> State:
    """A state with given sufficient statistics (one run, or a batch).

    Parameters
    ----------
    problem : Problem
    m : array_like, shape (p,) or (n_runs, p)
        Overlaps with the teacher; a scalar is allowed when ``p = 1``.
    Q : array_like, shape (p, p) or (n_runs, p, p), optional
        Overlaps between units; default the identity (orthogonal unit-norm
        weights).
    a : array_like, shape (p,) or (n_runs, p), optional
        Second layer; default all ones.

    Raises
    ------
    ValueError
        If shapes do not match ``problem.p``, if ``Ω`` is not positive
        semi-definite, or if ``Q_jj != 1`` in spherical mode.
    """
    check_problem(problem)
    p = problem.p
    m = np.asarray(m, dtype=float)
    if m.ndim == 0:
        m = m.reshape(1)
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2 or m.shape[1] != p:
        raise ValueError(f"m must have shape (p,) or (n_runs, p) with p = {p}, got {np.shape(m)}")
    n_runs = m.shape[0]
    Q = np.eye(p) if Q is None else np.asarray(Q, dtype=float)
    if Q.ndim == 2:
        Q = np.broadcast_to(Q, (n_runs, p, p))
    if Q.shape != (n_runs, p, p):
        raise ValueError(f"Q must have shape (p, p) or (n_runs, p, p) with p = {p}, got {Q.shape}")
    if not np.allclose(Q, np.swapaxes(Q, 1, 2)):
        raise ValueError("Q must be symmetric")
    a = np.ones(p) if a is None else np.asarray(a, dtype=float)
    if a.ndim == 1:
        a = np.broadcast_to(a, (n_runs, p))
    if a.shape != (n_runs, p):
        raise ValueError(f"a must have shape (p,) or (n_runs, p) with p = {p}, got {a.shape}")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(Q)) and np.all(np.isfinite(a))):
        raise ValueError("m, Q and a must be finite")
    C = np.empty((n_runs, p + 1, p + 1))
    omega = np.empty((p + 1, p + 1))
    for r in range(n_runs):
        omega[0, 0] = 1.0
        omega[0, 1:] = omega[1:, 0] = m[r]
        omega[1:, 1:] = Q[r]
        # zero pivots (aligned weights) give zero columns; a clearly negative one is not an overlap matrix
        if psd_cholesky(omega, C[r], 1e-12, 1.0) < -1e-8:
            raise ValueError("the overlap matrix Ω = [[1, mᵀ], [m, Q]] is not positive semi-definite")
    state = State(m.copy(), np.array(Q), np.array(a), C)
    state.check_matches(problem)
    return state
