r"""Leading stochastic correction to the ODEs: the SDE of Sec. 2 and Apps. D.2, F, G.

One SGD step moves the sufficient statistics by ``dt × X`` with
``dt = γ/(p d)`` and the increment variables (``|x|² → 1``; sign
convention of :mod:`mdlib.ode`)

.. math::

    \mathcal{M}_j = -2a_j\mathcal{E}\lambda_j\lambda_\star, \quad
    \mathcal{Q}_{jl} = -2(a_j + a_l)\mathcal{E}\lambda_j\lambda_l
        + \frac{4\gamma}{p} a_j a_l \mathcal{E}^2\lambda_j\lambda_l, \quad
    \mathcal{A}_j = -\mathcal{E}\lambda_j^2 .

Over a time ``h`` (``h/dt`` steps) their sum has mean ``h E[X]`` and
covariance ``h · dt · Cov[X]``, hence the diffusion approximation of
Eq. 53,

.. math::  dX = \mathbb{E}[X]\,dt + \sqrt{\gamma/(pd)}\;\Sigma^{1/2}\,dB_t,
   \qquad \Sigma = \mathrm{Cov}[X] \quad (\text{Eq. 54}).

``Σ`` involves ``E[E^k λ_a λ_b λ_c λ_d]`` up to ``k = 4`` (twelfth-order
Gaussian moments), computed exactly by the generating-function series of
:mod:`mdlib.moments`.  The variables are ``M_j`` (``j < p``), ``𝒬_jl``
(``j <= l``, upper triangle) and, when the second layer is trained,
``A_j``; Eq. 54 lists both ``𝒬_jl`` and ``𝒬_lj``, which are equal.

Projected SGD (Eq. 20) renormalises each ``w_j``; to leading order the
projected increments are the linear image ``P X`` of the unconstrained
ones (Eqs. 30–31, 34 and App. G.2),

.. math::

    \delta m_j = \mathcal{M}_j - \tfrac{m_j}{2}\mathcal{Q}_{jj}, \qquad
    \delta Q_{jl} = \mathcal{Q}_{jl} - \tfrac{Q_{jl}}{2}(\mathcal{Q}_{jj} + \mathcal{Q}_{ll}),

so the projected SDE has drift ``P E[X]`` (= Eq. 21) and diffusion
covariance ``P Σ Pᵀ``; only ``m`` and the off-diagonal ``Q`` evolve
(``Q_jj ≡ 1``).  The second-order terms of the normalisation
(``-½ dm dQ_jj + ⅜ m dQ_jj²``, App. D.2/G.2) give an O(γ/(pd)) Itô drift,
available through ``ito_correction=True``.
"""
from __future__ import annotations

import warnings

import numba
import numpy as np

from ._layout import StateLayout
from ._linalg import psd_cholesky
from ._random import run_generators
from ._validate import check_bool, check_exit, check_init, check_problem, check_real, check_t_save
from .moments import _increment_moments, displacement_moment_series, displacement_weights, field_covariance
from .problem import Problem, State, _paper_only
from .risk import population_risk
from .trajectory import Exit, Trajectory, _em_segments, time_grid

__all__ = [
    "increment_labels",
    "increment_mean",
    "increment_covariance",
    "projected_covariance",
    "p1_covariance_eq55",
    "ito_correction",
    "ito_correction_size",
    "finite_d_drift_correction",
    "integrate_sde",
    "sde_exit_times",
]

_DIVERGENCE = 1e6


# --------------------------------------------------------------------------- #
# bookkeeping of the increment variables
# --------------------------------------------------------------------------- #
class _Spec:
    """Index tables for the numba kernels, from the shared state layout.

    The unconstrained increment variables (``M_j``, ``𝒬_jl`` for ``j <= l``,
    ``A_j``) have the layout of a plain-SGD state (``pu, pv, kind, vj, vl``;
    ``iQ[j, l]`` is the variable of ``𝒬_jl``); the state variables that
    evolve (rows, ``rkind, rj, rl``) have the layout of the problem's state,
    and ``rvar[r]`` is the variable of the same name as row ``r``.
    """

    def __init__(self, p, spherical, train):
        self.p, self.spherical, self.train = p, spherical, train
        var = StateLayout(p, False, train)
        state = StateLayout(p, spherical, train)
        self.var, self.state = var, state
        self.nv = var.n
        self.kind, self.vj, self.vl = var.kind, var.j, var.l
        self.pu, self.pv = var.j, var.l  # the pair of fields (λ_pu, λ_pv) of each variable; p is the teacher
        self.iQ = var.index_of_Q()
        self.rkind, self.rj, self.rl = state.kind, state.j, state.l
        self.nr = state.n
        self.rvar = state.position_in(var)

    def labels(self, projected):
        return (self.state if projected else self.var).labels()


