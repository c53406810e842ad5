r"""Deterministic high-dimensional limit of SGD (paper Eqs. 7, 17, 21, 26, 38–39, 75–76).

Sign convention: with the displacement ``E = f - y`` of Eq. 16 and SGD
*descending* the loss, one step moves the sufficient statistics by
``dt × (M_j, 𝒬_jl, A_j)`` with ``dt = γ/(p d)`` and (``|x|² → 1``)

.. math::

    \mathcal{M}_j = -2a_j\mathcal{E}\lambda_j\lambda_\star, \quad
    \mathcal{Q}_{jl} = -2(a_j + a_l)\mathcal{E}\lambda_j\lambda_l
        + \frac{4\gamma}{p} a_j a_l \mathcal{E}^2\lambda_j\lambda_l, \quad
    \mathcal{A}_j = -\mathcal{E}\lambda_j^2 ,

so the ODE drifts are the expectations ``Ψ_j = E[M_j]``, ``Φ_jl = E[𝒬_jl]``
and ``da_j/dt = E[A_j]`` (the second layer, when trained, uses the
learning rate ``γ/d``).  The paper's Eqs. 12–14 and 17 print the O(γ)
terms with the opposite sign (they hold for ``E = y - f``, the convention
of App. H); Eq. 26 has the sign used here.  Unconstrained SGD follows
Eq. 17, ``dm/dt = Ψ``, ``dQ/dt = Φ``; projected (spherical) SGD follows
Eq. 21,

.. math::

    \frac{dm_j}{dt} = \Psi_j - \frac{m_j}{2}\Phi_{jj}, \qquad
    \frac{dQ_{jl}}{dt} = \Phi_{jl} - \frac{Q_{jl}}{2}(\Phi_{jj} + \Phi_{ll}).

The expectations come from the matrix formulas of
:func:`mdlib.moments.displacement_moments`, specialised to the blocks the
drift needs, at a cost of two ``p × p`` matrix products per evaluation.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from scipy.integrate import BDF, DOP853, LSODA, RK23, RK45, Radau
from scipy.optimize import brentq

from ._layout import StateLayout
from ._validate import check_choice, check_exit, check_init, check_int, check_problem, check_real, check_t_save
from .problem import Problem, State, _paper_only
from .risk import population_risk
from .trajectory import Exit, Trajectory, time_grid

__all__ = [
    "ode_drift",
    "drift_p1",
    "drift_p1_unconstrained",
    "drift_eq26",
    "p1_exact_solution",
    "integrate_ode",
    "ode_exit_time",
    "jacobian_at_mediocrity",
    "mediocrity_rates",
    "drift_p1_monte_carlo",
    "ode_steps_to_exit",
    "ode_gamma_opt",
    "mediocrity_growth_rate",
    "growth_rate_sensitivity",
    "second_layer_delay",
]

_SOLVERS = {"RK23": RK23, "RK45": RK45, "DOP853": DOP853, "Radau": Radau, "BDF": BDF, "LSODA": LSODA}
_DIVERGENCE = 1e6  # |state| beyond this counts as a blow-up
_Q_STORE_MAX_P = 64  # above this width, trajectories do not store Q
_MAX_STEP = 0.25  # the dynamics has O(1) rates; longer steps make the dense output the weak link


# --------------------------------------------------------------------------- #
# drift
# --------------------------------------------------------------------------- #
def _phi_psi(m, Q, a, gamma, delta, need_S1diag=False):
    """Ψ (…, p), Φ (…, p, p) and diag E[E λ_j²] (…, p); leading axes allowed.

    Blocks of Ω B Ω and Ω B Ω B Ω (students first, teacher last, D = a/p):
    (ΩBΩ)_QQ = QDQ - m mᵀ, (ΩBΩ)_Q* = QDm - m,
    (ΩBΩBΩ)_QQ = (QDQ)DQ - m uᵀ - u mᵀ + m mᵀ with u = QDm.
    """
    p = m.shape[-1]
    D = a / p
    QD = Q * D[..., None, :]
    X = QD @ Q  # Q D Q
    u = np.einsum("...jl,...l->...j", QD, m)  # Q D m
    diagQ = np.diagonal(Q, axis1=-2, axis2=-1)
    tau1 = np.sum(D * diagQ, axis=-1) - 1.0
    tau2 = np.einsum("...j,...jl,...l->...", D, Q**2, D) - 2 * np.sum(D * m**2, axis=-1) + 1.0
    mm = m[..., :, None] * m[..., None, :]
    G = X - mm  # (ΩBΩ)_QQ
    Gs = u - m  # (ΩBΩ)_Q*
    H = (X * D[..., None, :]) @ Q - m[..., :, None] * u[..., None, :] - u[..., :, None] * m[..., None, :] + mm
    t1 = tau1[..., None, None]
    S1 = Q * t1 + 2 * G  # E[E λ_j λ_l]
    S1s = m * tau1[..., None] + 2 * Gs  # E[E λ_j λ*]
    S2 = Q * (tau1**2 + 2 * tau2 + delta)[..., None, None] + 4 * t1 * G + 8 * H  # E[E² λ_j λ_l]
    psi = -2 * a * S1s
    phi = -2 * (a[..., :, None] + a[..., None, :]) * S1 + (4 * gamma / p) * (a[..., :, None] * a[..., None, :]) * S2
    return psi, phi, np.diagonal(S1, axis1=-2, axis2=-1)


def _drift(m, Q, a, gamma, delta, spherical, train):
    psi, phi, s1d = _phi_psi(m, Q, a, gamma, delta)
    if spherical:
        pd = np.diagonal(phi, axis1=-2, axis2=-1)
        dm = psi - 0.5 * m * pd
        dQ = phi - 0.5 * Q * (pd[..., :, None] + pd[..., None, :])
    else:
        dm, dQ = psi, phi
    da = -s1d if train else np.zeros_like(a)
    return dm, dQ, da


def _as_stats(problem, m, Q, a):
    p = problem.p
    m = np.asarray(m, dtype=float)
    if m.ndim == 0 and p == 1:
        m = m.reshape(1)
    if m.shape[-1:] != (p,):
        raise ValueError(f"m must have shape (..., {p}), got {m.shape}")
    Q = np.eye(p) if Q is None else np.asarray(Q, dtype=float)
    if Q.ndim == 0 and p == 1:
        Q = Q.reshape(1, 1)
    if Q.shape[-2:] != (p, p):
        raise ValueError(f"Q must have shape (..., {p}, {p}), got {Q.shape}")
    a = np.ones(p) if a is None else np.asarray(a, dtype=float)
    if a.ndim == 0 and p == 1:
        a = a.reshape(1)
    if a.shape[-1:] != (p,):
        raise ValueError(f"a must have shape (..., {p}), got {a.shape}")
    return m, Q, a


def ode_drift(problem: Problem, m, Q=None, a=None):
    r"""Right-hand side of the ODEs, Eq. 17 (plain SGD) or Eq. 21 (projected).

    .. math::

        \Psi_j = -2a_j\,\mathbb{E}[\mathcal{E}\lambda_j\lambda_\star], \quad
        \Phi_{jl} = -2(a_j + a_l)\,\mathbb{E}[\mathcal{E}\lambda_j\lambda_l]
            + \frac{4\gamma}{p}a_j a_l\,\mathbb{E}[\mathcal{E}^2\lambda_j\lambda_l], \quad
        \frac{da_j}{dt} = -\mathbb{E}[\mathcal{E}\lambda_j^2]

    (``da/dt = 0`` unless ``problem.train_second_layer``).  See the module
    docstring for the sign convention.  Cost O(p³) (two matrix products).

    Parameters
    ----------
    problem : Problem
    m : array_like, shape (..., p)
    Q : array_like, shape (..., p, p), optional
        Default the identity.
    a : array_like, shape (..., p), optional
        Default all ones.

    Returns
    -------
    dm : ndarray, shape (..., p)
    dQ : ndarray, shape (..., p, p)
    da : ndarray, shape (..., p)
    """
    check_problem(problem)
    _paper_only(problem, "ode_drift")
    m, Q, a = _as_stats(problem, m, Q, a)
    return _drift(m, Q, a, problem.gamma, problem.delta, problem.spherical, problem.train_second_layer)


def drift_p1(m, gamma, delta=0.0):
    r"""Closed-form drift of Eq. 7 (p = 1, a = 1, projected SGD).

    .. math::  \frac{dm}{dt} = m\,[4(1 - 6\gamma)(1 - m^2) - 2\gamma\Delta]

    Parameters
    ----------
    m : array_like
    gamma, delta : float

    Returns
    -------
    ndarray
    """
    gamma = check_real("gamma", gamma, positive=True)
    delta = check_real("delta", delta, nonnegative=True)
    m = np.asarray(m, dtype=float)
    return m * (4 * (1 - 6 * gamma) * (1 - m**2) - 2 * gamma * delta)


def drift_p1_monte_carlo(m, d, gamma, delta, n, seed=None):
    r"""Mean increment of one exact projected SGD step at ``p = 1``, per unit time, by Monte Carlo.

    The quantity that Eq. 7 approximates, ``E[m' - m]/δt`` with
    ``δt = γ/d``, sampled exactly at finite ``d``: the fields
    ``λ_⋆ ~ N(0, 1)``, ``λ = mλ_⋆ + sqrt(1 - m²) g``, the label noise and
    ``|x|² = (λ_⋆² + g² + χ²_{d-2})/d``; with ``c = 2γ𝓔λ`` (``𝓔 = f - y``)
    the step ``w ← w - c x`` followed by the projection gives exactly

    .. math::  m' = \frac{m - c\lambda_\star/d}{\sqrt{1 - 2c\lambda/d + c^2|x|^2/d}} .

    The mean differs from :func:`drift_p1` by ``O(1/d)`` (the next order of
    the normalisation).

    Parameters
    ----------
    m : float
        Overlap, ``|m| <= 1``.
    d : int
        Dimension ``> 2``.
    gamma, delta : float
    n : int
        Number of independent steps.
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    mean, se : float
        Sample mean of ``(m' - m)/δt`` and its standard error.
    """
    m = check_real("m", m)
    if abs(m) > 1:
        raise ValueError(f"m must be in [-1, 1], got {m}")
    d = check_int("d", d, 3)
    gamma = check_real("gamma", gamma, positive=True)
    delta = check_real("delta", delta, nonnegative=True)
    n = check_int("n", n, 2)
    rng = np.random.default_rng(seed)
    lam_s, g = rng.standard_normal((2, n))  # coordinates of sqrt(d) x along w*, w
    lam = m * lam_s + np.sqrt(1 - m**2) * g
    x2 = (lam_s**2 + g**2 + rng.chisquare(d - 2, n)) / d  # |x|^2, exactly
    E = lam**2 - lam_s**2 - np.sqrt(delta) * rng.standard_normal(n)  # E = f - y
    c = gamma * 2 * E * lam  # the step is w <- w - c x  (gradient (2/p) E a λ x)
    m_new = (m - c * lam_s / d) / np.sqrt(1 - 2 * c * lam / d + c**2 * x2 / d)
    inc = (m_new - m) / (gamma / d)
    return inc.mean(), inc.std(ddof=1) / np.sqrt(n)


def drift_p1_unconstrained(m, q, gamma):
    r"""Eqs. 75–76: plain SGD at p = 1, a = 1, Δ = 0, ρ = 1.

    .. math::

        \dot m = 6m(1 - q), \qquad
        \dot q = 4\,(q(1 - 3q) + 2m^2) + 12\gamma\,(q(1 + 5q^2 - 2q) + 4m^2(1 - 2q)).

    (Checked against :func:`ode_drift`; they are correct as printed.)

    Returns
    -------
    dm, dq : ndarray
    """
    gamma = check_real("gamma", gamma, positive=True)
    m = np.asarray(m, dtype=float)
    q = np.asarray(q, dtype=float)
    dm = 6 * m * (1 - q)
    dq = 4 * (q * (1 - 3 * q) + 2 * m**2) + 12 * gamma * (q * (1 + 5 * q**2 - 2 * q) + 4 * m**2 * (1 - 2 * q))
    return dm, dq


def drift_eq26(m, Q, gamma, delta=0.0):
    r"""The matrix form of Eq. 26 (a = 1, ρ = 1, plain SGD), typo corrected.

    .. math::

        \frac{dm}{dt} &= 2\Big(1 - \frac{\mathrm{Tr}\,Q}{p}\Big)m + 4\Big(m - \frac{Qm}{p}\Big), \\
        \frac{dQ}{dt} &= 4\Big(1 - \frac{\mathrm{Tr}\,Q}{p}\Big)Q + 8\Big(mm^\top - \frac{Q^2}{p}\Big)
          + \frac{4\gamma}{p}\Big\{3Q + 12mm^\top
          + \frac{1}{p^2}\big[(\mathrm{Tr}[Q]^2 + 2\,\mathrm{Tr}[Q^2])Q + 4\,\mathrm{Tr}[Q]Q^2 + 8Q^3\big] \\
        &\qquad - \frac{2}{p}\big[(\mathrm{Tr}\,Q + 2|m|^2)Q + 2\,\mathrm{Tr}[Q]\,mm^\top + 2Q^2
          + 4(mm^\top Q + Qmm^\top)\big] + \Delta Q\Big\}

    The paper prints ``mmᵀ/k`` in the second term of Eq. 26b; it must be
    ``mmᵀ`` (shown in ``tests/test_ode.py``).

    Parameters
    ----------
    m : array_like, shape (p,)
    Q : array_like, shape (p, p)
    gamma, delta : float

    Returns
    -------
    dm : ndarray, shape (p,)
    dQ : ndarray, shape (p, p)
    """
    m = np.asarray(m, dtype=float)
    Q = np.asarray(Q, dtype=float)
    p = m.shape[-1]
    tr = np.trace(Q)
    mm = np.outer(m, m)
    Q2 = Q @ Q
    dm = 2 * (1 - tr / p) * m + 4 * (m - Q @ m / p)
    brace = (3 * Q + 12 * mm
             + ((tr**2 + 2 * np.trace(Q2)) * Q + 4 * tr * Q2 + 8 * Q2 @ Q) / p**2
             - (2 / p) * ((tr + 2 * m @ m) * Q + 2 * tr * mm + 2 * Q2 + 4 * (mm @ Q + Q @ mm))
             + delta * Q)
    dQ = 4 * (1 - tr / p) * Q + 8 * (mm - Q2 / p) + (4 * gamma / p) * brace
    return dm, dQ


def p1_exact_solution(m0, t, gamma, delta=0.0):
    r"""Exact solution of Eq. 7 (a Bernoulli equation).

    With ``c = 4(1 - 6γ)`` and ``μ = c - 2γΔ``, ``u = 1/m²`` solves the
    linear ODE ``du/dt = -2μu + 2c``, hence

    .. math::

        m(t)^2 = \Big[\frac{c}{\mu} + \Big(\frac{1}{m_0^2} - \frac{c}{\mu}\Big)e^{-2\mu t}\Big]^{-1}
        \quad(\mu \ne 0), \qquad m(t)^2 = \big[m_0^{-2} + 2ct\big]^{-1}\quad(\mu = 0),

    and ``m(t)`` keeps the sign of ``m_0``.

    Parameters
    ----------
    m0 : float or array_like
        Initial overlap(s), ``|m0| <= 1``.
    t : float or array_like
        Times (broadcast against ``m0``).
    gamma, delta : float

    Returns
    -------
    ndarray
    """
    gamma = check_real("gamma", gamma, positive=True)
    delta = check_real("delta", delta, nonnegative=True)
    m0 = np.asarray(m0, dtype=float)
    t = np.asarray(t, dtype=float)
    c = 4 * (1 - 6 * gamma)
    mu = c - 2 * gamma * delta
    with np.errstate(divide="ignore"):
        u0 = 1 / m0**2
    if mu == 0:
        u = u0 + 2 * c * t
    else:
        u = c / mu + (u0 - c / mu) * np.exp(-2 * mu * t)
    with np.errstate(divide="ignore"):
        return np.sign(m0) / np.sqrt(u)


# --------------------------------------------------------------------------- #
# integration engine
# --------------------------------------------------------------------------- #
def _solve(problem, y0, a_fixed, t_max, rtol, atol, method, on_step, pbar=None):
    """Integrate the batch ``y0`` (R, n) with an adaptive scipy ODE solver.

    Steps the solver by hand (the machinery of ``solve_ivp``) so that each
    accepted step's dense output can be evaluated at save times and event
    roots located without storing the whole solution (memory matters at
    p = 500).  ``on_step(t_old, t_new, dense, idx)`` receives the dense
    output for the active runs ``idx`` and returns True to stop.  Runs that
    blow up (non-finite or ``|y| > 1e6``) are dropped, and their times of
    divergence returned (``inf`` for runs that did not diverge).
    """
    layout = StateLayout.of(problem)
    gamma, delta, sph, train = problem.gamma, problem.delta, problem.spherical, problem.train_second_layer
    Solver = _SOLVERS[method]
    max_step = min(_MAX_STEP, t_max / 10)
    R, n = y0.shape
    t_div = np.full(R, np.inf)
    active = np.arange(R)
    y_cur = y0.copy()
    t = 0.0
    while active.size and t < t_max:
        k = active.size
        af = a_fixed[active]

        def fun(_t, y, k=k, af=af):
            m, Q, a = layout.unpack(y.reshape(k, n), af)
            with np.errstate(over="ignore", invalid="ignore"):
                return layout.pack(*_drift(m, Q, a, gamma, delta, sph, train)).ravel()

        solver = Solver(fun, t, y_cur[active].ravel(), t_max, rtol=rtol, atol=atol, max_step=max_step)
        restart = False
        while solver.status == "running":
            solver.step()
            yk = solver.y.reshape(k, n)
            if solver.status == "failed":
                # blame the run(s) moving fastest
                with np.errstate(over="ignore", invalid="ignore"):
                    speed = np.abs(fun(solver.t, solver.y).reshape(k, n)).max(axis=1)
                speed = np.where(np.isfinite(speed), speed, np.inf)
                bad = speed >= speed.max() if k > 1 else np.ones(1, bool)
                t_div[active[bad]] = solver.t
                y_cur[active] = yk
                t = solver.t
                active = active[~bad]
                restart = True
                break
            with np.errstate(invalid="ignore"):
                bad = ~np.all(np.isfinite(yk), axis=1) | (np.max(np.abs(yk), axis=1) > _DIVERGENCE)
            stop = on_step(solver.t_old, solver.t, solver.dense_output(), active)
            if pbar is not None:
                pbar.update(solver.t - solver.t_old)
            if stop:
                return t_div
            if bad.any():
                t_div[active[bad]] = solver.t
                y_cur[active] = yk
                t = solver.t
                active = active[~bad]
                restart = True
                break
        if not restart:
            break
    return t_div


def integrate_ode(problem: Problem, init: State, t_max: float, t_save=None, rtol: float = 1e-9,
                  atol: float = 1e-12, method: str = "DOP853", progress: bool = False,
                  exit: Exit | None = None) -> Trajectory:
    r"""Integrate the ODEs (Eq. 17 or Eq. 21) from every run of ``init``.

    The state vector packs ``m``, the upper triangle of ``Q`` (only its
    off-diagonal part in projected mode, where ``Q_jj ≡ 1``) and ``a`` when
    the second layer is trained.  An adaptive Runge–Kutta solver from
    :mod:`scipy.integrate` (the steppers behind ``solve_ivp``) is advanced
    step by step and its dense output evaluated at ``t_save``; the risk
    (Eq. 6) is stored at each saved time.  Runs of a small-width batch are
    integrated together as one system; wide networks one run at a time.

    With ``exit=Exit(T, criterion)`` every accepted step is checked for a
    sign change of the exit gap (:meth:`~mdlib.Exit.gap`: Eq. 9 for
    ``"risk"``, App. I for ``"max_m"``), and the crossing is located by
    Brent's method on the step's dense output (the event machinery of
    ``solve_ivp``, run per batch member).  A batch stops once all its runs
    have exited.

    Parameters
    ----------
    problem : Problem
    init : State
        Initial conditions (``random_init`` or ``make_state``); one ODE
        solution per run.
    t_max : float
        Final time, ``> 0``.
    t_save : array_like, optional
        Strictly increasing times in ``[0, t_max]`` at which to save; default
        ``time_grid(t_max)``.  ``()`` saves nothing (with ``exit``: exit
        times only).
    rtol, atol : float
        Solver tolerances.
    method : str
        ``"DOP853"`` (default), ``"RK45"``, ``"RK23"``, ``"Radau"``,
        ``"BDF"`` or ``"LSODA"``.
    progress : bool
        Show a tqdm progress bar.
    exit : Exit, optional
        Stop every run at its exit from mediocrity and record the time in
        ``Trajectory.t_exit``.

    Returns
    -------
    Trajectory
        ``method="ode"``.  ``Q`` is ``None`` when ``p > 64`` (memory).
        Runs that blow up (plain SGD with a large γ) are flagged in
        ``diverged`` and hold NaN from the blow-up on; a RuntimeWarning
        says so.  With ``exit``: ``t_exit`` is ``inf`` for runs that have
        not exited by ``t_max`` and ``nan`` for diverged runs, and saved
        values after a run's exit are NaN.

    Raises
    ------
    ValueError
        On a bad argument (the message names it).

    Notes
    -----
    A problem with a link other than the paper's (``problem.link``, beyond
    the paper) is integrated by :func:`mdlib.links.integrate_ode_p1`: p = 1,
    projected SGD, fixed second layer, the exact drift of that link, exit
    times by exact quadrature (a ValueError names the parameter otherwise).

    Examples
    --------
    >>> import mdlib
    >>> pb = mdlib.Problem(p=1, d=1000, gamma=0.1)
    >>> init = mdlib.make_state(pb, 0.05)
    >>> tr = mdlib.integrate_ode(pb, init, 10.0, t_save=(), exit=mdlib.Exit(T=0.01))
    >>> bool(abs(tr.t_exit[0] - mdlib.exit_time_ode_p1(0.05, 0.1, 0.0, 0.01)) < 1e-8)
    True
    """
    check_init(problem, init)
    if problem.link is not None:  # another link (mdlib.links): the exact p = 1 ODE of that link
        from .links import integrate_ode_p1

        return integrate_ode_p1(problem, init, t_max, t_save, rtol, atol, method, exit)
    t_max = check_real("t_max", t_max, positive=True)
    rtol = check_real("rtol", rtol, positive=True)
    atol = check_real("atol", atol, positive=True)
    check_choice("method", method, tuple(_SOLVERS))
    t_save = check_t_save(t_save, t_max, time_grid)
    check_exit(exit)
    p, R, nt = problem.p, init.n_runs, t_save.size
    layout = StateLayout.of(problem)
    store_Q = p <= _Q_STORE_MAX_P
    M = np.full((R, nt, p), np.nan)
    A = np.full((R, nt, p), np.nan)
    Qs = np.full((R, nt, p, p), np.nan) if store_Q else None
    risk = np.full((R, nt), np.nan)
    y0_all = layout.pack(init.m, init.Q, init.a)
    batch = max(1, int(20000 // (p * p)))
    t_exit = None
    if exit is not None:
        t_exit = np.full(R, np.inf)
        level = exit.level(init.m, init.Q, init.a, problem.delta)

    def record(idx, ks, ys):
        # ys: (len(idx), n, len(ks))
        ys = np.moveaxis(ys, -1, 1)  # (runs, times, n)
        m, Q, a = layout.unpack(ys, np.broadcast_to(init.a[idx][:, None, :], ys.shape[:2] + (p,)))
        M[idx[:, None], ks[None, :]] = m
        A[idx[:, None], ks[None, :]] = a
        if store_Q:
            Qs[idx[:, None], ks[None, :]] = Q
        risk[idx[:, None], ks[None, :]] = population_risk(m, Q, a, problem.delta)

    def gap(y, runs):
        m, Q, a = layout.unpack(y, init.a[runs])
        return exit.gap(m, Q, a, problem.delta, level[runs])

    pbar = None
    if progress:
        from tqdm.auto import tqdm
        pbar = tqdm(total=t_max * -(-R // batch), desc="ODE", unit="t")
    t_div = np.full(R, np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's own warnings on blow-up
        for start in range(0, R, batch):
            runs = np.arange(start, min(R, start + batch))
            # time 0 exactly
            k0 = np.nonzero(t_save == 0)[0]
            if k0.size:
                record(runs, k0, y0_all[runs][:, :, None].repeat(k0.size, axis=2))
            done = np.zeros(runs.size, bool)  # exited (only with exit)
            if exit is not None:
                g0 = gap(y0_all[runs], runs)
                t_exit[runs[g0 <= 0]] = 0.0
                done |= g0 <= 0

            def on_step(t_old, t_new, dense, idx, runs=runs, done=done):
                sel = np.nonzero((t_save > t_old) & (t_save <= t_new))[0]
                if sel.size:
                    ys = dense(t_save[sel]).reshape(idx.size, layout.n, sel.size)
                    record(runs[idx], sel, ys)
                if exit is None:
                    return False
                r_act = runs[idx]
                g_new = gap(dense(t_new).reshape(idx.size, layout.n), r_act)
                for k in np.nonzero((g_new <= 0) & ~done[idx])[0]:
                    r = r_act[k]

                    def gk(s, k=k, r=r):
                        yy = dense(s).reshape(idx.size, layout.n)[k]
                        return float(gap(yy[None], np.array([r]))[0])

                    if gk(t_old) <= 0:  # crossed already at the step start (numerically)
                        t_exit[r] = t_old
                    else:
                        t_exit[r] = brentq(gk, t_old, t_new, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
                    done[idx[k]] = True
                # a run dropped on divergence never exits; the batch stops when every active run is done
                return bool(np.all(done[idx]))

            if exit is not None and np.all(done):
                continue
            td = _solve(problem, y0_all[runs], init.a[runs], t_max, rtol, atol, method, on_step, pbar)
            t_div[runs] = td
    if pbar is not None:
        pbar.close()
    diverged = np.isfinite(t_div)
    if diverged.any():
        late = t_save[None, :] >= t_div[:, None]
        M[late] = np.nan
        A[late] = np.nan
        risk[late] = np.nan
        if store_Q:
            Qs[late] = np.nan
        warnings.warn(f"{diverged.sum()} of {R} ODE runs diverged (first at t = {t_div[diverged].min():.4g})",
                      RuntimeWarning, stacklevel=2)
    if exit is not None:
        t_exit[diverged & ~(t_exit < t_div)] = np.nan  # diverged before exiting
        after = t_save[None, :] > t_exit[:, None]
        M[after] = np.nan
        A[after] = np.nan
        risk[after] = np.nan
        if store_Q:
            Qs[after] = np.nan
    return Trajectory(t_save.copy(), M, Qs, A, risk, problem, "ode", diverged, t_exit, exit)


def ode_exit_time(problem: Problem, init: State, T: float, t_max: float = 100.0, criterion: str = "risk",
                  rtol: float = 1e-10, atol: float = 1e-13, method: str = "DOP853") -> np.ndarray:
    r"""Exit times (Eq. 9) of the ODE solutions, located to solver precision.

    A shorthand for ``integrate_ode(problem, init, t_max, t_save=(), rtol=rtol,
    atol=atol, method=method, exit=Exit(T, criterion)).t_exit``: each accepted
    step is checked for a sign change of the criterion and the root is
    found by Brent's method on the dense output.

    Parameters
    ----------
    problem : Problem
    init : State
    T : float
        Threshold, ``0 < T < 1``.
    t_max : float
        Integration horizon; runs that have not exited get ``inf``.
    criterion : {"risk", "max_m"}
        As in :class:`~mdlib.Exit`.
    rtol, atol : float
    method : str
        As in :func:`integrate_ode`.

    Returns
    -------
    ndarray, shape (n_runs,)
        ``nan`` for runs that diverged before exiting.
    """
    exit_ = Exit(T, criterion)
    return integrate_ode(problem, init, t_max, t_save=(), rtol=rtol, atol=atol, method=method, exit=exit_).t_exit


# --------------------------------------------------------------------------- #
# linearisation at mediocrity (App. E.1)
# --------------------------------------------------------------------------- #
def jacobian_at_mediocrity(problem: Problem, h: float = 1e-6):
    r"""Jacobian of the drift at mediocrity ``m = 0``, ``Q = I``, ``a = 1``.

    Central finite differences (exact up to O(h²) for this polynomial
    drift) of the packed drift of :func:`ode_drift` with respect to the
    packed state (``m``, then the upper triangle of ``Q`` — off-diagonal
    only in projected mode — then ``a`` if trained).  App. E.1 predicts,
    for projected SGD with a fixed second layer, a diagonal Jacobian with
    ``ω_M`` on the ``m`` entries and ``-ω_Q`` on the ``Q_jl`` entries
    (Eqs. 38–40).

    Parameters
    ----------
    problem : Problem
    h : float
        Finite-difference step.

    Returns
    -------
    J : ndarray, shape (n, n)
    labels : list of tuple
        ``("m", j)``, ``("Q", j, l)`` or ``("a", j)`` for each coordinate.
    """
    check_problem(problem)
    _paper_only(problem, "jacobian_at_mediocrity")
    h = check_real("h", h, positive=True)
    layout = StateLayout.of(problem)
    p = problem.p
    a1 = np.ones(p)
    y0 = layout.pack(np.zeros(p), np.eye(p), a1)
    n = y0.size

    def f(y):
        m, Q, a = layout.unpack(y, a1)
        return layout.pack(*ode_drift(problem, m, Q, a))

    E = np.eye(n) * h
    Y = np.concatenate([y0 + E, y0 - E])
    F = f(Y)
    J = ((F[:n] - F[n:]) / (2 * h)).T
    return J, layout.labels()


def mediocrity_rates(problem: Problem):
    r"""Numerical ``(ω_M, ω_Q)`` of Eq. 40 from :func:`jacobian_at_mediocrity`.

    ``ω_M`` is the growth rate of each ``m_j`` and ``ω_Q`` the decay rate of
    each off-diagonal ``Q_jl`` (``nan`` at ``p = 1``), read off the diagonal
    of the Jacobian (averaged over units; the Jacobian is checked diagonal
    in the tests).  Compare with Eqs. 38–39:
    ``ω_M = 4[1 - (γ/p)(1 + 1/p + 4/p² + Δ/2)]``,
    ``ω_Q = (8/p)(1 - 8γ/p²)``.
    """
    J, labels = jacobian_at_mediocrity(problem)
    diag = np.diag(J)
    im = [i for i, lab in enumerate(labels) if lab[0] == "m"]
    iq = [i for i, lab in enumerate(labels) if lab[0] == "Q" and lab[1] != lab[2]]
    om = float(np.mean(diag[im]))
    oq = float(-np.mean(diag[iq])) if iq else float("nan")
    return om, oq


# --------------------------------------------------------------------------- #
# samples to escape and the optimal learning rate of the ODE (Eq. 49, App. E.4)
# --------------------------------------------------------------------------- #
def ode_steps_to_exit(problem: Problem, init: State, T: float, t_max: float | None = None,
                      rtol: float = 1e-9, atol: float = 1e-12) -> float:
    r"""Mean number of SGD steps (= samples) the ODE needs to escape, Eq. 49.

    ``s = (p d / γ) t_ext`` with the ODE exit time (:func:`ode_exit_time`)
    averaged over the runs of ``init``.

    Parameters
    ----------
    problem : Problem
    init : State
    T : float
        Threshold of Eq. 9.
    t_max : float, optional
        Horizon; default ``60/ω_M`` (60 e-folds of the linear growth).
    rtol, atol : float
        Solver tolerances.

    Returns
    -------
    float
        ``inf`` if a run does not exit by ``t_max``.
    """
    from .theory import omega_m

    check_problem(problem)
    _paper_only(problem, "ode_steps_to_exit")
    p, d, gamma = problem.p, problem.d, problem.gamma
    if t_max is None:
        t_max = 60.0 / omega_m(p, gamma, problem.delta)
    return p * d / gamma * np.mean(ode_exit_time(problem, init, T, t_max=t_max, rtol=rtol, atol=atol))


def ode_gamma_opt(problem: Problem, init: State, T: float, bounds=(0.5, 1.5), xatol: float = 1e-4) -> float:
    r"""The learning rate that minimises the ODE's mean number of samples to escape, in units of γ_opt.

    Minimises :func:`ode_steps_to_exit` over ``γ = x γ_opt(p, Δ)`` (Eq. 49,
    App. E.4) for ``x`` in ``bounds`` by bounded scalar minimisation
    (``scipy.optimize.minimize_scalar``, ``method="bounded"``), averaging
    over the runs of ``init``.  The formula's optimum ``γ_opt`` comes from the
    linearised dynamics; the ODE's optimum differs from it by the ``O(T)``
    nonlinear delay of the exit.

    Parameters
    ----------
    problem : Problem
        Width, dimension, noise and flags; its ``gamma`` is not used.
    init : State
    T : float
    bounds : (float, float)
        Search interval for ``x = γ/γ_opt``; ``x γ_opt`` must stay below
        ``gamma_max`` (and ``p²/8`` for ``p >= 2``).
    xatol : float
        Absolute tolerance on ``x``.

    Returns
    -------
    float
        ``x = γ*/γ_opt``.
    """
    from scipy.optimize import minimize_scalar

    from .theory import gamma_opt

    check_problem(problem)
    _paper_only(problem, "ode_gamma_opt")
    lo, hi = (check_real("bounds", b, positive=True) for b in bounds)
    if not lo < hi:
        raise ValueError(f"bounds must be increasing, got {bounds}")
    xatol = check_real("xatol", xatol, positive=True)
    g0 = gamma_opt(problem.p, problem.delta)

    def steps(x):
        return ode_steps_to_exit(dataclasses.replace(problem, gamma=x * g0), init, T)

    return minimize_scalar(steps, bounds=(lo, hi), method="bounded", options=dict(xatol=xatol)).x


# --------------------------------------------------------------------------- #
# the second layer and the growth rate at mediocrity (App. I)
# --------------------------------------------------------------------------- #
def mediocrity_growth_rate(problem: Problem, a: float = 1.0, h: float = 1e-7) -> float:
    r"""Growth rate ``ω_M(a)`` of the overlaps at mediocrity for a homogeneous second layer ``a_j = a``.

    ``(dm_1/dt)/m_1`` of :func:`ode_drift` at ``m = h e_1``, ``Q = I``
    (a finite difference, exact up to ``O(h²)`` for this polynomial drift).
    At ``a = 1`` it is Eq. 38; the gradient of ``w_j`` is proportional to
    ``a_j``, so ``ω_M(a) ≈ 4a`` as ``γ → 0``.
    """
    check_problem(problem)
    _paper_only(problem, "mediocrity_growth_rate")
    a = check_real("a", a)
    h = check_real("h", h, positive=True)
    p = problem.p
    m = np.zeros(p)
    m[0] = h
    return ode_drift(problem, m, np.eye(p), np.full(p, a))[0][0] / h


def growth_rate_sensitivity(problem: Problem) -> float:
    r"""``ω_M'(1)/ω_M(1)``: relative change of the growth rate at mediocrity per unit change of ``a``.

    Central difference of :func:`mediocrity_growth_rate` with step ``1e-4``.
    """
    return ((mediocrity_growth_rate(problem, 1 + 1e-4) - mediocrity_growth_rate(problem, 1 - 1e-4)) / 2e-4
            / mediocrity_growth_rate(problem, 1.0))


def second_layer_delay(problem: Problem, t):
    r"""Linear response of the exit time to training the second layer (App. I), at exit time ``t``.

    On the mediocrity manifold the mean of ``a`` relaxes from 1 to
    ``a_⋆ = p/(p + 2)`` at the rate ``k = 1 + 2/p``
    (:func:`mdlib.theory.second_layer_plateau`), and the growth rate of the
    overlaps follows, ``ω_M(ā) ≈ ω_M(1)[1 + (ω_M'(1)/ω_M(1))(ā - 1)]``: the
    overlaps fall behind those of the fixed network by the factor
    ``exp[ω_M'(1) ∫_0^t (ā - 1)]``, and reaching the same threshold takes
    longer by

    .. math::

        \Delta t_{\rm ext} \approx \frac{\omega_M'(1)}{\omega_M(1)}\,(1 - a_\star)
        \Big(t - \frac{1 - e^{-kt}}{k}\Big) .

    It is first order in ``1 - a_⋆ = 2/(p + 2)``.  Two effects are
    neglected, which set its accuracy (checked against the ODE in
    ``tests/test_ode.py``): the overlaps recover the deficit at the lowered
    rate ``ω_M(ā(t)) = ω_M(1)(1 - r)``, ``r = (ω_M'(1)/ω_M(1))(1 - ā(t))``,
    which lengthens the delay by the relative ``r/(1 - r)``, tens of per cent
    at small ``p`` and late exits; and the ``+2m_j²`` in ``da_j/dt`` slows the decrease of
    ``a_j`` for the unit about to trigger the exit, by up to
    ``p max_j m_j²`` at the threshold, which shortens it at large ``p``.

    Parameters
    ----------
    problem : Problem
        Projected SGD at width ``p`` (the flag ``train_second_layer`` does not
        enter).
    t : array_like
        Exit times of the network with the second layer fixed.

    Returns
    -------
    ndarray
    """
    check_problem(problem)
    _paper_only(problem, "second_layer_delay")
    if not problem.spherical:
        raise ValueError("second_layer_delay needs projected SGD (spherical=True)")
    p = problem.p
    ratio = growth_rate_sensitivity(problem)
    kk, a_star = 1 + 2 / p, p / (p + 2)
    t = np.asarray(t, dtype=float)
    return ratio * (1 - a_star) * (t - (1 - np.exp(-kk * t)) / kk)
