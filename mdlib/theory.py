r"""Closed-form exit times, learning rates and the overparametrization gain.

Everything here is a pure function of the problem parameters: the linearised
escape rates of App. E.1 (Eqs. 38–39), the exit-time formulas of Sec. 2
(Eq. 10) and App. E (Eqs. 46–47), the optimal learning rate and minimal
number of steps of App. E.4 (Eq. 49), the asymptotic excess risk (Eq. 8) and
the Ornstein–Uhlenbeck exit time of App. F (Eq. 52).

Conventions (see :mod:`mdlib.problem`): spherical weights, second layer fixed
at ``a = 1``, time ``t = ν γ / (p d)`` after ``ν`` steps, exit time of Eq. 9,

.. math::  \mathcal{R}(t) - \Delta/2 \le (1 - T)\,(\mathcal{R}(0) - \Delta/2).

Derivation in one paragraph (re-derived, see ``tests/test_theory.py``).
Near the plateau ``m = 0, Q = I`` the spherical ODE (Eqs. 21, 30–31) is, to
linear order, ``dm_j/dt = ω_M m_j`` and ``dQ_jl/dt = -ω_Q Q_jl`` (Eq. 40)
with ``ω_M = 4[1 - (γ/p)(1 + 1/p + 4/p² + Δ/2)]`` (Eq. 38) and
``ω_Q = (8/p)(1 - 8γ/p²)`` (Eq. 39).  On the sphere the risk is Eq. 42,
``R - Δ/2 = 1 + 1/p + Σ_{j≠l} Q_jl²/p² - (2/p) Σ_j m_j²``.  With
``μ0 = d Σ_j m_j(0)²`` and ``τ0 = d Σ_{j≠l} Q_jl(0)²`` (Eq. 43; both O(1))
the linearised risk is

.. math::
    \mathcal{R}(t) - \frac{\Delta}{2} = 1 + \frac1p
    + \frac{\tau_0}{d p^2} e^{-2\omega_Q t} - \frac{2\mu_0}{d p} e^{2\omega_M t}

(Eq. 44 as printed has ``d τ0`` and ``d μ0``: an erratum, see
:mod:`mdlib.errata`).  Dropping the decaying ``τ0`` term at the exit time
(this needs ``ω_Q > 0``) and solving Eq. 9 gives Eq. 46,

.. math::
    t_{\rm ext} = \frac{1}{2\omega_M}\log
    \frac{T p (p+1) d + (2\mu_0 p - \tau_0)(1 - T)}{2 \mu_0 p}.

The quenched time averages this over the exact law ``P_p^d`` of
``(μ0, τ0)`` at initialisation; the annealed time plugs in
``E μ0 = p`` and ``E τ0 = p(p-1)`` (Eq. 47).  At ``p = 1`` the annealed
time is exactly the linearised exit time from ``m0² = E m0² = 1/d``.
"""
from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
from scipy import integrate, special

from ._validate import check_int, check_real, check_T

__all__ = [
    "omega_m",
    "omega_q",
    "gamma_max",
    "gamma_opt",
    "asymptotic_excess_risk",
    "sample_mu_tau",
    "mu_tau",
    "exit_time_given_init",
    "exit_time_linearized",
    "exit_time_annealed",
    "exit_time_quenched",
    "exit_time_annealed_p1",
    "exit_time_quenched_p1",
    "exit_time_ode_p1",
    "steps_to_exit",
    "min_steps",
    "overparam_gain",
    "overparam_gain_finite",
    "ou_parameters_p1",
    "ou_exit_time",
    "ou_exit_time_numeric",
    "second_layer_plateau",
]


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------

def _p(p, allow_inf=False):
    if allow_inf and isinstance(p, float) and math.isinf(p) and p > 0:
        return math.inf
    return check_int("p", p, 1)


def _d(d, p):
    d = check_int("d", d, 1)
    if not math.isinf(p) and d <= p + 1:
        raise ValueError(f"d must be > p + 1 = {p + 1}, got d = {d}")
    return d


def _gamma(gamma):
    return check_real("gamma", gamma, positive=True)


def _delta(delta):
    return check_real("delta", delta, nonnegative=True)


def _check_formula_domain(p, gamma, delta):
    """Raise unless the exit-time formula applies: ω_M > 0, and ω_Q > 0 for p ≥ 2."""
    wm = omega_m(p, gamma, delta)
    if wm <= 0:
        raise ValueError(
            f"gamma = {gamma} is outside the domain of the exit-time formula: "
            f"omega_M = {wm:.4g} <= 0, so m = 0 is stable and there is no escape "
            f"(need gamma < gamma_max(p={p}, delta={delta}) = {gamma_max(p, delta):.6g})"
        )
    if p >= 2 and omega_q(p, gamma) <= 0:
        raise ValueError(
            f"gamma = {gamma} is outside the domain of the exit-time formula (Eq. 46): "
            f"omega_Q = {omega_q(p, gamma):.4g} <= 0, the off-diagonal overlaps do not decay "
            f"(need gamma < p²/8 = {p * p / 8:.6g}; App. E.2)"
        )
    return wm