# --------------------------------------------------------------------------- #
# numba kernels (allocation-free inner loops: p = 1 costs ~1 µs per run-step)
# --------------------------------------------------------------------------- #
@numba.njit(cache=True)
def _unconstrained_stats(m, Q, a, p, gamma, delta, pu, pv, kind, vj, vl,
                         omega, b, c1, c2, K, g, work, mean, cov):
    """Mean and covariance of the unconstrained increments X at one state."""
    for i in range(p):
        for j in range(p):
            omega[i, j] = Q[i, j]
        omega[i, p] = m[i]
        omega[p, i] = m[i]
        b[i] = a[i] / p
    omega[p, p] = 1.0
    b[p] = -1.0
    nv = pu.shape[0]
    for v in range(nv):
        j, l = vj[v], vl[v]
        c2[v] = 0.0
        if kind[v] == 0:
            c1[v] = -2.0 * a[j]
        elif kind[v] == 1:
            c1[v] = -2.0 * (a[j] + a[l])
            c2[v] = 4.0 * gamma / p * a[j] * a[l]
        else:
            c1[v] = -1.0
    _increment_moments(omega, b, delta, pu, pv, c1, c2, K, g, work, mean, cov)
    for v in range(nv):
        for w in range(nv):
            cov[v, w] -= mean[v] * mean[w]


@numba.njit(cache=True)
def _projection(m, Q, spherical, rkind, rj, rl, rvar, iQ, P):
    """Jacobian P of the (linearised) projection; rows = state variables,
    columns = unconstrained increment variables (``rvar[r]`` is the
    variable of the same name as row ``r``)."""
    nr = P.shape[0]
    P[:, :] = 0.0
    for r in range(nr):
        j, l = rj[r], rl[r]
        P[r, rvar[r]] = 1.0
        if spherical:
            if rkind[r] == 0:
                P[r, iQ[j, j]] -= 0.5 * m[j]
            elif rkind[r] == 1:
                P[r, iQ[j, j]] -= 0.5 * Q[j, l]
                P[r, iQ[l, l]] -= 0.5 * Q[j, l]


@numba.njit(cache=True)
def _project_moments(P, mean, cov, PC, drift, C):
    """drift = P mean, C = P cov Pᵀ (explicit loops: tiny matrices)."""
    nr, nv = P.shape
    for r in range(nr):
        acc = 0.0
        for v in range(nv):
            acc += P[r, v] * mean[v]
        drift[r] = acc
        for w in range(nv):
            acc = 0.0
            for v in range(nv):
                acc += P[r, v] * cov[v, w]
            PC[r, w] = acc
    for r in range(nr):
        for s in range(r + 1):
            acc = 0.0
            for w in range(nv):
                acc += PC[r, w] * P[s, w]
            C[r, s] = acc
            C[s, r] = acc


@numba.njit(cache=True)
def _ito(m, Q, cov, rkind, rj, rl, iQ, scale, out):
    """Itô drift of the normalisation (App. D.2, G.2), times ``scale``."""
    for r in range(rkind.shape[0]):
        j, l = rj[r], rl[r]
        if rkind[r] == 0:
            jj = iQ[j, j]
            out[r] = scale * (-0.5 * cov[j, jj] + 0.375 * m[j] * cov[jj, jj])
        elif rkind[r] == 1:
            jj, ll, jl = iQ[j, j], iQ[l, l], iQ[j, l]
            out[r] = scale * (Q[j, l] / 8.0 * (3.0 * cov[jj, jj] + 3.0 * cov[ll, ll] + 2.0 * cov[jj, ll])
                              - 0.5 * (cov[jl, jj] + cov[jl, ll]))
        else:
            out[r] = 0.0


@numba.njit(cache=True, nogil=True)
def _exit_gap(m, Q, a, p, mode, level):
    """Distance to the exit threshold, <= 0 once exited (see ``mdlib.Exit.gap``).

    mode 1: excess risk (Eq. 6 minus Δ/2) minus ``level``; mode 2:
    ``level - max_j m_j²`` (App. I).
    """
    if mode == 2:
        best = 0.0
        for j in range(p):
            best = max(best, m[j] * m[j])
        return level - best
    lin = 0.0
    tr = 0.0
    quad = 0.0
    for j in range(p):
        lin += a[j] * (Q[j, j] + 2.0 * m[j] * m[j])
        tr += a[j] * Q[j, j]
        for l in range(p):
            quad += a[j] * a[l] * Q[j, l] * Q[j, l]
    return 1.5 - lin / p + (tr * tr + 2.0 * quad) / (2.0 * p * p) - level


