r"""The noise of SGD at mediocrity and the noisy-linear model of the exit time.

Near mediocrity (``m = 0``, ``Q = I``, ``a = 1``, projected SGD) the drift
is linear (Eq. 40), ``dm_j/dt = ω_M m_j`` and ``dQ_jl/dt = -ω_Q Q_jl``,
but one SGD step also moves ``m_j`` by ``(γ/(pd)) 𝓜_j`` with
``𝓜_j = -2𝓔λ_jλ_⋆`` of mean zero and variance
``σ_M² = 4 E[𝓔² λ_j² λ_⋆²]`` there (App. G; ``4(12 + Δ)`` at ``p = 1``,
the noise of App. F), and ``Q_jl`` by ``(γ/(pd)) 𝒬_jl`` of variance
``σ_Q²``.  The *noisy-linear model* keeps exactly these two ingredients,

.. math::

    dm_j = \omega_M m_j\,dt + \sqrt{\tfrac{\gamma}{pd}\sigma_M^2}\,dB_j, \qquad
    \mathbb{E}\,Q_{jl}^2(t) = Q_{jl}(0)^2 e^{-2\omega_Q t}
        + \tfrac{\gamma}{pd}\sigma_Q^2\,\frac{1 - e^{-2\omega_Q t}}{2\omega_Q},

and solves Eq. 9 along each path, with the risk of Eq. 42.  Its mean exit
time, compared with the noiseless linear exit time (Eq. 44 solved exactly,
:func:`mdlib.theory.exit_time_linearized`), gives the shift of the exit
time that SGD's noise causes; added to the exit time of the full ODE it
predicts the mean SGD exit time from a given start.

At ``p = 1`` the model is the Ornstein–Uhlenbeck process of App. F
(Eqs. 50–51), whose mean first-passage time from ``m_0`` to ``|m| = b``,
``b² = T + (1 - T) m_0²``, solves ``(σ²/2) u'' + ω x u' = -1``,
``u(±b) = 0``:

.. math::

    u(m_0) = \frac{2}{\omega}\,\big[G(kb) - G(k|m_0|)\big], \qquad
    k = \sqrt{\omega/\sigma^2}, \qquad G(v) = \int_0^v F(u)\,du ,

with ``F`` Dawson's function (``scipy.special.dawsn``); at ``m_0 = 0`` this
is Eq. 52, ``G(v) = (v²/2)\,₂F₂(1, 1; 3/2, 2; -v²)``.
"""
from __future__ import annotations

import functools
from math import factorial

import numpy as np
from scipy import special

from ._validate import check_choice, check_int, check_real
from .theory import _exit_args, exit_time_ode_p1, omega_m, omega_q, ou_parameters_p1

__all__ = ["noise_variances", "noisy_linear_exit_time", "noisy_linear_exit_time_mu0", "exit_time_sgd_p1"]


# --------------------------------------------------------------------------
# the noise at mediocrity
# --------------------------------------------------------------------------

def _dfact(n):
    """Double factorial ``n!!`` (with ``(-1)!! = 1``)."""
    out = 1
    while n > 1:
        out, n = out * n, n - 2
    return out