# --------------------------------------------------------------------------
# rates and learning rates
# --------------------------------------------------------------------------

def _exit_args(p, d, gamma, delta, T):
    """Validated arguments of the exit-time formulas, and ``ω_M`` (raises
    outside the domain where the formulas hold)."""
    p = _p(p)
    d = _d(d, p)
    gamma, delta, T = _gamma(gamma), _delta(delta), check_T(T)
    return p, d, gamma, delta, T, _check_formula_domain(p, gamma, delta)


def omega_m(p, gamma, delta=0.0):
    r"""Linear growth rate of the overlaps at the plateau, Eq. 38.

    .. math::  \omega_M = 4\Big[1 - \frac{\gamma}{p}\Big(1 + \frac1p
               + \frac{4}{p^2} + \frac{\Delta}{2}\Big)\Big],

    so that ``dm_j/dt = ω_M m_j`` near ``m = 0, Q = I`` (Eq. 40).  At
    ``p = 1`` this is ``4(1 - 6γ) - 2γΔ``, the linearisation of Eq. 7
    (the ``μ`` of Eq. 50).

    Parameters
    ----------
    p : int
        Width, ``p >= 1``.
    gamma : float
        Learning rate, ``> 0``.
    delta : float
        Noise variance, ``>= 0``.

    Returns
    -------
    float
    """
    p = _p(p)
    gamma, delta = _gamma(gamma), _delta(delta)
    return 4.0 * (1.0 - gamma / p * (1.0 + 1.0 / p + 4.0 / p**2 + delta / 2.0))


def omega_q(p, gamma):
    r"""Linear decay rate of the off-diagonal overlaps ``Q_jl``, Eq. 39.

    .. math::  \omega_Q = \frac{8}{p}\Big(1 - \frac{8\gamma}{p^2}\Big),

    so that ``dQ_jl/dt = -ω_Q Q_jl`` near the plateau (Eq. 40).  It does not
    depend on Δ.  Only meaningful for ``p >= 2``.
    """
    p = _p(p)
    gamma = _gamma(gamma)
    return 8.0 / p * (1.0 - 8.0 * gamma / p**2)


def gamma_max(p, delta=0.0, include_omega_q=False):
    r"""Largest learning rate for which SGD escapes the plateau.

    Escape needs ``ω_M > 0`` (Eq. 38), i.e.

    .. math::  \gamma < \gamma_{\max} = \frac{p}{1 + 1/p + 4/p^2 + \Delta/2}.

    At ``p = 1`` this is ``γ < 2/(12 + Δ)``: the condition is exactly that
    the fixed point ``m*² = 1 - γΔ/(2(1 - 6γ))`` of Eq. 7 lies in (0, 1].  The
    paper's ``γ < 1/6`` (Sec. 2) is necessary but only sufficient at
    ``Δ = 0`` (erratum ``sec2-learning-rate-bound``).

    The derivation of Eq. 46 (App. E.2) also needs ``ω_Q > 0``, i.e.
    ``γ < p²/8`` for ``p >= 2``.  This is implied by ``ω_M > 0`` when
    ``p >= 7`` (at any Δ), and always holds at ``γ_opt = γ_max / 2``; set
    ``include_omega_q=True`` to get ``min(γ_max, p²/8)`` (for ``p >= 2``).

    Parameters
    ----------
    p : int
    delta : float
    include_omega_q : bool

    Returns
    -------
    float
    """
    p = _p(p)
    delta = _delta(delta)
    g = p / (1.0 + 1.0 / p + 4.0 / p**2 + delta / 2.0)
    if include_omega_q and p >= 2:
        g = min(g, p * p / 8.0)
    return g


def gamma_opt(p, delta=0.0):
    r"""Learning rate minimising the number of steps to escape (App. E.4).

    ``s_ext = (p d / γ) t_ext`` (Eq. 49) with ``t_ext = L / (2 ω_M)`` and a
    γ-independent ``L``, so it is minimal where ``γ(1 - γK/p)`` is maximal,
    ``K = 1 + 1/p + 4/p² + Δ/2``:

    .. math::  \gamma_{\rm opt} = \frac{p}{2K} = \frac{p^3}{8 + 2p + (2+\Delta)p^2}
               = \frac{\gamma_{\max}}{2}.

    At ``p = 1``: ``1/(12 + Δ)``.  There ``2 ω_M = 4``.  The same γ
    minimises the annealed and the quenched step counts.

    Caveat: γ_opt is optimal for *escaping* only.  For ``p >= 2`` (with
    ``a = 1`` fixed) the ODE run at γ_opt leaves the plateau but does not
    learn: at ``p = 2`` it settles at a risk ≈ 1.08, at ``p = 4`` the
    students collapse onto each other (``Q_jl → 1``, ``m → 0``, risk → 2);
    the exit threshold is then reached only for small T (e.g. not for
    ``T = 0.3`` at ``p = 4``).  At γ_opt/2 they learn (see the tests).
    """
    p = _p(p)
    delta = _delta(delta)
    return p**3 / (8.0 + 2.0 * p + (2.0 + delta) * p**2)