@numba.njit(cache=True, nogil=True)
def _sde_run(m, Q, a, rng, seg_t0, seg_steps, seg_h, seg_save, p, gamma, delta, dt_sgd, spherical, ito,
             pu, pv, kind, vj, vl, iQ, rkind, rj, rl, rvar, exit_mode, level, m_out, Q_out, a_out):
    """Euler–Maruyama integration of one run, in place, drawing from its own ``rng``.

    Segment ``s`` starts at ``seg_t0[s]`` and makes ``seg_steps[s]`` steps of
    size ``seg_h[s]``; at its end the state is saved at index ``seg_save[s]``
    of the outputs (if ``>= 0``).  With ``exit_mode`` 1 or 2 the run stops at
    the first step where :func:`_exit_gap` is <= 0, the crossing located by
    linear interpolation of the gap between the two steps.

    Returns ``(status, t)``: status 0 (ran to the end), 1 (exited at time
    ``t``) or 2 (diverged during the step ending at ``t``).
    """
    n = p + 1
    nv = pu.shape[0]
    nr = rkind.shape[0]
    omega = np.empty((n, n))
    b = np.empty(n)
    c1 = np.empty(nv)
    c2 = np.empty(nv)
    K = np.empty((5, n, n))
    g = np.empty(5)
    work = np.zeros(10)
    mean = np.empty(nv)
    cov = np.empty((nv, nv))
    P = np.empty((nr, nv))
    PC = np.empty((nr, nv))
    C = np.empty((nr, nr))
    L = np.empty((nr, nr))
    drift = np.empty(nr)
    corr = np.empty(nr)
    dx = np.empty(nr)
    xi = np.empty(nr)
    gap_old = _exit_gap(m, Q, a, p, exit_mode, level) if exit_mode > 0 else 1.0
    for s in range(seg_steps.shape[0]):
        h = seg_h[s]
        noise_scale = np.sqrt(dt_sgd * h)
        for i in range(seg_steps[s]):
            _unconstrained_stats(m, Q, a, p, gamma, delta, pu, pv, kind, vj, vl,
                                 omega, b, c1, c2, K, g, work, mean, cov)
            _projection(m, Q, spherical, rkind, rj, rl, rvar, iQ, P)
            _project_moments(P, mean, cov, PC, drift, C)
            if ito and spherical:
                _ito(m, Q, cov, rkind, rj, rl, iQ, dt_sgd, corr)
                for k in range(nr):
                    drift[k] += corr[k]
            psd_cholesky(C, L, 1e-13, 0.0)
            for k in range(nr):
                xi[k] = rng.standard_normal()
            for k in range(nr):
                acc = 0.0
                for q in range(k + 1):
                    acc += L[k, q] * xi[q]
                dx[k] = drift[k] * h + noise_scale * acc
            bad = False
            for k in range(nr):
                j, l = rj[k], rl[k]
                if rkind[k] == 0:
                    m[j] += dx[k]
                    v = m[j]
                elif rkind[k] == 1:
                    Q[j, l] += dx[k]
                    if j != l:
                        Q[l, j] = Q[j, l]
                    v = Q[j, l]
                else:
                    a[j] += dx[k]
                    v = a[j]
                if not np.isfinite(v) or abs(v) > 1e6:
                    bad = True
            t_old = seg_t0[s] + i * h
            if bad:
                return 2, t_old + h
            if exit_mode > 0:
                gap = _exit_gap(m, Q, a, p, exit_mode, level)
                if gap <= 0:
                    return 1, t_old + h * gap_old / (gap_old - gap)
                gap_old = gap
        k_out = seg_save[s]
        if k_out >= 0:
            for j in range(p):
                m_out[k_out, j] = m[j]
                a_out[k_out, j] = a[j]
                for l in range(p):
                    Q_out[k_out, j, l] = Q[j, l]
    return 0, np.inf