def _moment_at_mediocrity(k, p, delta, pair):
    r"""``E[𝓔^k λ_j² λ_⋆²]`` (``pair=False``) or ``E[𝓔^k λ_j² λ_l²]``, ``j ≠ l`` (``pair=True``),
    at ``m = 0``, ``Q = I``, ``a = 1``.

    There the fields are independent standard normals and
    ``𝓔 = (λ_j² [+ λ_l²] + R)/p - λ_⋆² - sqrt(Δ) z`` with ``R ~ χ²(p - 1 [- 1])``
    independent of the rest; the multinomial expansion of ``𝓔^k`` leaves
    moments ``E[λ^{2i}] = (2i - 1)!!``, ``E[R^i] = Π_{s<i} (dof + 2s)`` and
    ``E[z^{2i}] = (2i - 1)!!``.
    """
    dof = p - 2 if pair else p - 1
    total = 0.0
    for i1 in range(k + 1):
        for i2 in range(k + 1 - i1 if pair else 1):
            for i3 in range(k + 1 - i1 - i2):
                for i4 in range(k + 1 - i1 - i2 - i3):
                    i5 = k - i1 - i2 - i3 - i4
                    if i5 % 2:
                        continue
                    coef = factorial(k) / (factorial(i1) * factorial(i2) * factorial(i3) * factorial(i4)
                                           * factorial(i5))
                    e_r = float(np.prod([dof + 2 * i for i in range(i3)])) if i3 else 1.0  # E[R^i3]
                    term = coef * (-1) ** i4 / p ** (i1 + i2 + i3) * _dfact(2 * i1 + 1) * e_r
                    term *= delta ** (i5 // 2) * _dfact(i5 - 1)
                    term *= _dfact(2 * i2 + 1) * _dfact(2 * i4 - 1) if pair else _dfact(2 * i4 + 1)
                    total += term
    return total


def noise_variances(p, gamma, delta):
    r"""Variances ``(σ_M², σ_Q²)`` of the SGD increments at mediocrity (App. G, Eq. 54).

    At ``m = 0``, ``Q = I``, ``a = 1`` the increments of ``m_j`` and of the
    off-diagonal ``Q_jl`` (per step, in units of ``γ/(pd)``; projected or
    not, the projection does not act at mediocrity) are

    .. math::

        \mathcal{M}_j = -2\mathcal{E}\lambda_j\lambda_\star, \qquad
        \mathcal{Q}_{jl} = -4\mathcal{E}\lambda_j\lambda_l + \frac{4\gamma}{p}\mathcal{E}^2\lambda_j\lambda_l ,

    both of mean zero, with variances

    .. math::

        \sigma_M^2 = 4\,\mathbb{E}[\mathcal{E}^2\lambda_j^2\lambda_\star^2], \qquad
        \sigma_Q^2 = 16\Big(\mathbb{E}[\mathcal{E}^2\lambda_j^2\lambda_l^2]
            - \frac{2\gamma}{p}\mathbb{E}[\mathcal{E}^3\lambda_j^2\lambda_l^2]
            + \frac{\gamma^2}{p^2}\mathbb{E}[\mathcal{E}^4\lambda_j^2\lambda_l^2]\Big),

    computed exactly (the fields are independent standard normals there).
    This generalises the noise of App. F, :func:`mdlib.theory.ou_parameters_p1`,
    to any width: at ``p = 1``, ``σ_M² = 4(12 + Δ)`` and
    ``σ² = (γ/d) σ_M²``.  Equal to the diagonal of
    :func:`mdlib.sde.increment_covariance` at mediocrity.

    Parameters
    ----------
    p : int
        Width ``>= 1``.
    gamma : float
        Learning rate ``γ > 0``.
    delta : float
        Label-noise variance ``Δ >= 0``.

    Returns
    -------
    sigma_m2, sigma_q2 : float
        ``σ_Q² = 0`` at ``p = 1`` (no off-diagonal overlap).

    Examples
    --------
    >>> from mdlib.noise import noise_variances
    >>> noise_variances(1, 0.1, 0.0)
    (48.0, 0.0)
    """
    p = check_int("p", p, 1)
    gamma = check_real("gamma", gamma, positive=True)
    delta = check_real("delta", delta, nonnegative=True)
    g = gamma / p
    s_m = 4 * _moment_at_mediocrity(2, p, delta, False)
    if p == 1:
        return s_m, 0.0
    s_q = 16 * (_moment_at_mediocrity(2, p, delta, True) - 2 * g * _moment_at_mediocrity(3, p, delta, True)
                + g * g * _moment_at_mediocrity(4, p, delta, True))
    return s_m, s_q


# --------------------------------------------------------------------------
# the noisy-linear model of the exit time
# --------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _dawson_table():
    """``G(v) = ∫_0^v F(u) du`` tabulated on ``[0, 1e7]`` (trapezoid rule on a grid
    fine enough for a relative error below 1e-9 in the exit times)."""
    v = np.concatenate([np.linspace(0.0, 1.0, 20001), np.geomspace(1.0, 1e7, 400001)[1:]])
    F = special.dawsn(v)
    G = np.concatenate([[0.0], np.cumsum(0.5 * (F[1:] + F[:-1]) * np.diff(v))])
    return v, G


def _dawson_integral(v):
    """``G(v) = ∫_0^v F(u) du`` with ``F`` Dawson's function, for ``v >= 0``.

    Beyond the table, ``F(u) = 1/(2u) + O(u^{-3})``, so
    ``G(v) = G(v_max) + log(v/v_max)/2`` to relative accuracy 1e-15.
    """
    grid, G = _dawson_table()
    v = np.asarray(v, dtype=float)
    out = np.interp(v, grid, G)
    far = v > grid[-1]
    if np.any(far):
        out = np.where(far, G[-1] + 0.5 * np.log(np.where(far, v, 1.0) / grid[-1]), out)
    return out


def _exit_time_ou_p1(m0, d, gamma, delta, T):
    """Exact mean first-passage time of the p = 1 noisy-linear model (Dawson integral)."""
    mu, sigma2 = ou_parameters_p1(d, gamma, delta)  # ω_M and (γ/d)(48 + 4Δ)
    k = np.sqrt(mu / sigma2)
    b = np.sqrt(T + (1 - T) * m0**2)
    return 2.0 / mu * (_dawson_integral(k * b) - _dawson_integral(k * np.abs(m0)))


def _exit_time_noisy_sim(p, d, gamma, delta, T, m0, tau0, n_noise, dt, seed):
    """Monte Carlo mean exit time of the noisy-linear model, per start."""
    wm = omega_m(p, gamma, delta)
    wq = omega_q(p, gamma) if p > 1 else 1.0
    s_m, s_q = noise_variances(p, gamma, delta)
    n_runs = m0.shape[0]
    mu0 = d * np.sum(m0**2, axis=1)
    base = 1 + 1 / p
    level = (1 - T) * (base + tau0 / (d * p * p) - 2 * mu0 / (d * p))

    def gap(t, m2, tau0, level):  # excess risk (Eq. 42) minus the threshold; m2 = sum_j m_j(t)^2
        var_q = gamma / (p * d) * s_q * -np.expm1(-2 * wq * t) / (2 * wq)
        return base + (tau0 * np.exp(-2 * wq * t) + d * p * (p - 1) * var_q) / (d * p * p) - 2 * m2 / p - level

    rng = np.random.default_rng(seed)
    run = np.tile(np.arange(n_runs), n_noise)  # path k follows the start run[k]
    m, tau0, level = m0[run], tau0[run], level[run]  # only paths not yet exited are kept
    grow = np.exp(wm * dt)
    kick = np.sqrt(gamma / (p * d) * s_m * np.expm1(2 * wm * dt) / (2 * wm))
    out = np.full(run.size, np.inf)
    idx = np.arange(run.size)
    g_prev, t = gap(0.0, np.sum(m**2, axis=-1), tau0, level), 0.0
    while idx.size and t < 60.0 / wm:
        m = m * grow + kick * rng.standard_normal(m.shape)
        t += dt
        g_new = gap(t, np.sum(m**2, axis=-1), tau0, level)
        hit = g_new <= 0
        out[idx[hit]] = t - dt * g_new[hit] / (g_new[hit] - g_prev[hit])
        keep = ~hit
        idx, m, g_prev, tau0, level = idx[keep], m[keep], g_new[keep], tau0[keep], level[keep]
    return out.reshape(n_noise, n_runs).mean(axis=0)


def noisy_linear_exit_time(p, d, gamma, delta, T, m0, tau0=0.0, *, method="auto", n_noise=32, dt=0.005,
                           seed=None):
    r"""Mean exit time (Eq. 9) of the noisy-linear model of SGD at mediocrity, per start.

    The linearised dynamics of Eq. 40 plus SGD's own noise at mediocrity
    (:func:`noise_variances`; see the module docstring):
    ``dm_j = ω_M m_j dt + sqrt((γ/(pd)) σ_M²) dB_j``, and the off-diagonal
    overlaps entering the risk (Eq. 42) through their mean square
    ``Q_jl(0)² e^{-2ω_Q t} + (γ/(pd)) σ_Q² (1 - e^{-2ω_Q t})/(2ω_Q)``.  The
    exit time is averaged over the noise, for each start.

    Its difference with the noiseless linear exit time
    (:func:`mdlib.theory.exit_time_linearized`, on the same ``(μ0, τ0)``) is
    the shift of the exit time due to the noise: SGD exits on average at the
    ODE's exit time plus this shift (the *noisy-linear prediction*;
    :func:`exit_time_sgd_p1` at ``p = 1``).

    ``method="simulate"``: ``n_noise`` paths per start with exact
    Ornstein–Uhlenbeck transitions over steps ``dt``, the crossing of the
    threshold located by linear interpolation within a step (up to
    ``t = 60/ω_M``).  ``method="exact"`` (``p = 1`` only): the exact mean
    first-passage time by the Dawson integral (module docstring; Eq. 52 at
    ``m0 = 0``).  ``"auto"``: exact at ``p = 1``, simulated otherwise.

    Parameters
    ----------
    p, d : int
        Width and dimension.
    gamma, delta, T : float
        Learning rate, label noise, threshold of Eq. 9 (``ω_M > 0`` and, for
        ``p >= 2``, ``ω_Q > 0`` are required).
    m0 : array_like, shape (n_starts, p)
        Initial overlaps with the teacher (shape ``(n_starts,)`` or a scalar
        also accepted at ``p = 1``).
    tau0 : array_like, shape (n_starts,)
        ``τ0 = d Σ_{j≠l} Q_jl(0)²`` of Eq. 43 (0 at ``p = 1``).
    method : {"auto", "exact", "simulate"}
    n_noise : int
        Noise paths per start (simulation).
    dt : float
        Time step of the simulation.
    seed : int, SeedSequence or None
        Seed of the simulation.

    Returns
    -------
    ndarray, shape (n_starts,)
        (a float for a scalar ``m0`` at ``p = 1``).

    Examples
    --------
    >>> import numpy as np
    >>> from mdlib.noise import noisy_linear_exit_time
    >>> t_exact = noisy_linear_exit_time(1, 3000, 0.1, 0.0, 0.01, 0.0)
    >>> t_sim = noisy_linear_exit_time(1, 3000, 0.1, 0.0, 0.01, np.zeros(1), method="simulate",
    ...                                n_noise=4000, seed=1)
    >>> bool(abs(t_sim[0] / t_exact - 1) < 0.02)
    True
    """
    p, d, gamma, delta, T, _ = _exit_args(p, d, gamma, delta, T)
    check_choice("method", method, ("auto", "exact", "simulate"))
    if method == "auto":
        method = "exact" if p == 1 else "simulate"
    m0 = np.asarray(m0, dtype=float)
    scalar = m0.ndim == 0
    if p == 1 and m0.ndim <= 1:
        m0 = m0.reshape(-1, 1)
    if m0.ndim != 2 or m0.shape[1] != p:
        raise ValueError(f"m0 must have shape (n_starts, p) with p = {p}, got {np.shape(m0)}")
    if not np.all(np.isfinite(m0)) or np.any(np.abs(m0) >= 1):
        raise ValueError("m0 must be finite with |m0| < 1")
    tau0 = np.broadcast_to(np.asarray(tau0, dtype=float), (m0.shape[0],))
    if not np.all(np.isfinite(tau0)) or np.any(tau0 < 0):
        raise ValueError("tau0 must be finite and >= 0")
    if method == "exact":
        if p != 1:
            raise ValueError(f"method='exact' needs p = 1 (the Ornstein-Uhlenbeck case), got p = {p}")
        t = _exit_time_ou_p1(m0[:, 0], d, gamma, delta, T)
    else:
        n_noise = check_int("n_noise", n_noise, 1)
        dt = check_real("dt", dt, positive=True)
        t = _exit_time_noisy_sim(p, d, gamma, delta, T, m0, tau0, n_noise, dt, seed)
    return float(t[0]) if scalar else t


def noisy_linear_exit_time_mu0(p, d, gamma, delta, T, mu0, tau0=0.0, **kwargs):
    r"""Mean exit time of the noisy-linear model, for starts given by ``μ0`` instead of the overlaps.

    The noise of the model is isotropic in the ``p`` overlaps ``m_j``, and the
    risk of Eq. 42 depends on them only through ``Σ_j m_j²``; the law of the
    exit time therefore depends on the start only through
    ``μ0 = d Σ_j m_j(0)²`` (Eq. 43) and ``τ0``.  Each start is taken as
    ``m(0) = sqrt(μ0/d) e_1`` and passed to :func:`noisy_linear_exit_time`,
    for data that keep ``(μ0, τ0)`` and not the overlaps (the result store of
    :mod:`mdlib.sweeps`).

    Parameters
    ----------
    p, d, gamma, delta, T :
        As in :func:`noisy_linear_exit_time`.
    mu0, tau0 : array_like, shape (n_starts,)
        ``μ0 = d Σ_j m_j(0)²`` and ``τ0 = d Σ_{j≠l} Q_jl(0)²`` of each start.
    **kwargs :
        ``method``, ``n_noise``, ``dt``, ``seed`` of :func:`noisy_linear_exit_time`.

    Returns
    -------
    ndarray, shape (n_starts,)

    Examples
    --------
    >>> from mdlib.noise import noisy_linear_exit_time, noisy_linear_exit_time_mu0
    >>> t = noisy_linear_exit_time_mu0(1, 3000, 0.1, 0.0, 0.01, [0.5, 2.0])
    >>> bool(np.allclose(t, noisy_linear_exit_time(1, 3000, 0.1, 0.0, 0.01, [0.5**0.5 / 3000**0.5,
    ...                                                                        -(2 / 3000)**0.5])))
    True
    """
    p = check_int("p", p, 1)
    d = check_int("d", d, 1)
    mu0 = np.asarray(mu0, dtype=float)
    if mu0.ndim != 1 or not np.all(np.isfinite(mu0)) or np.any(mu0 < 0):
        raise ValueError("mu0 must be a 1-d array of finite values >= 0")
    m0 = np.zeros((mu0.size, p))
    m0[:, 0] = np.sqrt(mu0 / d)
    return noisy_linear_exit_time(p, d, gamma, delta, T, m0, tau0, **kwargs)


def exit_time_sgd_p1(m0, d, gamma, delta, T):
    r"""Linear-noise prediction of the mean SGD exit time at ``p = 1`` from ``m(0) = m0``.

    The exact mean first-passage time of the noisy-linear model (App. F,
    Eqs. 50–51; :func:`noisy_linear_exit_time` with ``method="exact"``)
    plus the nonlinear correction of Eq. 7 (the exact ODE exit time
    :func:`mdlib.theory.exit_time_ode_p1` minus its linearisation
    ``log[(T + (1 - T)m0²)/m0²]/(2ω_M)``):

    .. math::

        t^{\rm SGD}_{\rm ext}(m_0) \approx \frac{2}{\omega_M}\big[G(kb) - G(k|m_0|)\big]
        + t^{\rm ODE}_{\rm ext}(m_0) - \frac{1}{2\omega_M}\log\frac{T + (1 - T)m_0^2}{m_0^2}.

    The neglected terms (finite-d drift corrections, the m-dependence of
    the noise) are of relative order ``1/(T d)``.

    Parameters
    ----------
    m0 : array_like
        Initial overlaps, ``0 < |m0| < 1``.
    d : int
    gamma, delta, T : float

    Returns
    -------
    ndarray (or float for scalar input)
    """
    _, d, gamma, delta, T, _ = _exit_args(1, d, gamma, delta, T)
    m0 = np.asarray(m0, dtype=float)
    if not np.all(np.isfinite(m0)) or np.any(np.abs(m0) >= 1) or np.any(m0 == 0):
        raise ValueError("m0 must be finite with 0 < |m0| < 1")
    mu, _ = ou_parameters_p1(d, gamma, delta)  # ω_M at p = 1
    t_ou = _exit_time_ou_p1(m0, d, gamma, delta, T)
    t_lin = np.log((T + (1 - T) * m0**2) / m0**2) / (2 * mu)
    t = t_ou + exit_time_ode_p1(m0, gamma, delta, T) - t_lin
    return t if np.ndim(t) else float(t)