def asymptotic_excess_risk(gamma, delta):
    r"""Long-time excess risk ``lim R - Δ/2`` at ``p = 1``, Eq. 8.

    The stable fixed point of Eq. 7 is ``m*² = 1 - γΔ / (2(1 - 6γ))``, and
    ``R - Δ/2 = 2(1 - m*²) = γΔ / (1 - 6γ)``.

    Raises
    ------
    ValueError
        If ``γ >= 2/(12 + Δ)`` (then ``m = 0`` is the attractor and the excess
        risk stays 2).
    """
    gamma, delta = _gamma(gamma), _delta(delta)
    _check_formula_domain(1, gamma, delta)
    return gamma * delta / (1.0 - 6.0 * gamma)


# --------------------------------------------------------------------------
# initial conditions
# --------------------------------------------------------------------------

def sample_mu_tau(p, d, n_samples, seed=None):
    r"""Exact samples of ``(μ0, τ0) ~ P_p^d`` (App. E.3).

    ``μ0 = d Σ_j (u_j·v)²`` and ``τ0 = 2d Σ_{j<l} (u_j·u_l)²`` with ``v,
    u_1..u_p`` independent and uniform on the unit sphere of R^d — the
    overlaps ``d Σ m_j(0)²`` and ``d Σ_{j≠l} Q_jl(0)²`` of Eq. 43 at a random
    spherical initialisation (Eq. 86).

    Instead of d-dimensional vectors, the Gram matrix of ``p + 1`` standard
    Gaussian vectors is drawn through its Bartlett decomposition
    (lower-triangular ``C``, ``C_ii² ~ χ²(d - i)``, ``C_ij ~ N(0, 1)`` below
    the diagonal, ``i = 0..p``) and the rows are normalised.  This is exact
    at any d; the cost per sample is O(p²) for μ0 and O(p³) for τ0 (a
    ``p × p`` Gram matrix), independent of d.

    Parameters
    ----------
    p : int
    d : int
        Dimension, ``d > p + 1``.
    n_samples : int
    seed : int, numpy.random.SeedSequence or None

    Returns
    -------
    mu0, tau0 : ndarray, shape (n_samples,)
        ``E μ0 = p``, ``E τ0 = p(p - 1)``; ``τ0 = 0`` when ``p = 1``.
    """
    p = _p(p)
    d = _d(d, p)
    n_samples = check_int("n_samples", n_samples, 1)
    rng = np.random.default_rng(seed)
    n = p + 1
    diag = np.arange(n)
    rows, cols = np.tril_indices(n, -1)
    ju, lu = np.triu_indices(p, 1)
    dof = d - diag
    mu0 = np.empty(n_samples)
    tau0 = np.empty(n_samples)
    chunk = max(1, int(2_000_000 // (n * n)))
    for start in range(0, n_samples, chunk):
        k = min(chunk, n_samples - start)
        C = np.zeros((k, n, n))
        C[:, diag, diag] = np.sqrt(rng.chisquare(dof, size=(k, n)))
        C[:, rows, cols] = rng.standard_normal((k, rows.size))
        U = C[:, 1:, :]
        U = U / np.linalg.norm(U, axis=2, keepdims=True)
        # row 0 of C is (C_00, 0, ..., 0): v is the first basis vector
        mu0[start:start + k] = d * np.sum(U[:, :, 0] ** 2, axis=1)
        if p > 1:
            Q = U @ np.swapaxes(U, 1, 2)
            tau0[start:start + k] = 2.0 * d * np.sum(Q[:, ju, lu] ** 2, axis=1)
        else:
            tau0[start:start + k] = 0.0
    return mu0, tau0


def mu_tau(m, Q, d):
    r"""The two numbers through which a start enters the linearised exit time, Eq. 43.

    .. math::  \mu_0 = d\sum_j m_j(0)^2, \qquad \tau_0 = d\sum_{j\ne l} Q_{jl}(0)^2 ,

    for given initial overlaps (e.g. ``state.m``, ``state.Q`` of a
    :class:`~mdlib.State`); :func:`sample_mu_tau` samples them from their
    exact law instead.  Their means over random starts are ``p`` and
    ``p(p - 1)``.

    Parameters
    ----------
    m : array_like, shape (n, p)
    Q : array_like, shape (n, p, p)
    d : int

    Returns
    -------
    mu0, tau0 : ndarray, shape (n,)
    """
    m = np.asarray(m, dtype=float)
    Q = np.asarray(Q, dtype=float)
    if m.ndim != 2 or Q.shape != m.shape + (m.shape[1],):
        raise ValueError(f"m must have shape (n, p) and Q shape (n, p, p), got {m.shape} and {Q.shape}")
    d = check_int("d", d, 1)
    off = ~np.eye(m.shape[1], dtype=bool)
    return d * np.sum(m**2, axis=1), d * np.sum(Q[:, off] ** 2, axis=1)


# --------------------------------------------------------------------------
# exit times
# --------------------------------------------------------------------------

def exit_time_given_init(p, d, gamma, delta, T, mu0, tau0):
    r"""Exit time of the linearised dynamics for given ``(μ0, τ0)``, Eq. 46.

    .. math::
        t_{\rm ext} = \frac{1}{2\omega_M}\log
        \frac{T p (p+1) d + (2\mu_0 p - \tau_0)(1-T)}{2\mu_0 p}

    (the integrand of the quenched average).  The decaying ``τ0`` term of the
    risk is dropped at the exit time, which is accurate when ``T d >> 1``;
    :func:`exit_time_linearized` keeps it.  Where the logarithm's argument is
    ``<= 1`` (possible only when ``T d`` is not large compared with ``τ0``)
    the time is set to 0 with a ``RuntimeWarning``.

    Parameters
    ----------
    p, d : int
    gamma, delta, T : float
    mu0, tau0 : array_like
        ``μ0 > 0`` and ``τ0 >= 0`` (Eq. 43), broadcast together.

    Returns
    -------
    ndarray (or float for scalar input)
    """
    p, d, gamma, delta, T, wm = _exit_args(p, d, gamma, delta, T)
    mu0 = np.asarray(mu0, dtype=float)
    tau0 = np.asarray(tau0, dtype=float)
    if np.any(~np.isfinite(mu0)) or np.any(mu0 <= 0):
        raise ValueError("mu0 must be finite and > 0")
    if np.any(~np.isfinite(tau0)) or np.any(tau0 < 0):
        raise ValueError("tau0 must be finite and >= 0")
    arg = (T * p * (p + 1) * d + (2.0 * mu0 * p - tau0) * (1.0 - T)) / (2.0 * mu0 * p)
    bad = arg <= 1.0
    if np.any(bad):
        warnings.warn(
            f"{np.mean(bad):.3g} of the samples have a log-argument <= 1 in Eq. 46 "
            f"(T d = {T * d:.3g} is too small for the formula); their time is set to 0",
            RuntimeWarning,
            stacklevel=2,
        )
    t = np.log(np.maximum(arg, 1.0)) / (2.0 * wm)
    return t if t.ndim else float(t)


def exit_time_linearized(p, d, gamma, delta, T, mu0, tau0):
    r"""Exact exit time of the linearised system, Eqs. 40–42, for given ``(μ0, τ0)``.

    Solves Eq. 9 for the risk

    .. math::
        \mathcal{R}(t) - \frac{\Delta}{2} = 1 + \frac1p
        + \frac{\tau_0}{d p^2} e^{-2\omega_Q t} - \frac{2\mu_0}{d p} e^{2\omega_M t}

    by root finding, *keeping* the decaying ``τ0`` term that Eq. 46 drops.
    The two agree when ``T d >> 1``.

    Returns
    -------
    ndarray (or float for scalar input)
    """
    p, d, gamma, delta, T, wm = _exit_args(p, d, gamma, delta, T)
    wq = omega_q(p, gamma) if p > 1 else 0.0
    mu0, tau0 = np.broadcast_arrays(np.asarray(mu0, float), np.asarray(tau0, float))
    if np.any(mu0 <= 0) or np.any(tau0 < 0):
        raise ValueError("mu0 must be > 0 and tau0 >= 0")
    out = np.empty(mu0.shape)
    base = 1.0 + 1.0 / p
    for idx in np.ndindex(mu0.shape):
        a, b = tau0[idx] / (d * p * p), 2.0 * mu0[idx] / (d * p)
        target = (1.0 - T) * (base + a - b)

        def f(t, a=a, b=b, target=target):
            return base + a * np.exp(-2 * wq * t) - b * np.exp(2 * wm * t) - target

        hi = 1.0 / wm
        while f(hi) > 0:
            hi *= 2.0
        out[idx] = _brentq(f, 0.0, hi)
    return out if out.ndim else float(out)


def _brentq(f, a, b):
    from scipy.optimize import brentq

    return brentq(f, a, b, xtol=1e-14, rtol=1e-13, maxiter=500)


def exit_time_annealed(p, d, gamma, delta, T):
    r"""Annealed exit time, Eq. 47 (Eq. 10 at ``p = 1``).

    .. math::
        t^{\rm (anl)}_{\rm ext} = \frac{1}{2\omega_M}
        \log\frac{(p+1)\,[T d + (1 - T)]}{2p},

    Eq. 46 with ``(μ0, τ0)`` replaced by their means ``(p, p(p-1))``.  At
    ``p = 1``, ``log(Td + 1 - T) / (8(1 - 6γ) - 4γΔ)``: the exact exit time of
    the *linearised* Eq. 7 from ``m0² = E m0² = 1/d``.  The nonlinear ODE
    exits later by ``-log(1 - T)/(2ω_M) ≈ T/(2ω_M)`` at ``Δ = 0``
    (see :func:`exit_time_ode_p1`).

    Parameters
    ----------
    p : int
        Width ``>= 1``.
    d : int
        Dimension ``> p + 1``.
    gamma : float
        Learning rate, ``0 < γ < gamma_max(p, Δ)`` (and ``< p²/8`` if p >= 2).
    delta : float
        Noise variance ``>= 0``.
    T : float
        Threshold in (0, 1) (Eq. 9).

    Returns
    -------
    float
        Exit time in units ``t = ν γ / (p d)``.
    """
    p, d, gamma, delta, T, wm = _exit_args(p, d, gamma, delta, T)
    return math.log((p + 1) * (T * d + 1.0 - T) / (2.0 * p)) / (2.0 * wm)


def exit_time_quenched(p, d, gamma, delta, T, n_samples=20_000, seed=None, return_stderr=False):
    r"""Quenched exit time, Eq. 46: the average of Eq. 46 over ``(μ0, τ0) ~ P_p^d``.

    For ``p >= 2`` the expectation is a Monte Carlo average over exact
    samples from :func:`sample_mu_tau`.  For ``p = 1`` it is computed by
    quadrature over the exact finite-d law ``μ0 = d B``,
    ``B ~ Beta(1/2, (d-1)/2)`` (no sampling; ``n_samples`` and ``seed`` are
    ignored) — see :func:`exit_time_quenched_p1`.

    At ``p = 1`` the integrand ``log(Td/μ0 + 1 - T)`` is convex in μ0, so
    quenched >= annealed by Jensen.  For ``p >= 2`` the τ0-dependence is
    concave and Jensen does not apply directly; the convex ``-log μ0`` part
    dominates when ``T d >> p`` (checked numerically in the tests), and the
    two coincide as ``p → ∞`` (μ0/p concentrates).

    Parameters
    ----------
    p, d, gamma, delta, T :
        As in :func:`exit_time_annealed`.
    n_samples : int
        Monte Carlo samples (``p >= 2``).
    seed : int, numpy.random.SeedSequence or None
    return_stderr : bool
        Also return the Monte Carlo standard error (0 for ``p = 1``).

    Returns
    -------
    float, or (float, float)
    """
    p, d, gamma, delta, T, _ = _exit_args(p, d, gamma, delta, T)
    if p == 1:
        t = exit_time_quenched_p1(d, gamma, delta, T, law="exact")
        return (t, 0.0) if return_stderr else t
    mu0, tau0 = sample_mu_tau(p, d, n_samples, seed)
    t = exit_time_given_init(p, d, gamma, delta, T, mu0, tau0)
    mean = float(np.mean(t))
    if return_stderr:
        return mean, float(np.std(t, ddof=1) / np.sqrt(t.size)) if t.size > 1 else 0.0
    return mean


def exit_time_annealed_p1(d, gamma, delta, T):
    r"""Annealed exit time at ``p = 1``, Eq. 10 (left):

    .. math:: t^{\rm (anl)}_{\rm ext} = \frac{\log[T d + (1 - T)]}{8(1-6\gamma) - 4\gamma\Delta}.
    """
    return exit_time_annealed(1, d, gamma, delta, T)


def exit_time_quenched_p1(d, gamma, delta, T, law="chi2"):
    r"""Quenched exit time at ``p = 1``, Eq. 10 (right) / Eq. 48:

    .. math::
        t^{\rm (qnc)}_{\rm ext} = \mathbb{E}_{\mu_0}\Big[
        \frac{\log[T d/\mu_0 + (1 - T)]}{8(1-6\gamma) - 4\gamma\Delta}\Big].

    ``law="chi2"``: ``μ0 ~ χ²(1)``, the d → ∞ law of ``d m0²`` used by the
    paper.  ``law="exact"``: the exact finite-d law ``μ0 = d (u·v)²`` with
    ``u, v`` uniform on the unit sphere, i.e. ``μ0 / d ~ Beta(1/2, (d-1)/2)``.

    The expectation is computed by quadrature, using
    ``log(Td/μ + 1 - T) = log(T + (1-T) μ/d) - log(μ/d)``: the second term has
    the closed-form mean ``-E log B = ψ(d/2) - ψ(1/2)`` (exact) or
    ``γ_E + log 2 + log d`` (χ²); the first, smooth one is integrated over
    ``s = sqrt(μ)``, whose density is ``2φ(s)`` (χ²) or
    ``2 (1 - s²/d)^{(d-3)/2} / (sqrt(d) B(1/2, (d-1)/2))`` on
    ``[0, sqrt(d)]`` (exact).

    Parameters
    ----------
    d : int
        Dimension ``> 2``.
    gamma, delta, T : float
    law : {"chi2", "exact"}

    Returns
    -------
    float
    """
    _, d, gamma, delta, T, wm = _exit_args(1, d, gamma, delta, T)
    if law == "chi2":
        def dens(s):
            return 2.0 * np.exp(-0.5 * s * s) / math.sqrt(2.0 * math.pi)
        upper = 40.0
        minus_elog = np.euler_gamma + math.log(2.0) + math.log(d)  # -E log(μ0/d)
    elif law == "exact":
        log_norm = math.log(2.0) - 0.5 * math.log(d) - special.betaln(0.5, (d - 1) / 2.0)

        def dens(s):
            return np.exp(log_norm + (d - 3) / 2.0 * np.log1p(-s * s / d))
        upper = min(math.sqrt(d), 40.0)
        minus_elog = special.digamma(d / 2.0) - special.digamma(0.5)
    else:
        raise ValueError(f"law must be 'chi2' or 'exact', got {law!r}")

    def integrand(s):
        return dens(s) * math.log(T + (1.0 - T) * s * s / d)

    smooth, _ = integrate.quad(integrand, 0.0, upper, limit=200, epsabs=1e-12, epsrel=1e-12)
    return (smooth + minus_elog) / (2.0 * wm)


def exit_time_ode_p1(m0, gamma, delta, T):
    r"""Exact exit time of the nonlinear ODE (Eq. 7) from ``m(0) = m0``.

    With ``u = m²``, Eq. 7 is logistic, ``du/dt = 2u(ω - a u)``,
    ``a = 4(1 - 6γ)``, ``ω = a - 2γΔ = ω_M(1, γ, Δ)``, with solution
    ``u(t) = ω u0 e^{2ωt} / (ω + a u0 (e^{2ωt} - 1))``.  The exit time (Eq. 9,
    ``u = u1 = T + (1 - T) u0``) is

    .. math::
        t = \frac{1}{2\omega}\log\frac{u_1(\omega - a u_0)}{u_0(\omega - a u_1)},

    ``inf`` if ``u1`` is not below the fixed point ``ω/a`` (or ``m0 = 0``).
    At ``Δ = 0`` this equals the linearised time plus exactly
    ``-log(1 - T)/(2ω)``.

    Parameters
    ----------
    m0 : array_like
        Initial overlap(s), ``|m0| < 1``.
    gamma, delta, T : float

    Returns
    -------
    ndarray (or float for scalar input)
    """
    gamma, delta, T = _gamma(gamma), _delta(delta), check_T(T)
    w = _check_formula_domain(1, gamma, delta)
    a = 4.0 * (1.0 - 6.0 * gamma)
    m0 = np.asarray(m0, dtype=float)
    if np.any(~np.isfinite(m0)) or np.any(np.abs(m0) >= 1):
        raise ValueError("m0 must be finite with |m0| < 1")
    u0 = m0**2
    u1 = T + (1.0 - T) * u0
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (u0 > 0) & (u1 < w / a)
        ratio = np.where(ok, u1 * (w - a * u0) / (u0 * (w - a * u1)), 1.0)
        t = np.where(ok, np.log(ratio) / (2.0 * w), np.inf)
    return t if t.ndim else float(t)


# --------------------------------------------------------------------------
# steps, optimal steps and the overparametrization gain
# --------------------------------------------------------------------------

def steps_to_exit(p, d, gamma, delta, T, kind="annealed", n_samples=20_000, seed=None):
    r"""Number of SGD steps (= samples) to escape, Eq. 49: ``s = (p d / γ) t_ext``.

    Parameters
    ----------
    p, d, gamma, delta, T :
        As in :func:`exit_time_annealed`.
    kind : {"annealed", "quenched"}
    n_samples, seed :
        For the quenched Monte Carlo average (``p >= 2``).

    Returns
    -------
    float
    """
    if kind == "annealed":
        t = exit_time_annealed(p, d, gamma, delta, T)
    elif kind == "quenched":
        t = exit_time_quenched(p, d, gamma, delta, T, n_samples=n_samples, seed=seed)
    else:
        raise ValueError(f"kind must be 'annealed' or 'quenched', got {kind!r}")
    return p * d / gamma * t


def min_steps(p, d, delta, T):
    r"""Minimal annealed number of steps, at ``γ = γ_opt`` (App. E.4):

    .. math::
        s^{\min}_{\rm ext} = \frac{d\,[8 + 2p + (2+\Delta)p^2]}{4 p^2}
        \log\frac{(p+1)[T d + (1-T)]}{2p}.

    ``p = math.inf`` gives the infinite-width limit
    ``d (2 + Δ)/4 · log((Td + 1 - T)/2)``.
    """
    p = _p(p, allow_inf=True)
    d = _d(d, p)
    delta, T = _delta(delta), check_T(T)
    if math.isinf(p):
        return d * (2.0 + delta) / 4.0 * math.log((T * d + 1.0 - T) / 2.0)
    pref = d * (8.0 + 2.0 * p + (2.0 + delta) * p**2) / (4.0 * p**2)
    return pref * math.log((p + 1) * (T * d + 1.0 - T) / (2.0 * p))


def overparam_gain(delta):
    r"""Overparametrization gain as ``d → ∞`` (App. E.4):

    .. math::  \lim_{d\to\infty}\frac{s^{\min}(p=1)}{s^{\min}(p\to\infty)}
               = \frac{12 + \Delta}{2 + \Delta}.
    """
    delta = _delta(delta)
    return (12.0 + delta) / (2.0 + delta)


def overparam_gain_finite(p, d, delta, T):
    r"""Finite-(p, d) gain ``s^min(1, d) / s^min(p, d)`` (:func:`min_steps`).

    ``p`` may be ``math.inf``.  It tends to :func:`overparam_gain` only
    logarithmically in d: at ``p = ∞`` the ratio is
    ``(12+Δ)/(2+Δ) · log(Td + 1 - T) / log((Td + 1 - T)/2)``.
    """
    p = _p(p, allow_inf=True)
    d = _d(d, p)
    return min_steps(1, d, delta, T) / min_steps(p, d, delta, T)


# --------------------------------------------------------------------------
# Ornstein-Uhlenbeck exit time (App. F)
# --------------------------------------------------------------------------

def ou_parameters_p1(d, gamma, delta):
    r"""Drift and noise of the OU approximation near ``m = 0`` at ``p = 1`` (App. F).

    ``dm = μ m dt + σ db`` (Eq. 51) with ``μ = 4(1 - 6γ) - 2γΔ`` (Eq. 50) and
    ``σ² = (γ/d)(48 + 4Δ)``: the variance rate of ``m`` per unit time is
    ``(γ/d) Var[2 E λ λ*]`` at ``m = 0``, and
    ``E[4 E² λ² λ*²] = 4(12 + Δ)`` for independent standard ``λ, λ*``
    (``Var[M_1]`` of Eq. 55 at ``m = 0``).

    Returns
    -------
    mu, sigma2 : float
    """
    d = _d(d, 1)
    gamma, delta = _gamma(gamma), _delta(delta)
    return 4.0 * (1.0 - 6.0 * gamma) - 2.0 * gamma * delta, gamma / d * (48.0 + 4.0 * delta)


def _check_ou(mu, sigma2, T):
    mu = check_real("mu", mu)
    sigma2 = check_real("sigma2", sigma2, positive=True)
    return mu, sigma2, check_T(T)


def _hyp2f2(z):
    """₂F₂(1, 1; 3/2, 2; z) (mpmath; checked against an exact rational series in the tests)."""
    return float(mpmath.hyp2f2(1, 1, 1.5, 2, z))


def ou_exit_time(mu, sigma2, T):
    r"""Mean exit time of ``dm = μ m dt + σ db`` from ``(-√T, √T)``, from ``m = 0``, Eq. 52:

    .. math::
        t^{\rm (SDE)}_{\rm ext} = \frac{T}{\sigma^2}\,
        {}_2F_2\Big(1, 1; \tfrac32, 2; -\frac{\mu T}{\sigma^2}\Big).

    Re-derived: the mean exit time ``u(x)`` solves
    ``(σ²/2) u'' + μ x u' = -1``, ``u(±√T) = 0``, whence
    ``u(0) = (2/σ²) ∫_0^{√T} ∫_0^x e^{-k(x² - y²)} dy dx`` with ``k = μ/σ²``;
    expanding the exponential and integrating term by term gives the
    series of ``₂F₂`` with argument ``-kT``.  The printed formula is correct
    (checked against :func:`ou_exit_time_numeric`, and against Monte Carlo
    in ``tests/test_theory.py``).  ``μ`` of either sign is allowed (``μ > 0``:
    expansive, as in App. F).

    ``₂F₂`` is evaluated with ``mpmath.hyp2f2``.

    Parameters
    ----------
    mu : float
        Drift coefficient (Eq. 50).
    sigma2 : float
        Noise variance rate ``σ² > 0``.
    T : float
        Threshold in (0, 1); the interval is ``(-√T, √T)``.

    Returns
    -------
    float
    """
    mu, sigma2, T = _check_ou(mu, sigma2, T)
    return T / sigma2 * _hyp2f2(-mu * T / sigma2)


def ou_exit_time_numeric(mu, sigma2, T, method="quad"):
    r"""Mean OU exit time from ``(-√T, √T)`` starting at 0, without ``₂F₂``.

    ``method="quad"``: the double integral
    ``u(0) = (2/σ²) ∫_0^{√T} ∫_0^x exp(-k(x² - y²)) dy dx``, ``k = μ/σ²``
    (the solution of the backward equation with ``u'(0) = 0``) by
    ``scipy.integrate.dblquad``.

    ``method="bvp"``: the backward (Dynkin) boundary-value problem
    ``(σ²/2) u'' + μ x u' = -1``, ``u(±√T) = 0``, solved by
    ``scipy.integrate.solve_bvp`` on the whole interval; returns ``u(0)``.

    Returns
    -------
    float
    """
    mu, sigma2, T = _check_ou(mu, sigma2, T)
    a = math.sqrt(T)
    k = mu / sigma2
    if method == "quad":
        val, _ = integrate.dblquad(
            lambda y, x: math.exp(-k * (x * x - y * y)), 0.0, a, 0.0, lambda x: x,
            epsabs=1e-13, epsrel=1e-11,
        )
        return 2.0 / sigma2 * val
    if method == "bvp":
        # scale x = a s, u = (a²/σ²) v: v'' + 2 k a² s v' = -2 on (-1, 1)
        c = k * a * a
        s = np.linspace(-1.0, 1.0, 2001)

        def rhs(s, y):
            return np.vstack([y[1], -2.0 - 2.0 * c * s * y[1]])

        def bc(ya, yb):
            return np.array([ya[0], yb[0]])

        y0 = np.vstack([1.0 - s**2, -2.0 * s])
        sol = integrate.solve_bvp(rhs, bc, s, y0, tol=1e-10, max_nodes=200_000)
        if not sol.success:  # pragma: no cover
            raise RuntimeError(f"solve_bvp failed: {sol.message}")
        return float(sol.sol(0.0)[0]) * a * a / sigma2
    raise ValueError(f"method must be 'quad' or 'bvp', got {method!r}")


# --------------------------------------------------------------------------
# the trained second layer on the mediocrity manifold (App. I)
# --------------------------------------------------------------------------

def second_layer_plateau(a0, t):
    r"""The trained second layer on the mediocrity manifold ``m = 0``, ``Q = I`` (App. I).

    There ``da_j/dt = -E[𝓔λ_j²] = 1 - ā - 2a_j/p`` is linear: the mean
    ``ā = (1/p)Σ_j a_j`` and the spread ``V = (1/p)Σ_j (a_j - ā)²`` relax as

    .. math::

        \bar a(t) = a_\star + (\bar a(0) - a_\star)\,e^{-(1 + 2/p)t}, \qquad
        V(t) = V(0)\,e^{-4t/p}, \qquad a_\star = \frac{p}{p + 2},

    and the excess risk (Eq. 6 at ``m = 0``, ``Q = I``) is

    .. math::  \mathcal{R} - \frac\Delta2 = \frac32 - \bar a + \Big(\frac12 + \frac1p\Big)\bar a^2 + \frac{V}{p} ,

    which falls from the plateau ``1 + 1/p`` of a fixed ``a = 1`` to
    ``1 + 1/(p + 2)``.

    Parameters
    ----------
    a0 : array_like, shape (..., p)
        Initial second layers.
    t : array_like
        Times, broadcast against ``a0[..., :1]`` (e.g. shape ``(1, n_t)``
        for ``a0`` of shape ``(n_runs, p)``).

    Returns
    -------
    excess_risk, abar, V : ndarray
        Broadcast shapes of ``a0[..., :1]`` and ``t``.
    """
    a0 = np.asarray(a0, dtype=float)
    if a0.ndim < 1 or a0.shape[-1] < 1:
        raise ValueError(f"a0 must have shape (..., p), got {a0.shape}")
    t = np.asarray(t, dtype=float)
    p = a0.shape[-1]
    a_star = p / (p + 2)
    abar0 = a0.mean(axis=-1, keepdims=True)
    abar = a_star + (abar0 - a_star) * np.exp(-(1 + 2 / p) * t)
    V = np.var(a0, axis=-1, keepdims=True) * np.exp(-4 * t / p)
    return 1.5 - abar + (0.5 + 1 / p) * abar**2 + V / p, abar, V