# --------------------------------------------------------------------------- #
# public functions
# --------------------------------------------------------------------------- #
def _as_state_arrays(problem, m, Q, a):
    p = problem.p
    m = np.asarray(m, dtype=float)
    if m.ndim == 0 and p == 1:
        m = m.reshape(1)
    if m.shape != (p,):
        raise ValueError(f"m must have shape ({p},), got {m.shape}")
    Q = np.eye(p) if Q is None else np.asarray(Q, dtype=float)
    if Q.ndim == 0 and p == 1:
        Q = Q.reshape(1, 1)
    if Q.shape != (p, p):
        raise ValueError(f"Q must have shape ({p}, {p}), got {Q.shape}")
    a = np.ones(p) if a is None else np.asarray(a, dtype=float)
    if a.ndim == 0 and p == 1:
        a = a.reshape(1)
    if a.shape != (p,):
        raise ValueError(f"a must have shape ({p},), got {a.shape}")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(Q)) and np.all(np.isfinite(a))):
        raise ValueError("m, Q and a must be finite")
    return np.ascontiguousarray(m), np.ascontiguousarray(Q), np.ascontiguousarray(a)


def _stats(problem, m, Q, a, projected):
    check_problem(problem)
    _paper_only(problem, "increment_mean/increment_covariance")
    check_bool("projected", projected)
    if projected and not problem.spherical:
        raise ValueError("projected=True needs a spherical problem (projected SGD)")
    m, Q, a = _as_state_arrays(problem, m, Q, a)
    spec = _Spec(problem.p, problem.spherical, problem.train_second_layer)
    p = problem.p
    n, nv = p + 1, spec.nv
    mean = np.empty(nv)
    cov = np.empty((nv, nv))
    _unconstrained_stats(m, Q, a, p, problem.gamma, problem.delta, spec.pu, spec.pv, spec.kind,
                         spec.vj, spec.vl, np.empty((n, n)), np.empty(n), np.empty(nv), np.empty(nv),
                         np.empty((5, n, n)), np.empty(5), np.zeros(10), mean, cov)
    if not projected:
        return spec, mean, cov, None
    P = np.empty((spec.nr, nv))
    _projection(m, Q, True, spec.rkind, spec.rj, spec.rl, spec.rvar, spec.iQ, P)
    return spec, mean, cov, P


def increment_labels(problem: Problem, projected: bool = False):
    """Names of the increment variables, in the order used by this module.

    Unconstrained: ``("m", j)`` for ``M_j``, ``("Q", j, l)`` (``j <= l``) for
    ``𝒬_jl``, ``("a", j)`` for ``A_j`` when the second layer is trained.
    Projected: ``m_j``, the off-diagonal ``Q_jl`` (``j < l``), ``a_j``.
    """
    check_problem(problem)
    _paper_only(problem, "increment_labels")
    return _Spec(problem.p, problem.spherical, problem.train_second_layer).labels(projected)


def increment_mean(problem: Problem, m, Q=None, a=None, projected: bool = False):
    r"""``E[X]`` of the per-step increment variables (= the ODE drift).

    Parameters
    ----------
    problem : Problem
    m : array_like, shape (p,)
    Q : array_like, shape (p, p), optional (default identity)
    a : array_like, shape (p,), optional (default ones)
    projected : bool
        Return the projected drift ``P E[X]`` (Eq. 21) instead of
        ``(Ψ, Φ_{j<=l}, da)`` (Eq. 17); needs a spherical problem.

    Returns
    -------
    ndarray, shape (n_var,)
        In the order of :func:`increment_labels`.
    """
    spec, mean, cov, P = _stats(problem, m, Q, a, projected)
    return mean if P is None else P @ mean


def increment_covariance(problem: Problem, m, Q=None, a=None, projected: bool = False):
    r"""Covariance Σ of the per-step increment variables (Eq. 54), exact.

    .. math::

        \Sigma_{XY} = \mathbb{E}[XY] - \mathbb{E}[X]\mathbb{E}[Y],

    with ``X, Y`` among ``M_j = -2a_j E λ_j λ*``,
    ``𝒬_jl = -2(a_j + a_l) E λ_j λ_l + (4γ/p) a_j a_l E² λ_j λ_l`` and (trained
    second layer) ``A_j = -E λ_j²``, from the exact moments
    ``E[E^k λ_a λ_b λ_c λ_d]``, ``k <= 4`` (:mod:`mdlib.moments`).

    Parameters
    ----------
    problem : Problem
    m : array_like, shape (p,)
    Q : array_like, shape (p, p), optional (default identity)
    a : array_like, shape (p,), optional (default ones)
    projected : bool
        Return ``P Σ Pᵀ``, the covariance of the projected increments
        (Eq. 34, App. G.2), instead; needs a spherical problem.

    Returns
    -------
    ndarray, shape (n_var, n_var)
        In the order of :func:`increment_labels`.  Multiply by
        ``γ/(p d)`` for the SDE's diffusion matrix per unit time.
    """
    spec, mean, cov, P = _stats(problem, m, Q, a, projected)
    return cov if P is None else P @ cov @ P.T


