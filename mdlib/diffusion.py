r"""Exit-time moments of a one-dimensional diffusion by the Dynkin quadrature.

For ``dm = b(m) dt + σ(m) dB`` with an odd drift and an even variance, the
moments of the exit time from ``(-a, a)`` started at ``m_0`` solve the
backward (Dynkin) equations ``½σ² u₁'' + b u₁' = -1`` and
``½σ² u₂'' + b u₂' = -2u₁`` with ``u(±a) = 0``; by symmetry ``u'(0) = 0``
and

.. math::

    \mathbb{E}[t_{\rm ext}\mid m_0] = J(a) - J(|m_0|), \qquad
    J(x) = \int_0^x\!dy \int_0^y \frac{2}{\sigma^2(z)}\,
        \exp\Big(-\!\int_z^y \frac{2b(v)}{\sigma^2(v)}\,dv\Big)\,dz ,

    \mathbb{E}[t_{\rm ext}^2\mid m_0] = 2\big[J(a)\,(J(a) - J(|m_0|)) - L(a) + L(|m_0|)\big],

with ``L(x) = ∫_0^x K``, ``K(y) = ∫_0^y (2/σ²(z)) J(z) exp(-∫_z^y 2b/σ²) dz``.
For a linear drift and a constant noise this is App. F's derivation of
Eq. 52 (:func:`mdlib.theory.ou_exit_time`).

:class:`DiffusionP1` applies it to the ``p = 1`` diffusion of projected
SGD (Eq. 34): the drift of Eq. 7 and the exact variance of the projected
increment of ``m`` (:func:`mdlib.sde.increment_covariance`), which keeps
what the Ornstein–Uhlenbeck approximation of App. F drops.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import check_int, check_problem, check_real, check_T
from .ode import drift_p1
from .problem import Problem
from .sde import increment_covariance
from .theory import exit_time_ode_p1, sample_mu_tau

__all__ = ["dynkin_tables", "DiffusionP1", "RandomStartExit", "random_start_exit"]


def dynkin_tables(x, b, s2):
    r"""The functions ``J`` and ``L`` of the Dynkin quadrature on a grid (module docstring).

    The inner integrals ``I(y) = ∫_0^y (2/σ²) e^{-∫_z^y 2b/σ²} dz`` and
    ``K(y)`` obey ``I' = 2/σ² - (2b/σ²) I``; they are advanced with an
    exponential integrator (midpoint values of ``2b/σ²`` and ``2/σ²`` on each
    cell), so that the steep factor never over- or underflows; ``J`` and
    ``L`` are their trapezoid integrals.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Increasing grid starting at ``x[0] = 0``.
    b, s2 : ndarray, shape (n,)
        Drift and variance rate (``> 0``) on the grid.

    Returns
    -------
    J, L : ndarray, shape (n,)
        ``E[t_ext | m0] = J(a) - J(|m0|)`` and
        ``E[t_ext² | m0] = 2[J(a)(J(a) - J(|m0|)) - L(a) + L(|m0|)]``.
    """
    x, b, s2 = (np.asarray(v, dtype=float) for v in (x, b, s2))
    if x.ndim != 1 or x.size < 2 or x[0] != 0 or np.any(np.diff(x) <= 0):
        raise ValueError("x must be an increasing 1-d grid starting at 0")
    if b.shape != x.shape or s2.shape != x.shape:
        raise ValueError(f"b and s2 must have the shape of x, {x.shape}")
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(s2)) and np.all(s2 > 0)):
        raise ValueError("b must be finite and s2 finite and > 0")
    h = np.diff(x)
    f = 2 * b / s2
    fm = 0.5 * (f[1:] + f[:-1])
    wm = 0.5 * (2 / s2[1:] + 2 / s2[:-1])
    e = np.exp(-fm * h)
    small = np.abs(fm * h) < 1e-8
    c = np.where(small, h, -np.expm1(-fm * h) / np.where(small, 1.0, fm))
    I, J, K = np.zeros(x.size), np.zeros(x.size), np.zeros(x.size)
    for k in range(x.size - 1):
        I[k + 1] = e[k] * I[k] + wm[k] * c[k]
        J[k + 1] = J[k] + 0.5 * h[k] * (I[k] + I[k + 1])
        K[k + 1] = e[k] * K[k] + wm[k] * 0.5 * (J[k] + J[k + 1]) * c[k]
    L = np.concatenate([[0.0], np.cumsum(0.5 * h * (K[1:] + K[:-1]))])
    return J, L


class DiffusionP1:
    r"""Exit-time moments of the ``p = 1`` diffusion of projected SGD (Eq. 34).

    ``dm = b(m) dt + σ(m) dB`` with the drift of Eq. 7,
    ``b(m) = m[4(1 - 6γ)(1 - m²) - 2γΔ]``, and
    ``σ²(m) = (γ/d) Var[δm]``, the exact variance of the projected increment
    ``δm = 𝓜 - (m/2)𝒬`` (App. G), computed at ``n_sigma`` points and
    interpolated linearly; the moments come from :func:`dynkin_tables` on
    ``n_grid`` points of ``[0, x_max]``.

    Parameters
    ----------
    problem : Problem
        ``p = 1``, projected SGD, fixed second layer.
    x_max : float
        End of the grid; must exceed every exit level ``a`` used.
    n_grid, n_sigma : int
        Points of the quadrature grid and of the variance table.

    Attributes
    ----------
    x, s2, J, L : ndarray, shape (n_grid,)
        The grid, the variance rate ``σ²`` and the Dynkin tables on it.

    Examples
    --------
    >>> import mdlib
    >>> from mdlib.diffusion import DiffusionP1
    >>> dif = DiffusionP1(mdlib.Problem(1, 3000, 0.1, 1e-4), 0.13)
    >>> mean, var = dif.moments(0.0, 0.01)  # from m = 0: close to Eq. 52
    >>> mu, s2 = mdlib.ou_parameters_p1(3000, 0.1, 1e-4)
    >>> bool(abs(mean / mdlib.ou_exit_time(mu, s2, 0.01) - 1) < 0.02)
    True
    """

    def __init__(self, problem: Problem, x_max: float, n_grid: int = 20001, n_sigma: int = 201):
        check_problem(problem)
        if problem.p != 1 or not problem.spherical or problem.train_second_layer:
            raise ValueError("DiffusionP1 needs p = 1, projected SGD and a fixed second layer")
        x_max = check_real("x_max", x_max, positive=True)
        if x_max > 1:
            raise ValueError(f"x_max must be <= 1 (|m| <= 1 on the sphere), got {x_max}")
        n_grid = check_int("n_grid", n_grid, 3)
        n_sigma = check_int("n_sigma", n_sigma, 2)
        self.problem = problem
        self.x = np.linspace(0.0, x_max, n_grid)
        xs = np.linspace(0.0, x_max, n_sigma)
        var_dm = [increment_covariance(problem, v, projected=True)[0, 0] for v in xs]
        self.s2 = problem.dt * np.interp(self.x, xs, var_dm)
        self.J, self.L = dynkin_tables(self.x, drift_p1(self.x, problem.gamma, problem.delta), self.s2)

    def _level(self, a):
        a = np.asarray(a, dtype=float)
        if np.any(a > self.x[-1]):
            raise ValueError(f"exit level {np.max(a):.4g} is beyond the grid (x_max = {self.x[-1]:.4g})")
        return a

    def moments(self, m0, T):
        """Mean and variance of the exit time (Eq. 9) from ``m0``.

        The exit level is ``a = sqrt(T + (1 - T) m0²)``; ``m0`` and ``T``
        are broadcast together.

        Returns
        -------
        mean, var : ndarray
        """
        T = np.asarray(T, dtype=float)
        if np.any(~(T > 0)) or np.any(~(T < 1)):
            raise ValueError("T must be in (0, 1)")
        x0 = np.abs(np.asarray(m0, float))
        a = self._level(np.sqrt(T + (1 - T) * x0**2))
        Ja, J0 = np.interp(a, self.x, self.J), np.interp(x0, self.x, self.J)
        La, L0 = np.interp(a, self.x, self.L), np.interp(x0, self.x, self.L)
        mean = Ja - J0
        return mean, 2 * (Ja * (Ja - J0) - La + L0) - mean**2

    def monitoring_bias(self, a, dt):
        r"""Delay of the mean exit time when the barrier ``a`` is checked every ``dt`` only.

        Discrete monitoring moves an absorbing barrier out by
        ``β σ(a) sqrt(dt)``, ``β = -ζ(1/2)/sqrt(2π) ≈ 0.5826``
        (Broadie–Glasserman); the delay is ``J(a + β σ sqrt(dt)) - J(a)``.
        This is the bias of exit times measured on an Euler–Maruyama path
        (:func:`mdlib.integrate_sde` with ``exit=``) of step ``dt``.
        """
        a = self._level(a)
        dt = check_real("dt", dt, positive=True)
        shifted = self._level(a + 0.5826 * np.sqrt(np.interp(a, self.x, self.s2) * dt))
        return np.interp(shifted, self.x, self.J) - np.interp(a, self.x, self.J)


@dataclass(frozen=True)
class RandomStartExit:
    r"""Exit-time law of the ``p = 1`` diffusion and of the ODE over the random start (see :func:`random_start_exit`).

    Attributes
    ----------
    mean : float
        ``E[t_ext]`` of the diffusion, averaged over the start.
    within : float
        ``E[Var(t_ext | m0)]``: the part of the variance due to the noise.
    between : float
        ``Var(E[t_ext | m0])``: the part due to the random start.
    ode_mean, ode_var : float
        Mean and variance of the ODE exit time (Eq. 7, closed form) over the start.
    diffusion : DiffusionP1
        The quadrature, on a grid that reaches every exit level of the samples
        (reusable for fixed starts with ``|m0|`` up to the largest sample).
    """

    mean: float
    within: float
    between: float
    ode_mean: float
    ode_var: float
    diffusion: DiffusionP1

    @property
    def shift(self) -> float:
        """``E[t_ext] - E[t_ext^ODE]``: how much earlier (< 0) the noise makes the exit, on average."""
        return self.mean - self.ode_mean


def random_start_exit(problem: Problem, T: float, n_samples: int = 200_000, seed=None) -> RandomStartExit:
    r"""Exit time (Eq. 9) of the ``p = 1`` diffusion (Eq. 34) and of the ODE, averaged over a random start.

    The start ``m0`` follows its exact finite-d law on the sphere
    (``d m0² = μ0``, :func:`mdlib.theory.sample_mu_tau`, ``n_samples``
    samples); the conditional mean and variance of the diffusion's exit time
    come from :class:`DiffusionP1`, and the law of total variance splits

    .. math::

        \mathrm{Var}(t_{\rm ext}) = \underbrace{\mathbb{E}[\mathrm{Var}(t_{\rm ext}\mid m^0)]}_{\rm within}
            + \underbrace{\mathrm{Var}(\mathbb{E}[t_{\rm ext}\mid m^0])}_{\rm between} .

    The ODE exit time from each sample is the closed form
    :func:`mdlib.theory.exit_time_ode_p1`.  The Monte Carlo error of the
    averages is about ``sd / sqrt(n_samples)`` (below 2e-3 with the default).

    Parameters
    ----------
    problem : Problem
        ``p = 1``, projected SGD, fixed second layer.
    T : float
        Threshold of Eq. 9, in ``(0, 1)``.
    n_samples : int
        Samples of the start.
    seed : int, SeedSequence or None
        Seed of the samples of ``m0``.

    Returns
    -------
    RandomStartExit

    Examples
    --------
    >>> import mdlib
    >>> r = mdlib.diffusion.random_start_exit(mdlib.Problem(1, 3000, 0.1, 1e-4), 0.01, 20_000, seed=0)
    >>> bool(-0.4 < r.shift < -0.2), bool(r.within > 5 * r.between)  # SGD's noise: earlier exits, most spread
    (True, True)
    """
    check_problem(problem)
    T = check_T(T)
    mu0, _ = sample_mu_tau(1, problem.d, n_samples, seed=seed)
    m0 = np.sqrt(mu0 / problem.d)
    dif = DiffusionP1(problem, max(1.3 * np.sqrt(T), 1.01 * np.sqrt(T + (1 - T) * np.max(m0**2))))
    u, v = dif.moments(m0, T)
    t_ode = exit_time_ode_p1(m0, problem.gamma, problem.delta, T)
    return RandomStartExit(float(u.mean()), float(v.mean()), float(u.var()), float(t_ode.mean()),
                           float(t_ode.var()), dif)