def projected_covariance(problem: Problem, cov, m, Q=None):
    r"""Covariance of the projected increments from a covariance of the unconstrained ones: ``P Σ Pᵀ``.

    ``P`` is the linearised projection on the sphere (Eqs. 30–31, 34,
    App. G.2), ``δm_j = 𝓜_j - (m_j/2)𝒬_jj`` and
    ``δQ_jl = 𝒬_jl - (Q_jl/2)(𝒬_jj + 𝒬_ll)``.  With the exact ``Σ`` this is
    ``increment_covariance(problem, m, Q, projected=True)``; it also projects
    another covariance, e.g. the printed Eq. 55 (:func:`p1_covariance_eq55`):
    at ``p = 1`` the variance of ``δm`` is
    ``Σ_MM - m Σ_M𝒬 + (m²/4) Σ_𝒬𝒬``.

    Parameters
    ----------
    problem : Problem
        Projected SGD.
    cov : array_like, shape (n_var, n_var)
        Covariance of the unconstrained increment variables, in the order
        of ``increment_labels(problem)``.
    m : array_like, shape (p,)
    Q : array_like, shape (p, p), optional (default identity)

    Returns
    -------
    ndarray, shape (n_state, n_state)
        In the order of ``increment_labels(problem, projected=True)``.
    """
    spec, _, _, P = _stats(problem, m, Q, None, True)
    cov = np.asarray(cov, dtype=float)
    if cov.shape != (spec.nv, spec.nv):
        raise ValueError(f"cov must have shape ({spec.nv}, {spec.nv}), got {cov.shape}")
    return P @ cov @ P.T


def p1_covariance_eq55(m, gamma, delta=0.0):
    r"""The paper's Eq. 55 (p = 1, a = 1, Q = 1), transcribed for comparison.

    Returns the 2×2 matrix of ``(Var M, Cov(M, 𝒬_11); Cov, Var 𝒬_11)`` as
    printed in App. G.3.  Compare with :func:`increment_covariance` (the
    tests show which coefficients differ).

    Parameters
    ----------
    m, gamma, delta : float

    Returns
    -------
    ndarray, shape (2, 2)
    """
    m = float(m)
    g = check_real("gamma", gamma, positive=True)
    D = check_real("delta", delta, nonnegative=True)
    var_q = (576 * g**2 * D * m**4 - 2496 * g**2 * D * m**2 - 11520 * g**2 * m**6 + 54144 * g**2 * m**4
             - 73728 * g**2 * m**2 + 544 * g * D * m**2 - 11136 * g * m**4 + 22272 * g * m**2 + 320 * m**4
             - 1600 * m**2 + 32 * g**2 * D**2 + 1920 * g**2 * D + 31104 * g**2 - 544 * g * D - 11136 * g
             + 48 * D + 1280)
    cov_mq = (72 * g * D * m**3 - 72 * g * D * m - 1440 * g * m**5 + 2880 * g * m**3 - 1440 * g * m
              + 24 * D * m - 480 * m**3 + 480 * m)
    var_m = 8 * D * m**2 - 192 * m**4 + 144 * m**2 + 4 * D + 48
    return np.array([[var_m, cov_mq], [cov_mq, var_q]])


def ito_correction(problem: Problem, m, Q=None, a=None):
    r"""The O(γ/(pd)) Itô drift of the projection (App. D.2, G.2).

    Second-order terms of ``(1 + δQ_jj)^{-1/2}``, with ``δx δy → (γ/(pd)) Σ_xy dt``:

    .. math::

        \delta m_j &\mathrel{+}= \frac{\gamma}{pd}\Big[-\tfrac12\Sigma_{\mathcal{M}_j\mathcal{Q}_{jj}}
             + \tfrac38 m_j\Sigma_{\mathcal{Q}_{jj}\mathcal{Q}_{jj}}\Big], \\
        \delta Q_{jl} &\mathrel{+}= \frac{\gamma}{pd}\Big[\tfrac{Q_{jl}}{8}\big(3\Sigma_{jj,jj}
             + 3\Sigma_{ll,ll} + 2\Sigma_{jj,ll}\big) - \tfrac12(\Sigma_{jl,jj} + \Sigma_{jl,ll})\Big].

    (App. D.2 prints ``dq² = (γ/d) σ_m²``; it is ``σ_Q²``.)  Zero for plain
    SGD, which has no projection.

    Returns
    -------
    ndarray, shape (n_state,)
        Per unit time, in the order of ``increment_labels(problem, projected=True)``
        (or of the unconstrained labels for plain SGD).
    """
    check_problem(problem)
    _paper_only(problem, "ito_correction")
    spec = _Spec(problem.p, problem.spherical, problem.train_second_layer)
    if not problem.spherical:
        return np.zeros(spec.nr)
    spec, mean, cov, P = _stats(problem, m, Q, a, True)
    m, Q, a = _as_state_arrays(problem, m, Q, a)
    out = np.empty(spec.nr)
    _ito(m, Q, cov, spec.rkind, spec.rj, spec.rl, spec.iQ, problem.dt, out)
    return out


def ito_correction_size(problem: Problem, m, Q=None, a=None) -> float:
    r"""``‖Itô correction‖ / ‖drift‖`` at one state (Euclidean norms).

    The drift is the projected ODE drift (Eq. 21).  Both vanish at exact
    mediocrity (``m = 0``, ``Q = I``), so evaluate slightly off it (e.g.
    ``m = 1/sqrt(d)``); the ratio is O(γ/(pd)).
    """
    corr = ito_correction(problem, m, Q, a)
    proj = problem.spherical
    drift = increment_mean(problem, m, Q, a, projected=proj)
    nd = np.linalg.norm(drift)
    return float(np.linalg.norm(corr) / nd) if nd > 0 else float("inf") if np.linalg.norm(corr) > 0 else 0.0


def finite_d_drift_correction(problem: Problem, m, Q=None, a=None):
    r"""The O(1/d) drift correction from ``|x|²`` at finite d (not in the paper).

    The ODE and SDE replace ``|x|²`` by 1 in the O(γ) term of ``𝒬_jl``.  At
    finite d, ``|x|² = |x_∥|² + |x_⊥|²`` with ``|x_⊥|² ~ χ²(d - r)/d``
    independent of the fields and ``|x_∥|² = λᵀΩ⁺λ/d`` (``r`` = rank of Ω,
    ``Ω⁺`` its pseudo-inverse) correlated with them, so that

    .. math::

        \mathbb{E}[|x|^2\mathcal{E}^2\lambda_j\lambda_l] = \mathbb{E}[\mathcal{E}^2\lambda_j\lambda_l]
          + \frac1d\Big(\mathbb{E}[\mathcal{E}^2\lambda_j\lambda_l\,\lambda^\top\Omega^+\lambda]
          - r\,\mathbb{E}[\mathcal{E}^2\lambda_j\lambda_l]\Big),

    which shifts ``Φ_jl`` by ``δΦ_jl = (4γ/p) a_j a_l × (1/d)(...)`` and the
    projected drift accordingly.  At p = 1, ``m → 0``, ``Δ = 0`` the growth
    rate of m moves by ``-144 γ/d`` — about ten times the Itô term of
    :func:`ito_correction` (e.g. ``-0.029`` against ``+0.003`` at d = 500,
    γ = 0.1), and what separates exact SGD from the SDE at moderate d.

    Returns
    -------
    ndarray, shape (n_state,)
        Per unit time, in the order of ``increment_labels(problem,
        projected=problem.spherical)``.
    """
    check_problem(problem)
    _paper_only(problem, "finite_d_drift_correction")
    m, Q, a = _as_state_arrays(problem, m, Q, a)
    p, d, gamma = problem.p, problem.d, problem.gamma
    omega = field_covariance(m, Q)
    m2, m4 = displacement_moment_series(omega, displacement_weights(a), problem.delta, kmax=2)
    pinv = np.linalg.pinv(omega, hermitian=True)
    rank = np.linalg.matrix_rank(omega, hermitian=True)
    excess = (np.einsum("jlab,ab->jl", m4[2], pinv) - rank * m2[2])[:p, :p] / d
    dphi = (4 * gamma / p) * np.outer(a, a) * excess
    spec = _Spec(p, problem.spherical, problem.train_second_layer)
    out = np.zeros(spec.nr)
    pd = np.diag(dphi)
    for k, (kind, j, l) in enumerate(zip(spec.rkind, spec.rj, spec.rl)):
        if kind == 0:
            out[k] = -0.5 * m[j] * pd[j] if problem.spherical else 0.0
        elif kind == 1:
            out[k] = dphi[j, l] - (0.5 * Q[j, l] * (pd[j] + pd[l]) if problem.spherical else 0.0)
    return out


def integrate_sde(problem: Problem, init: State, t_max: float, dt: float = 1e-3, seed=None, t_save=None,
                  ito_correction: bool = False, progress: bool = False, exit: Exit | None = None) -> Trajectory:
    r"""Euler–Maruyama integration of the SDE (Eqs. 11, 32–34, 53).

    .. math::

        dx = b(x)\,dt + \sqrt{\gamma/(pd)}\;(P\Sigma P^\top)^{1/2}\,dB_t

    where ``x`` collects ``m``, the free entries of ``Q`` (off-diagonal only
    for projected SGD, where ``Q_jj ≡ 1`` is kept exactly) and ``a`` if
    trained; ``b`` is the ODE drift (Eq. 17 or 21), ``Σ`` the exact
    increment covariance (Eq. 54) and ``P`` the linearised projection
    (identity for plain SGD).  The square root is a Cholesky factor that
    tolerates semi-definite matrices (zero pivots give zero columns; any
    square root gives the same law).

    Every run draws its noise from its own ``numpy.random.Generator``,
    spawned from one ``SeedSequence``: a run's path depends on the seed and
    on its index only, not on how many runs are integrated together.

    With ``exit=Exit(T, criterion)`` each run stops at the first step where
    the exit gap (:meth:`~mdlib.Exit.gap`) is ``<= 0``; the crossing is
    located by linear interpolation of the gap between the two steps, and
    stored in ``Trajectory.t_exit``.

    Parameters
    ----------
    problem : Problem
    init : State
        Initial conditions; use ``state.repeat(n)`` for ``n`` runs from one
        start.
    t_max : float
        Final time.
    dt : float
        Largest Euler–Maruyama step (the intervals between ``0``, the saved
        times and, with ``exit``, ``t_max`` are split into equal steps no
        larger than ``dt``).
    seed : int, SeedSequence or None
        Seed for reproducibility.
    t_save : array_like, optional
        Strictly increasing save times in ``[0, t_max]``; default
        ``time_grid(t_max)``.  ``()`` saves nothing (with ``exit``: exit
        times only).  Without ``exit`` the integration stops at the last
        saved time.
    ito_correction : bool
        Add the O(γ/(pd)) Itô drift of the projection
        (:func:`ito_correction`).
    progress : bool
        tqdm progress bar over runs.
    exit : Exit, optional
        Stop every run at its exit from mediocrity and record the time.

    Returns
    -------
    Trajectory
        ``method="sde"``; runs that blew up are flagged ``diverged`` (NaN
        from then on) with a RuntimeWarning.  With ``exit``: ``t_exit`` is
        ``inf`` for runs that have not exited by ``t_max``, ``nan`` for
        diverged runs, and saved values after a run's exit are NaN.

    A problem with a link other than the paper's (``problem.link``, beyond
    the paper) is integrated by :func:`mdlib.links.integrate_sde_p1`: p = 1,
    projected SGD, fixed second layer, the exact drift and diffusion of that
    link (a ValueError names the parameter otherwise).

    Notes
    -----
    The cost per step grows like ``p^6`` (the covariance has O(p⁴)
    entries, each a short sum); ``p <= 10`` is practical.  The exit is
    monitored at the Euler steps only, which delays it by about
    ``0.58 σ sqrt(dt)`` in the overlap (discrete monitoring of a barrier);
    see :meth:`mdlib.diffusion.DiffusionP1.monitoring_bias`.

    Examples
    --------
    >>> import mdlib
    >>> pb = mdlib.Problem(p=1, d=3000, gamma=0.1)
    >>> init = mdlib.random_init(pb, 1, seed=0).repeat(4)
    >>> tr = mdlib.integrate_sde(pb, init, 20.0, seed=1, t_save=(), exit=mdlib.Exit(T=0.01))
    >>> tr.t_exit.shape
    (4,)
    """
    check_init(problem, init)
    if problem.link is not None:  # another link (mdlib.links): the exact p = 1 SDE of that link
        if check_bool("ito_correction", ito_correction):
            raise ValueError("ito_correction=True is not available for a problem with a link (problem.link)")
        from .links import integrate_sde_p1

        return integrate_sde_p1(problem, init, t_max, dt, seed, t_save, exit)
    t_max = check_real("t_max", t_max, positive=True)
    dt = check_real("dt", dt, positive=True)
    ito_correction = check_bool("ito_correction", ito_correction)
    t_save = check_t_save(t_save, t_max, time_grid)
    check_exit(exit)
    p, R, nt = problem.p, init.n_runs, t_save.size
    spec = _Spec(p, problem.spherical, problem.train_second_layer)
    m0 = np.ascontiguousarray(init.m, dtype=float).copy()
    Q0 = np.ascontiguousarray(init.Q, dtype=float).copy()
    a0 = np.ascontiguousarray(init.a, dtype=float).copy()
    if problem.spherical:
        Q0[:, np.arange(p), np.arange(p)] = 1.0
    M_out = np.full((R, nt, p), np.nan)
    A_out = np.full((R, nt, p), np.nan)
    Q_out = np.full((R, nt, p, p), np.nan)
    seg_t0, seg_steps, seg_h, seg_save = _em_segments(t_save, t_max, dt, exit is not None)
    save0 = nt > 0 and t_save[0] == 0
    if exit is not None:
        mode = exit.mode
        levels = np.asarray(exit.level(m0, Q0, a0, problem.delta), dtype=float)
    else:
        mode, levels = 0, np.zeros(R)
    t_exit = np.full(R, np.inf) if exit is not None else None
    diverged = np.zeros(R, dtype=bool)
    t_div = np.full(R, np.inf)
    rngs = run_generators(seed, R)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=R, desc="SDE", unit="run")
    for r in range(R):
        if save0:
            M_out[r, 0], Q_out[r, 0], A_out[r, 0] = m0[r], Q0[r], a0[r]
        if exit is not None and float(exit.gap(m0[r], Q0[r], a0[r], problem.delta, levels[r])) <= 0:
            t_exit[r] = 0.0
        elif seg_steps.size:
            status, t = _sde_run(m0[r], Q0[r], a0[r], rngs[r], seg_t0, seg_steps, seg_h, seg_save, p,
                                 problem.gamma, problem.delta, problem.dt, problem.spherical, ito_correction,
                                 spec.pu, spec.pv, spec.kind, spec.vj, spec.vl, spec.iQ, spec.rkind, spec.rj,
                                 spec.rl, spec.rvar, mode, float(levels[r]), M_out[r], Q_out[r], A_out[r])
            if status == 1:
                t_exit[r] = t
            elif status == 2:
                diverged[r] = True
                t_div[r] = t
                if exit is not None:
                    t_exit[r] = np.nan
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    risk = population_risk(M_out, Q_out, A_out, problem.delta)
    if diverged.any():
        warnings.warn(f"{diverged.sum()} of {R} SDE runs diverged (first before t = {t_div[diverged].min():.4g})",
                      RuntimeWarning, stacklevel=2)
    return Trajectory(t_save.copy(), M_out, Q_out, A_out, risk, problem, "sde", diverged, t_exit, exit)


def sde_exit_times(problem: Problem, init: State, T: float, t_max: float, dt: float = 1e-3, seed=None,
                   criterion: str = "risk", ito_correction: bool = False) -> np.ndarray:
    r"""Exit times (Eq. 9) of SDE runs, each run stopped at its exit.

    A shorthand for ``integrate_sde(problem, init, t_max, dt=dt, seed=seed,
    t_save=(), ito_correction=ito_correction, exit=Exit(T, criterion)).t_exit``,
    the SDE's counterpart of :func:`mdlib.sgd.sgd_exit_times` and
    :func:`mdlib.ode.ode_exit_time`.  The crossing is interpolated between two
    Euler steps; monitoring the barrier at the steps only delays the exits by
    about ``0.58 σ sqrt(dt)`` in the overlap
    (:meth:`mdlib.diffusion.DiffusionP1.monitoring_bias`).

    Parameters
    ----------
    problem : Problem
    init : State
        One start per run (``state.repeat(n)`` for ``n`` runs from one start).
    T : float
        Threshold, ``0 < T < 1``.
    t_max : float
        Horizon; runs that have not exited get ``inf``.
    dt : float
        Largest Euler–Maruyama step.
    seed : int, SeedSequence or None
        Run ``r`` draws its noise from child ``r`` of the seed, as in :func:`integrate_sde`.
    criterion : {"risk", "max_m"}
        As in :class:`~mdlib.Exit`.
    ito_correction : bool
        As in :func:`integrate_sde`.

    Returns
    -------
    ndarray, shape (n_runs,)
        ``nan`` for runs that diverged before exiting.

    Examples
    --------
    >>> import mdlib
    >>> pb = mdlib.Problem(p=1, d=3000, gamma=0.1)
    >>> mdlib.sde_exit_times(pb, mdlib.random_init(pb, 1, seed=0).repeat(3), 0.01, 20.0, seed=1).shape
    (3,)
    """
    return integrate_sde(problem, init, t_max, dt=dt, seed=seed, t_save=(), ito_correction=ito_correction,
                         exit=Exit(T, criterion)).t_exit
