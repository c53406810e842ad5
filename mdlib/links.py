r"""Polynomial single-index targets and the information exponent (beyond the paper).

The paper studies one target, ``σ(z) = z²``.  This module treats any
polynomial link ``σ``, in the book's conventions (:mod:`mdlib.problem`):
data ``x ~ N(0, I_d/d)``, teacher ``w*`` on the sphere of radius ``sqrt(d)``,
label ``y = σ(w*·x) + sqrt(Δ) z``, matched student
``f(x) = (1/p) Σ_j a_j σ(w_j·x)``, loss ``(f - y)²/2``, projected (spherical)
one-pass SGD with learning rate ``γ`` and time ``t = ν γ/(p d)``.

**Hermite basis.**  A link is given by its coefficients in the probabilists'
Hermite polynomials ``He_k`` (``He_0 = 1``, ``He_1 = z``, ``He_2 = z² - 1``,
``He_3 = z³ - 3z``, ...),

.. math::  \sigma(z) = \sum_{k=0}^{K} c_k\, \mathrm{He}_k(z),

and every Gaussian expectation below follows from Mehler's formula: for
unit-variance Gaussians ``u, v`` with correlation ``ρ``,

.. math::  \mathbb{E}[\mathrm{He}_k(u)\,\mathrm{He}_l(v)] = \delta_{kl}\, k!\, \rho^k ,
   \qquad\text{hence}\qquad
   \mathbb{E}[F(u)\,G(v)] = \sum_k F_k\, G_k\, k!\, \rho^k

for polynomials ``F = Σ F_k He_k`` and ``G = Σ G_k He_k``.  The *information
exponent* ``k*`` is the smallest ``k >= 1`` with ``c_k ≠ 0`` (Ben Arous,
Gheissari and Jagannath, JMLR 2021 — BAGJ below).  The paper's link is
``z² = He_2 + He_0``, so ``k* = 2``.

**What is computed, and how.**  On the sphere every local field has unit
variance, so the population risk (any ``p``) is a function of the
correlations alone (:func:`population_risk`).  At ``p = 1`` the increments
of ``m`` per SGD step are polynomials in the fields ``(λ, λ*)`` and the
label noise ``z``; their mean (the ODE drift, :func:`drift_p1`) and variance
(the SDE diffusion, :func:`diffusion_p1`) are sums of terms
``E[F(λ) G(λ*)] E[z^n]``, each given exactly by Mehler's formula.  No
Monte Carlo and no quadrature: the drift and the variance come out as exact
polynomials in ``m`` (:func:`drift_polynomial`, :func:`variance_polynomial`).

**One SGD step at p = 1.**  With ``E = a σ(λ) - σ(λ*) - sqrt(Δ) z`` the
gradient is ``∇_w ℓ = a E σ'(λ) x``.  A step
``w ← w - γ a E σ'(λ) x`` moves ``m = w·w*/d`` and ``q = |w|²/d`` by
``dt × (𝓜, 𝒬)``, ``dt = γ/d``, with

.. math::

    \mathcal{M} = -a\,\mathcal{E}\,\sigma'(\lambda)\,\lambda_\star, \qquad
    \mathcal{Q} = -2a\,\mathcal{E}\,\sigma'(\lambda)\,\lambda + \gamma\, a^2\,\mathcal{E}^2\,\sigma'(\lambda)^2\,|x|^2,

and the projection back to the sphere gives, to first order in ``dt``
(``|x|² → 1``), the increment ``dt × X`` of ``m`` with

.. math::  X = \mathcal{M} - \frac{m}{2}\,\mathcal{Q}
   = a\,\mathcal{E}\,\sigma'(\lambda)\,(m\lambda - \lambda_\star)
     - \frac{\gamma a^2 m}{2}\,\mathcal{E}^2\,\sigma'(\lambda)^2 .

For ``σ(z) = z²`` (``σ' = 2z``) these are the variables of :mod:`mdlib.ode`
and :mod:`mdlib.sde`.

**The drift** (d → ∞) is ``dm/dt = E[X]``.  Stein's lemma on
``λ* = mλ + sqrt(1 - m²) ξ`` turns the first term into a derivative of the
correlation function ``κ(ρ) = E[σ(u)σ(v)] = Σ_k c_k² k! ρ^k``:

.. math::

    \frac{dm}{dt} = a\,(1 - m^2)\,\kappa'(m)
      - \frac{\gamma a^2 m}{2}\,\Big(\mathbb{E}\big[(a\sigma(\lambda) - \sigma(\lambda_\star))^2\sigma'(\lambda)^2\big]
      + \Delta\,\mathbb{E}[\sigma'(\lambda)^2]\Big),
    \qquad \kappa'(m) = \sum_{k\ge1} k\,k!\,c_k^2\,m^{k-1}.

The first term is spherical gradient flow on the population risk,
``-(1 - m²) dR/dm``; the second, of order ``γ``, is the second-order term of
the projection (the ``γ² |∇ℓ|²`` part of ``|w|²``), which always pulls ``m``
towards 0.  For ``σ = z²``: ``κ' = 4m``, the bracket is ``48(1 - m²) + 4Δ``,
and this is the paper's Eq. 7, ``dm/dt = m[4(1 - 6γ)(1 - m²) - 2γΔ]``.

**The diffusion** of the p = 1 SDE is ``(γ/d) Var[X]`` per unit time (the
variance per step is ``dt² Var[X]`` and there are ``1/dt`` steps per unit
time), the p = 1 case of :func:`mdlib.sde.increment_covariance` with
``projected=True``.  The O(γ/d) Itô and finite-d drift corrections of
:mod:`mdlib.sde` are left out.

**Mediocrity at a fixed learning rate** (:func:`mediocrity_expansion`).
Near ``m = 0`` the drift is

.. math::

    \frac{dm}{dt} = \beta\, m^{k_\star - 1} - \gamma\hat\alpha\, m + \dots, \qquad
    \beta = a\,k_\star\,k_\star!\,c_{k_\star}^2, \qquad
    \hat\alpha = \frac{a^2}{2}\Big(\mathbb{E}\big[(a\sigma(u) - \sigma(v))^2\sigma'(u)^2\big]
      + \Delta\,\mathbb{E}[\sigma'(u)^2]\Big)

with ``u, v`` independent standard Gaussians (``α̂ > 0`` for any
non-constant link).  Hence:

* ``k* = 1``: ``dm/dt(0) = a c_1² ≠ 0``, mediocrity is not even a fixed point;
* ``k* = 2``: ``m = 0`` is unstable iff ``γ < β/α̂`` (``= 8/(48 + 4Δ)``,
  the paper's ``γ < 1/6`` at ``Δ = 0``, for ``z²``);
* ``k* >= 3``: the linear term is ``-γα̂ m < 0`` for every ``γ > 0``, so
  **mediocrity is a stable fixed point of the ODE** — an attractor.  The
  ODE escapes only from ``|m| > m_c`` with, to leading order,
  ``m_c(γ) = (γα̂/β)^{1/(k*-2)}`` (:func:`critical_overlap` gives the exact
  root of the drift).  For odd ``k*`` (and ``a c_{k*}² > 0``) only the
  positive side escapes: at ``m < 0`` both terms push ``m`` back to 0.

**The learning rate of BAGJ** (:func:`bagj_learning_rate`).  A run starts
at ``|m_0| ~ d^{-1/2}``; the ODE escapes only if ``m_c(γ) < m_0``, i.e.

.. math::  \gamma < \gamma_c(d) = \frac{\beta}{\hat\alpha}\, d^{-(k_\star-2)/2} \qquad (k_\star \ge 3).

With ``γ = θ γ_c(d)``, ``0 < θ < 1``, substituting ``m = m_0 u`` and
``w = u^{k*-2}``,

.. math::

    t_{\rm ext} \simeq \int_{m_0} \frac{dm}{\beta m^{k_\star-1} - \gamma\hat\alpha m}
      = \frac{d^{(k_\star-2)/2}}{\beta}\,\frac{\ln\frac{1}{1-\theta}}{(k_\star-2)\,\theta},
    \qquad
    n = \frac{t_{\rm ext}\, d}{\gamma}
      \simeq d^{\,k_\star-1}\;\frac{\hat\alpha}{\beta^2}\;\frac{\ln\frac{1}{1-\theta}}{(k_\star-2)\,\theta^2}

samples: ``n ∝ d^{k*-1}``, the rate of BAGJ for ``k* >= 3``.  (The factor
``ln(1/(1-θ))/θ²`` is smallest at ``θ ≈ 0.715``; ``θ = 1/2`` costs 13 %
more samples and keeps the start well above ``m_c``.)  For ``k* = 2`` a fixed
``γ < β/α̂`` gives ``t ≈ ln(d)/(2(β - γα̂))`` and ``n ∝ d log d``; for
``k* = 1`` a fixed ``γ`` gives ``t = O(1)`` and ``n ∝ d``.  At ``k* >= 3``
with this schedule the SDE's accumulated variance over the escape,
``(γ/d) Var[X] t_ext``, is ``O(1/d) = O(m_0²)``: the noise is as large as
the initial overlap during the whole search phase, which is why the
stochastic and deterministic descriptions can differ at order one there.
From a random start ``sqrt(d) m_0 ~ N(0, 1)`` the ODE escapes only from
``m_0 > m_c = θ^{1/(k*-2)} d^{-1/2}`` (and, for even ``k*``, from
``m_0 < -m_c``): 31 % of the runs at ``k* = 3``, 48 % at ``k* = 4``
(``θ = 1/2``); the others stay at mediocrity forever unless the noise frees
them.

References
----------
G. Ben Arous, R. Gheissari and A. Jagannath, "Online stochastic gradient
descent on non-convex losses from high-dimensional inference", Journal of
Machine Learning Research 22(106):1–51, 2021 (arXiv:2003.10409).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.polynomial import Polynomial
from numpy.polynomial import hermite_e as H
from numpy.polynomial import polynomial as P
from scipy.integrate import quad

from ._random import run_generators
from ._validate import check_exit, check_int, check_problem, check_real
from .chain import _horner
from .problem import Problem, State
from .risk import _overlap_arrays
from .trajectory import Exit, Trajectory

__all__ = [
    "Link",
    "population_risk",
    "drift_polynomial",
    "variance_polynomial",
    "drift_p1",
    "diffusion_p1",
    "MediocrityExpansion",
    "mediocrity_expansion",
    "critical_overlap",
    "critical_learning_rate",
    "bagj_learning_rate",
    "sample_complexity_exponent",
    "ode_exit_time_p1",
    "sde_exit_times_p1",
    "integrate_ode_p1",
    "integrate_sde_p1",
]

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
MAX_DEGREE = 8  # the diffusion involves polynomials of degree 8K - 4 in the fields; tested up to K = 8


# --------------------------------------------------------------------------- #
# the link
# --------------------------------------------------------------------------- #
def _fmt(c):
    return f"{c:g}"


def _hermite_text(coef, tex):
    parts = []
    for k, c in enumerate(coef):
        if c == 0:
            continue
        he = (rf"\mathrm{{He}}_{{{k}}}" if tex else f"He{str(k).translate(_SUB)}") if k else ""
        if not he:
            num = _fmt(abs(c))
        elif abs(c) == 1:
            num = ""
        else:
            num = _fmt(abs(c)) + (r"\," if tex else " ")
        sign = "-" if c < 0 else "+"
        parts.append((sign, num + he))
    parts = parts[::-1]  # highest order first
    out = ("-" if parts[0][0] == "-" else "") + parts[0][1]
    for sign, s in parts[1:]:
        out += f" {sign} {s}"
    return out


@dataclass(frozen=True)
class Link:
    r"""A polynomial link ``σ(z) = Σ_k c_k He_k(z)`` (immutable, validated).

    Parameters
    ----------
    coefficients : sequence of float
        Hermite coefficients ``c_0, c_1, ..., c_K`` in the probabilists'
        basis (``E[He_k(u) He_l(u)] = δ_kl k!`` for ``u ~ N(0, 1)``).
        Trailing zeros are dropped.  At least one ``c_k``, ``k >= 1``, must be
        nonzero (a constant target carries no information), and the degree
        must be at most ``MAX_DEGREE = 8``.
    name : str, optional
        Label for plots (mathtext); default built from the coefficients.
        Not part of equality: ``Link.paper() == Link((1, 0, 1))``.

    Examples
    --------
    >>> from mdlib.links import Link
    >>> Link.hermite(3)
    Link(He₃)
    >>> Link.paper().information_exponent, Link.paper().monomial_coefficients
    (2, array([0., 0., 1.]))
    >>> float(Link.hermite(3)(2.0))  # He_3(2) = 8 - 6
    2.0
    """

    coefficients: tuple
    name: str | None = field(default=None, compare=False)

    def __post_init__(self):
        coef = self.coefficients
        if isinstance(coef, (str, bytes)) or not hasattr(coef, "__len__"):
            raise ValueError(f"coefficients must be a sequence of real numbers, got {coef!r}")
        arr = np.asarray(coef, dtype=object)
        if arr.ndim != 1:
            raise ValueError(f"coefficients must be a flat sequence of real numbers, got shape {arr.shape}")
        coef = [check_real(f"coefficients[{k}]", c) for k, c in enumerate(arr)]
        while coef and coef[-1] == 0.0:
            coef.pop()
        if not any(c != 0.0 for c in coef[1:]):
            raise ValueError("coefficients must have a nonzero Hermite coefficient c_k with k >= 1 "
                             "(a constant target carries no information)")
        if len(coef) - 1 > MAX_DEGREE:
            raise ValueError(f"the link's degree must be <= {MAX_DEGREE}, got {len(coef) - 1}")
        object.__setattr__(self, "coefficients", tuple(coef))
        if self.name is not None and not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")

    # constructors ---------------------------------------------------------
    @classmethod
    def hermite(cls, k: int, scale: float = 1.0, normalized: bool = False) -> Link:
        """``σ = scale × He_k`` (divided by ``sqrt(k!)`` if ``normalized``, so
        that ``E[σ(u)²] = scale²``); information exponent ``k``."""
        k = check_int("k", k, 1)
        scale = check_real("scale", scale)
        if normalized not in (True, False):
            raise ValueError(f"normalized must be True or False, got {normalized!r}")
        c = scale / math.sqrt(math.factorial(k)) if normalized else scale
        return cls((0.0,) * k + (c,))

    @classmethod
    def paper(cls) -> Link:
        """The paper's link ``σ(z) = z² = He_2 + He_0`` (Eq. 2)."""
        return cls((1.0, 0.0, 1.0), name="$z^2$")

    @classmethod
    def from_monomials(cls, coefficients, name: str | None = None) -> Link:
        """The link ``σ(z) = Σ_k b_k z^k`` from its monomial coefficients ``b_0, b_1, ...``."""
        arr = np.asarray(coefficients, dtype=object)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"coefficients must be a non-empty flat sequence of real numbers, got {coefficients!r}")
        b = [check_real(f"coefficients[{k}]", c) for k, c in enumerate(arr)]
        return cls(tuple(float(c) for c in H.poly2herme(np.array(b, dtype=float))), name=name)

    # properties -----------------------------------------------------------
    @property
    def degree(self) -> int:
        """Polynomial degree ``K``."""
        return len(self.coefficients) - 1

    @property
    def information_exponent(self) -> int:
        """``k* = min{k >= 1 : c_k ≠ 0}`` (BAGJ)."""
        return next(k for k, c in enumerate(self.coefficients) if k >= 1 and c != 0.0)

    @property
    def hermite_coefficients(self) -> np.ndarray:
        """``c_0, ..., c_K`` as a new array."""
        return np.array(self.coefficients, dtype=float)

    @property
    def monomial_coefficients(self) -> np.ndarray:
        """``b_0, ..., b_K`` with ``σ(z) = Σ b_k z^k`` (lowest order first, for Horner)."""
        return H.herme2poly(self.hermite_coefficients)

    @property
    def derivative_monomial_coefficients(self) -> np.ndarray:
        """Monomial coefficients of ``σ'`` (lowest order first)."""
        return P.polyder(self.monomial_coefficients)

    @property
    def label(self) -> str:
        """Mathtext label for plots, e.g. ``$\\mathrm{He}_{3}$``."""
        return self.name if self.name is not None else f"${_hermite_text(self.coefficients, True)}$"

    def __repr__(self) -> str:
        return f"Link({_hermite_text(self.coefficients, False)})"

    # evaluation -----------------------------------------------------------
    def __call__(self, z):
        """``σ(z)``, elementwise (Horner on the monomial coefficients)."""
        return P.polyval(np.asarray(z, dtype=float), self.monomial_coefficients)

    def derivative(self, z):
        """``σ'(z)``, elementwise."""
        return P.polyval(np.asarray(z, dtype=float), self.derivative_monomial_coefficients)

    def correlation(self, rho):
        r"""``κ(ρ) = E[σ(u) σ(v)] = Σ_k c_k² k! ρ^k`` for unit Gaussians with
        correlation ``ρ`` (Mehler's formula)."""
        return P.polyval(np.asarray(rho, dtype=float), _kappa(self))


def _check_link(link):
    if not isinstance(link, Link):
        raise ValueError(f"link must be a Link, got {type(link).__name__}")
    return link


def _kappa(link):
    """Monomial coefficients (in ρ) of the correlation function κ."""
    return np.array([c * c * math.factorial(k) for k, c in enumerate(link.coefficients)])


def _hexp(F):
    """``E[F(u)]``, u ~ N(0, 1), for F in the Hermite basis."""
    return float(F[0]) if len(F) else 0.0


def _hnorm2(F):
    """``E[F(u)²]`` for F in the Hermite basis."""
    return float(sum(f * f * math.factorial(k) for k, f in enumerate(F)))


# --------------------------------------------------------------------------- #
# population risk, any p
# --------------------------------------------------------------------------- #
def population_risk(link: Link, m, Q, a, delta):
    r"""Population risk ``R = E[(f - y)²]/2`` for a polynomial link on the sphere, any ``p``.

    With every field of unit variance (``Q_jj = 1``), Mehler's formula gives

    .. math::

        \mathcal{R} = \frac{\Delta}{2} + \frac{\kappa(1)}{2}
          - \frac{1}{p}\sum_j a_j\,\kappa(m_j)
          + \frac{1}{2p^2}\sum_{j,l} a_j a_l\,\kappa(Q_{jl}),
        \qquad \kappa(\rho) = \sum_k c_k^2\, k!\, \rho^k .

    For ``σ = z²``, ``κ(ρ) = 1 + 2ρ²`` and this is the paper's Eq. 6 at
    ``Q_jj = 1`` (:func:`mdlib.population_risk`).  At ``p = 1``, ``a = 1``,
    ``R - Δ/2 = κ(1) - κ(m)``: its first ``k* - 1`` derivatives vanish at
    ``m = 0``.

    Parameters
    ----------
    link : Link
    m : array_like, shape (..., p)
    Q : array_like, shape (..., p, p)
        Must have unit diagonal (projected SGD).
    a : array_like, shape (..., p)
    delta : float

    Returns
    -------
    ndarray, shape (...)
    """
    _check_link(link)
    delta = check_real("delta", delta, nonnegative=True)
    m, Q, a, p = _overlap_arrays(m, Q, a)
    if not np.allclose(np.diagonal(Q, axis1=-2, axis2=-1), 1.0, rtol=0, atol=1e-10):
        raise ValueError("Q must have a unit diagonal (Q_jj = 1, weights on the sphere)")
    kap = _kappa(link)
    lin = np.sum(a * P.polyval(m, kap), axis=-1) / p
    quad_ = np.einsum("...j,...jl,...l->...", a, P.polyval(Q, kap), a) / (2 * p**2)
    return delta / 2 + kap.sum() / 2 - lin + quad_


# --------------------------------------------------------------------------- #
# exact Gaussian algebra: sums of c(m, γ, s) F(λ) G(λ*) z^n
# --------------------------------------------------------------------------- #
def _mono(value, m=0, g=0, s=0):
    """Coefficient ``value m^m γ^g s^s`` as a dense 3-d array (s = sqrt(Δ))."""
    c = np.zeros((m + 1, g + 1, s + 1))
    c[m, g, s] = value
    return c


def _padd(c1, c2):
    shape = tuple(max(a, b) for a, b in zip(c1.shape, c2.shape))
    out = np.zeros(shape)
    out[tuple(slice(0, n) for n in c1.shape)] += c1
    out[tuple(slice(0, n) for n in c2.shape)] += c2
    return out


def _pmul(c1, c2):
    out = np.zeros(tuple(a + b - 1 for a, b in zip(c1.shape, c2.shape)))
    for idx in zip(*np.nonzero(c1)):
        out[tuple(slice(i, i + n) for i, n in zip(idx, c2.shape))] += c1[idx] * c2
    return out


def _trim(F):
    F = list(F)
    while len(F) > 1 and F[-1] == 0.0:
        F.pop()
    return tuple(float(f) for f in F)


class _Sep:
    """A polynomial in (λ, λ*, z) as a sum of separable terms
    ``c(m, γ, s) F(λ) G(λ*) z^n`` (F, G in the Hermite basis, c a dense
    coefficient array in the powers of m, γ and s = sqrt(Δ))."""

    def __init__(self, terms):
        merged = {}
        for c, F, G, n in terms:
            key = (_trim(F), _trim(G), n)
            merged[key] = _padd(merged[key], c) if key in merged else c
        self.terms = [(c, F, G, n) for (F, G, n), c in merged.items() if np.any(c)]

    def __add__(self, other):
        return _Sep(self.terms + other.terms)

    def __neg__(self):
        return _Sep([(-c, F, G, n) for c, F, G, n in self.terms])

    def __sub__(self, other):
        return self + (-other)

    def __mul__(self, other):
        if isinstance(other, np.ndarray):
            return _Sep([(_pmul(c, other), F, G, n) for c, F, G, n in self.terms])
        return _Sep([(_pmul(c1, c2), H.hermemul(F1, F2), H.hermemul(G1, G2), n1 + n2)
                     for c1, F1, G1, n1 in self.terms for c2, F2, G2, n2 in other.terms])

    def expect(self):
        """``E[·]`` as a coefficient array in (m, γ, s): Mehler for (λ, λ*),
        ``E[z^n] = (n - 1)!!`` for the independent label noise."""
        out = np.zeros((1, 1, 1))
        for c, F, G, n in self.terms:
            if n % 2:
                continue
            zmom = float(math.prod(range(n - 1, 0, -2)))
            k = min(len(F), len(G))
            mehler = np.array([F[j] * G[j] * math.factorial(j) for j in range(k)]).reshape(k, 1, 1)
            out = _padd(out, zmom * _pmul(c, mehler))
        return out


def _increment(link, a):
    """The projected increment X of m per unit ``dt`` (module docstring) as a _Sep."""
    c = link.coefficients
    dc = tuple(H.hermeder(c))
    one, x = (1.0,), (0.0, 1.0)
    E = _Sep([(_mono(a), c, one, 0), (_mono(-1.0), one, c, 0), (_mono(-1.0, s=1), one, one, 1)])
    A = _Sep([(_mono(a, m=1), tuple(H.hermemulx(dc)), one, 0), (_mono(-a), dc, x, 0)])
    B = _Sep([(_mono(1.0), tuple(H.hermemul(dc, dc)), one, 0)])
    return E * A - (E * E * B) * _mono(a * a / 2, m=1, g=1)


def _to_delta(c):
    """(m, γ, s) array → (m, γ, Δ) array; odd powers of s vanish exactly."""
    if np.any(c[:, :, 1::2]):  # pragma: no cover - guards the algebra
        raise AssertionError("odd powers of sqrt(Delta) survived the expectation")
    out = c[:, :, ::2].copy()
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=64)
def _moments(link, a):
    """Exact (mean, variance) of X as coefficient arrays in (m, γ, Δ)."""
    X = _increment(link, a)
    mean = X.expect()
    second = (X * X).expect()
    var = _padd(second, -_pmul(mean, mean))
    return _to_delta(mean), _to_delta(var)


def _collapse(c, gamma, delta):
    """Coefficients in m at given (γ, Δ)."""
    g = gamma ** np.arange(c.shape[1])
    dl = delta ** np.arange(c.shape[2])
    out = np.trim_zeros(np.einsum("ijk,j,k->i", c, g, dl), "b")
    return out if out.size else np.zeros(1)


def _args(link, gamma, delta, a):
    _check_link(link)
    return (check_real("gamma", gamma, nonnegative=True), check_real("delta", delta, nonnegative=True),
            check_real("a", a))


# --------------------------------------------------------------------------- #
# ODE and SDE at p = 1
# --------------------------------------------------------------------------- #
def drift_polynomial(link: Link, gamma: float, delta: float = 0.0, a: float = 1.0) -> Polynomial:
    r"""The p = 1 ODE drift ``dm/dt`` as an exact polynomial in ``m``.

    .. math::

        \frac{dm}{dt} = a(1 - m^2)\,\kappa'(m)
          - \frac{\gamma a^2 m}{2}\Big(
            \mathbb{E}\big[(a\sigma(\lambda) - \sigma(\lambda_\star))^2\sigma'(\lambda)^2\big]
          + \Delta\,\mathbb{E}[\sigma'(\lambda)^2]\Big)

    (module docstring), computed as ``E[X]`` term by term with Mehler's
    formula.  For ``σ = z²`` it is Eq. 7, ``m[4(1 - 6γ)(1 - m²) - 2γΔ]``.

    Parameters
    ----------
    link : Link
    gamma : float
        Learning rate ``γ >= 0`` (``γ = 0``: spherical gradient flow).
    delta : float
        Label-noise variance ``Δ >= 0``.
    a : float
        Fixed second-layer weight (the matched student has ``a = 1``).

    Returns
    -------
    numpy.polynomial.Polynomial
    """
    gamma, delta, a = _args(link, gamma, delta, a)
    return Polynomial(_collapse(_moments(link, a)[0], gamma, delta))


def variance_polynomial(link: Link, gamma: float, delta: float = 0.0, a: float = 1.0) -> Polynomial:
    r"""``Var[X]`` of the projected increment of ``m`` per unit ``dt``, exact polynomial in ``m``.

    ``X = a E σ'(λ)(mλ - λ*) - (γa²m/2) E² σ'(λ)²`` (module docstring); the
    SDE's diffusion is ``(γ/d) Var[X]`` (:func:`diffusion_p1`).  For
    ``σ = z²`` this is ``increment_covariance(problem, m, projected=True)``
    of :mod:`mdlib.sde` at p = 1.

    Returns
    -------
    numpy.polynomial.Polynomial

    Notes
    -----
    Evaluated in the power basis, the polynomial loses relative accuracy
    where ``Var[X]`` is much smaller than its coefficients: near ``m = 1``
    at ``Δ = 0``, ``a = 1`` (where ``Var[X] → 0``) the relative error is
    about 1e-10 at ``m = 0.999`` (1e-13 elsewhere, checked against 40-digit
    quadrature up to degree 8).
    """
    gamma, delta, a = _args(link, gamma, delta, a)
    return Polynomial(_collapse(_moments(link, a)[1], gamma, delta))


def drift_p1(link: Link, m, gamma: float, delta: float = 0.0, a: float = 1.0):
    r"""ODE drift ``dm/dt`` of projected SGD at p = 1 for a polynomial link (d → ∞).

    .. math::

        \frac{dm}{dt} = a(1 - m^2)\sum_{k\ge1} k\,k!\,c_k^2\,m^{k-1}
          - \frac{\gamma a^2 m}{2}\Big(
            \mathbb{E}\big[(a\sigma(\lambda) - \sigma(\lambda_\star))^2\sigma'(\lambda)^2\big]
          + \Delta\,\mathbb{E}[\sigma'(\lambda)^2]\Big),

    with ``(λ, λ*)`` unit Gaussians of correlation ``m``.  For ``σ = z²`` this
    is the paper's Eq. 7 (:func:`mdlib.drift_p1`).

    Parameters
    ----------
    link : Link
    m : array_like
        Overlaps, ``|m| <= 1``.
    gamma, delta, a : float
        See :func:`drift_polynomial`.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> from mdlib.links import Link, drift_p1
    >>> round(float(drift_p1(Link.paper(), 0.5, gamma=0.1)), 12)  # Eq. 7: 0.5 * 4 * 0.4 * 0.75
    0.6
    """
    poly = drift_polynomial(link, gamma, delta, a)
    return P.polyval(np.asarray(m, dtype=float), poly.coef)


def diffusion_p1(link: Link, m, gamma: float, delta: float = 0.0, *, d: int, a: float = 1.0):
    r"""Diffusion coefficient of ``m`` in the p = 1 SDE: variance per unit time, ``(γ/d) Var[X]``.

    One SGD step moves ``m`` by ``dt X`` (``dt = γ/d``) to leading order, so
    over a time ``h`` (``h/dt`` steps) the variance grows by
    ``h dt Var[X]``:

    .. math::  dm = \mathbb{E}[X]\,dt + \sqrt{\frac{\gamma}{d}\,\mathrm{Var}[X]}\;dB_t .

    At ``m = 0``, ``Var[X] = a² E[E² σ'(λ)² λ*²]``; for ``σ = z²`` this is
    ``48 + 4Δ`` (App. F, :func:`mdlib.theory.ou_parameters_p1`).

    Parameters
    ----------
    link : Link
    m : array_like
    gamma, delta : float
    d : int
        Input dimension.
    a : float

    Returns
    -------
    ndarray
    """
    d = check_int("d", d, 1)
    poly = variance_polynomial(link, gamma, delta, a)
    return gamma / d * P.polyval(np.asarray(m, dtype=float), poly.coef)


# --------------------------------------------------------------------------- #
# mediocrity and the critical overlap
# --------------------------------------------------------------------------- #
class MediocrityExpansion(NamedTuple):
    r"""Leading terms of the p = 1 drift near ``m = 0``:
    ``dm/dt = constant + (signal_linear - contraction) m + signal m^{k*-1} + ...``.

    Attributes
    ----------
    k : int
        Information exponent ``k*``.
    signal : float
        ``β = a k* k*! c_{k*}²``, coefficient of ``m^{k*-1}`` in ``a(1 - m²)κ'(m)``.
    contraction : float
        ``γ α̂ = (γ a²/2)(E[(aσ(u) - σ(v))² σ'(u)²] + Δ E[σ'(u)²])``, u, v independent.
    linear : float
        Total coefficient of ``m`` in the drift.
    constant : float
        Drift at ``m = 0`` (``a c_1²``; nonzero only for ``k* = 1``).
    fixed_point : bool
        ``m = 0`` is a fixed point of the ODE (``k* >= 2``).
    stable : bool
        It is a stable one (``linear < 0``; always for ``k* >= 3``).
    m_c : float
        Leading-order critical overlap ``(γα̂/β)^{1/(k*-2)}`` for ``k* >= 3``;
        0 when mediocrity is unstable or not a fixed point; ``inf`` for
        ``k* = 2`` with ``γ >= β/α̂`` (no escape).
    """

    k: int
    signal: float
    contraction: float
    linear: float
    constant: float
    fixed_point: bool
    stable: bool
    m_c: float


def _alpha_hat(link, delta, a):
    """``α̂ = (a²/2)(E[(aσ(u) - σ(v))²σ'(u)²] + Δ E[σ'(u)²])`` for independent u, v."""
    c = np.array(link.coefficients)
    dc = H.hermeder(c)
    dc2 = H.hermemul(dc, dc)
    e_indep = (a * a * _hexp(H.hermemul(H.hermemul(c, c), dc2)) - 2 * a * c[0] * _hexp(H.hermemul(c, dc2))
               + _hnorm2(c) * _hexp(dc2))
    return 0.5 * a * a * (e_indep + delta * _hnorm2(dc))


def mediocrity_expansion(link: Link, gamma: float, delta: float = 0.0, a: float = 1.0) -> MediocrityExpansion:
    r"""Expansion of the p = 1 drift near mediocrity at a fixed learning rate.

    .. math::

        \frac{dm}{dt} = a c_1^2 + \beta\,m^{k_\star-1} - \gamma\hat\alpha\,m + \dots,\qquad
        \beta = a\,k_\star\,k_\star!\,c_{k_\star}^2,

    ``γα̂`` from the second-order term of the projection (module docstring).
    For ``k* >= 3`` the linear term is ``-γα̂ m < 0``: **mediocrity is a
    stable fixed point** at every ``γ > 0``, and the ODE escapes only from
    ``m > m_c ≈ (γα̂/β)^{1/(k*-2)}``.  The coefficients are computed from
    the Hermite coefficients directly (not from :func:`drift_polynomial`,
    against which the tests check them).

    Parameters
    ----------
    link : Link
    gamma, delta, a : float

    Returns
    -------
    MediocrityExpansion
    """
    gamma, delta, a = _args(link, gamma, delta, a)
    k = link.information_exponent
    c = link.coefficients
    beta = a * k * math.factorial(k) * c[k] ** 2
    contraction = gamma * _alpha_hat(link, delta, a)
    signal_linear = a * 2 * 2 * c[2] ** 2 if len(c) > 2 else 0.0  # the m-term of a(1 - m²)κ'(m)
    linear = signal_linear - contraction
    constant = a * c[1] ** 2 if len(c) > 1 else 0.0
    fixed_point = k >= 2
    stable = fixed_point and linear < 0
    if k >= 3:
        m_c = (contraction / beta) ** (1.0 / (k - 2)) if beta > 0 else math.inf
    elif k == 2 and stable:
        m_c = math.inf
    else:
        m_c = 0.0
    return MediocrityExpansion(int(k), float(beta), float(contraction), float(linear), float(constant),
                               bool(fixed_point), bool(stable), float(m_c))


def _real_roots_in(poly_coef, lo, hi):
    """Sorted real roots of a polynomial in the open interval (lo, hi)."""
    coef = np.trim_zeros(np.asarray(poly_coef, dtype=float), "b")
    if coef.size <= 1:
        return np.array([])
    r = P.polyroots(coef)
    scale = max(1.0, np.max(np.abs(r)))
    r = r[np.abs(r.imag) <= 1e-9 * scale].real
    return np.sort(r[(r > lo) & (r < hi)])


def _polish(coef, r):
    """A few Newton steps on a root (polyroots is accurate to ~1e-8 for multiple-ish roots)."""
    dcoef = P.polyder(coef)
    for _ in range(3):
        f, df = P.polyval(r, coef), P.polyval(r, dcoef)
        if df == 0:
            break
        r = r - f / df
    return r


def critical_overlap(link: Link, gamma: float, delta: float = 0.0, a: float = 1.0, side: int = 1) -> float:
    r"""Smallest ``|m|`` on one side above which the p = 1 ODE leaves mediocrity (exact).

    The drift ``b(m)`` (:func:`drift_polynomial`) is followed from ``m = 0``
    in the direction ``side``: the result is ``0`` if ``side·b`` is positive
    just off ``m = 0`` (mediocrity unstable, or ``k* = 1``), else the first
    root ``m_c`` of ``b`` in ``(0, 1)`` where ``side·b`` turns positive
    (the ODE started beyond it escapes, started below it returns to 0), and
    ``inf`` if there is none (no escape at this learning rate).  For
    ``k* >= 3`` and small ``γ``, ``m_c ≈ (γα̂/β)^{1/(k*-2)}``
    (:func:`mediocrity_expansion`).

    Parameters
    ----------
    link : Link
    gamma, delta, a : float
    side : {1, -1}
        Look at ``m > 0`` (default) or ``m < 0`` (returned as ``|m_c|``).

    Returns
    -------
    float
    """
    if side not in (1, -1):
        raise ValueError(f"side must be 1 or -1, got {side!r}")
    coef = drift_polynomial(link, gamma, delta, a).coef.copy()
    coef = coef * side * float(side) ** np.arange(coef.size)  # h(u) = side * b(side * u)
    nz = np.nonzero(np.abs(coef) > 1e-14 * np.max(np.abs(coef)))[0]
    if nz.size == 0:
        return math.inf
    # the drift's sign on each interval between its roots in (0, 1), from 0 outwards
    edges = np.concatenate([[0.0], [_polish(coef, r) for r in _real_roots_in(coef, 0.0, 1.0)], [1.0]])
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi - lo > 1e-12 and P.polyval(0.5 * (lo + hi), coef) > 0:
            return float(lo)
    return math.inf


def critical_learning_rate(link: Link, m0: float, m1: float, delta: float = 0.0, a: float = 1.0) -> float:
    r"""Largest ``γ`` at which the p = 1 ODE drift is positive on the whole path ``[m0, m1]``.

    The drift is linear in ``γ``, ``b(m) = S(m) - γ G(m)`` with the signal
    ``S(m) = a(1 - m²)κ'(m)`` and ``G(m) = (a²m/2)B(m) > 0`` for ``m > 0``, so
    the ODE started at ``m0`` reaches ``m1`` iff

    .. math::  \gamma < \gamma_c(m_0, m_1) = \min_{m_0 \le m \le m_1} \frac{S(m)}{G(m)} ,

    computed exactly (endpoints and the roots of ``S'G - SG'``).  For
    ``k* >= 3`` and small ``m0`` the minimum is at ``m0``:
    ``γ_c ≈ (β/α̂) m0^{k*-2}``.  Returns 0 if ``S <= 0`` somewhere on the path.

    Parameters
    ----------
    link : Link
    m0, m1 : float
        ``0 < m0 < m1 <= 1``.
    delta, a : float

    Returns
    -------
    float
    """
    _check_link(link)
    m0 = check_real("m0", m0)
    m1 = check_real("m1", m1)
    if not 0 < m0 < m1 <= 1:
        raise ValueError(f"need 0 < m0 < m1 <= 1, got m0 = {m0}, m1 = {m1}")
    delta = check_real("delta", delta, nonnegative=True)
    a = check_real("a", a)
    mean = _moments(link, a)[0]
    S = _collapse(mean, 0.0, delta)
    G = -_collapse(mean[:, 1:2, :], 1.0, delta)  # the coefficient of γ (the drift is linear in γ)
    num = P.polysub(P.polymul(P.polyder(S), G), P.polymul(S, P.polyder(G)))
    cand = np.concatenate([[m0, m1], _real_roots_in(num, m0, m1)])
    s_val, g_val = P.polyval(cand, S), P.polyval(cand, G)
    if np.any(s_val <= 0):
        return 0.0
    if np.any(g_val <= 0):  # pragma: no cover - G > 0 for m > 0 unless the link is degenerate
        raise ValueError("the O(γ) term of the drift vanishes on the path")
    return float(np.min(s_val / g_val))


def bagj_learning_rate(link: Link, d, theta: float = 0.5, m_end: float = 0.5, delta: float = 0.0, a: float = 1.0):
    r"""The learning rate ``γ(d)`` of the information-exponent schedule (BAGJ), in this book's units.

    ``γ(d) = θ γ_c(m0, m_end)`` (:func:`critical_learning_rate`) with the
    typical initial overlap ``m0 = d^{-1/2}``: a fraction ``θ`` of the
    largest ``γ`` at which the ODE started at ``m0`` reaches the overlap
    ``m_end`` (weak recovery; default 1/2).  For ``k* >= 3`` the bottleneck
    is the start, and to leading order

    .. math::  \gamma(d) = \theta\,\frac{\beta}{\hat\alpha}\,d^{-(k_\star-2)/2},

    the step size ``∝ d^{-(k*-2)/2}`` of Ben Arous, Gheissari and Jagannath
    (JMLR 22(106), 2021); the number of samples is then
    ``n = t d/γ ≈ d^{k*-1} (α̂/β²) ln(1/(1-θ))/((k*-2)θ²)`` (module
    docstring).  For ``k* = 2`` it is a constant ``≈ θ β/α̂`` (``θ/6`` for
    ``z²`` at ``Δ = 0``) and ``n ∝ d log d``; for ``k* = 1`` a constant set by
    the whole path up to ``m_end``, and ``n ∝ d``.

    Parameters
    ----------
    link : Link
    d : int or array_like of int
        Input dimension(s), ``d^{-1/2} < m_end``.
    theta : float
        Fraction of the critical learning rate, ``0 < θ < 1``.  Default 1/2:
        the ODE from ``m0`` keeps a margin (its critical overlap is
        ``θ^{1/(k*-2)} m0`` for ``k* >= 3``), and the leading-order sample
        count is within 13 % of its minimum (at ``θ ≈ 0.715``).
    m_end : float
        End of the path on which the drift must stay positive, ``0 < m_end <= 1``.
    delta, a : float

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> from mdlib.links import Link, bagj_learning_rate
    >>> round(bagj_learning_rate(Link.paper(), 1000), 4)  # θ × 1/6 for z² at Δ = 0
    0.0833
    """
    _check_link(link)
    theta = check_real("theta", theta)
    if not 0 < theta < 1:
        raise ValueError(f"theta must be in (0, 1), got {theta}")
    m_end = check_real("m_end", m_end)
    if not 0 < m_end <= 1:
        raise ValueError(f"m_end must be in (0, 1], got {m_end}")
    d_arr = np.asarray(d)
    out = []
    for di in d_arr.ravel():
        di = check_int("d", di.item() if isinstance(di, np.generic) else di, 3)
        m0 = 1.0 / math.sqrt(di)
        if m0 >= m_end:
            raise ValueError(f"d = {di} is too small: the start d^(-1/2) = {m0:.3g} is not below m_end = {m_end}")
        out.append(theta * critical_learning_rate(link, m0, m_end, delta, a))
    out = np.array(out).reshape(d_arr.shape)
    return float(out) if out.ndim == 0 else out


def sample_complexity_exponent(link: Link) -> tuple[int, int]:
    r"""Predicted scaling ``n ∝ d^e (log d)^l`` of online SGD (BAGJ), as ``(e, l)``.

    ``(1, 0)`` for ``k* = 1``, ``(1, 1)`` for ``k* = 2``, ``(k* - 1, 0)`` for
    ``k* >= 3`` (with :func:`bagj_learning_rate`; derivation in the module
    docstring).
    """
    k = _check_link(link).information_exponent
    return (1, 0) if k == 1 else (1, 1) if k == 2 else (k - 1, 0)


# --------------------------------------------------------------------------- #
# exit times at p = 1: ODE (exact quadrature) and SDE (Euler–Maruyama)
# --------------------------------------------------------------------------- #
def _gap_poly(link, exit, a, delta):
    """``(g, level_of)``: the gap is ``g(m) - level``, ``<= 0`` once exited;
    ``level_of(m0)`` gives each run's level (Eq. 9 at p = 1 on the sphere)."""
    T = exit.T
    if exit.criterion == "max_m":
        return np.array([0.0, 0.0, -1.0]), lambda m0: -(T + (1 - T) * m0**2)
    # excess risk R - Δ/2 = (a² + 1) κ(1)/2 - a κ(m) at p = 1, Q = 1
    kap = _kappa(link)
    g = -a * kap
    g[0] += (a * a + 1) * kap.sum() / 2
    return g, lambda m0: (1 - T) * P.polyval(m0, g)


def ode_exit_time_p1(link: Link, m0, gamma: float, delta: float = 0.0, exit: Exit | None = None,
                     a: float = 1.0):
    r"""Exit time (Eq. 9) of the p = 1 ODE of a link from ``m(0) = m0``, by exact quadrature.

    The ODE ``dm/dt = b(m)`` is one-dimensional and autonomous, so ``m``
    moves monotonically towards the next root of ``b`` and

    .. math::  t_{\rm ext} = \int_{m_0}^{m_1} \frac{dm}{b(m)}

    where ``m1`` is the first point in the direction of motion at which the
    exit criterion holds; ``inf`` if a root of ``b`` comes first (e.g.
    ``0 < m0 < m_c`` at ``k* >= 3``).

    Parameters
    ----------
    link : Link
    m0 : float or array_like
        Initial overlaps, ``|m0| < 1``.
    gamma, delta : float
    exit : Exit, optional
        Default ``Exit(0.01, "max_m")``: ``m² >= T + (1 - T) m0²``.
        ``"risk"`` uses this link's excess risk ``R - Δ/2``.
    a : float

    Returns
    -------
    float or ndarray
    """
    exit = Exit(0.01, "max_m") if check_exit(exit) is None else exit
    b = drift_polynomial(link, gamma, delta, a).coef
    gap, level_of = _gap_poly(link, exit, check_real("a", a), delta)
    m0_arr = np.asarray(m0, dtype=float)
    if np.any(~np.isfinite(m0_arr)) or np.any(np.abs(m0_arr) >= 1):
        raise ValueError("m0 must be finite with |m0| < 1")
    out = np.empty(m0_arr.shape)
    for idx, x0 in np.ndenumerate(m0_arr):
        out[idx] = _ode_exit_one(b, gap, level_of(x0), x0)
    return float(out) if out.ndim == 0 else out


def _ode_exit_one(b, gap, level, x0):
    g = P.polysub(gap, [level])
    if P.polyval(x0, g) <= 0:
        return 0.0
    b0 = P.polyval(x0, b)
    if b0 == 0:
        return math.inf
    s = 1.0 if b0 > 0 else -1.0

    def along(c):  # coefficients in u of c(x0 + s u): the path, u = s (m - x0) > 0
        out = np.zeros(1)
        for ck in c[::-1]:
            out = P.polyadd(P.polymul(out, [x0, s]), [ck])
        return out

    # the first root of the drift and of the gap along the direction of motion
    ub = _real_roots_in(along(b), 0.0, 2.0)
    ug = _real_roots_in(along(g), 0.0, 2.0)
    if ug.size == 0 or (ub.size and ub[0] <= ug[0]):
        return math.inf
    x1 = x0 + s * _polish(along(g), ug[0])
    val, _ = quad(lambda m: 1.0 / P.polyval(m, b), x0, x1, limit=200, epsabs=0.0, epsrel=1e-11)
    return float(val)


@njit(cache=True, nogil=True)
def _em_run_p1(m, rng, seg_t0, seg_steps, seg_h, seg_save, b, v, g, level, exit_mode, m_out):
    """Euler–Maruyama for ``dm = b(m) dt + sqrt(v(m)) dB`` (polynomials, lowest
    order first), in the segments of :func:`mdlib.integrate_sde`.

    Segment ``s`` starts at ``seg_t0[s]`` and makes ``seg_steps[s]`` steps of
    size ``seg_h[s]``; at its end ``m`` is saved at index ``seg_save[s]`` of
    ``m_out`` (if ``>= 0``).  With ``exit_mode`` the run stops at the first
    step where ``g(m) - level <= 0``, the crossing located by linear
    interpolation of the gap inside the step.

    Returns ``(status, t)``: status 0 (ran to the end), 1 (exited at ``t``),
    2 (diverged, non-finite or ``|m| > 1e6``, in the step ending at ``t``).
    """
    gap_old = _horner(g, m) - level if exit_mode else 1.0
    for s in range(seg_steps.shape[0]):
        h = seg_h[s]
        sqh = np.sqrt(h)
        for i in range(seg_steps[s]):
            var = _horner(v, m)
            if var < 0.0:
                var = 0.0
            m = m + _horner(b, m) * h + np.sqrt(var) * sqh * rng.standard_normal()
            t_old = seg_t0[s] + i * h
            if not np.isfinite(m) or abs(m) > 1e6:
                return 2, t_old + h
            if exit_mode:
                gap = _horner(g, m) - level
                if gap <= 0.0:
                    return 1, t_old + h * gap_old / (gap_old - gap)
                gap_old = gap
        if seg_save[s] >= 0:
            m_out[seg_save[s]] = m
    return 0, np.inf


def _p1_problem(problem, init, what):
    """Checks shared by the p = 1 integrators; returns ``(link, a)``."""
    check_problem(problem)
    if problem.p != 1 or not problem.spherical or problem.train_second_layer:
        raise ValueError(f"{what} of a link needs p = 1, spherical=True and a fixed second layer; got "
                         f"p = {problem.p}, spherical = {problem.spherical}, train_second_layer = "
                         f"{problem.train_second_layer}")
    if not isinstance(init, State):
        raise ValueError(f"init must be a State (from random_init or make_state), got {type(init).__name__}")
    init.check_matches(problem)
    a_all = init.a[:, 0]
    if np.any(a_all != a_all[0]):
        raise ValueError("all runs of init must share the second-layer weight a")
    return (Link.paper() if problem.link is None else problem.link), float(a_all[0])


def _trajectory_p1(problem, link, t, m, a, method, diverged, t_exit, exit):
    """A :class:`~mdlib.trajectory.Trajectory` from saved overlaps ``m`` (runs, times)."""
    R, nt = m.shape
    risk = population_risk(link, m[..., None], np.ones((R, nt, 1, 1)), np.full((R, nt, 1), a), problem.delta)
    # (NaN where m is NaN: after the exit, or after a divergence)
    Q = np.where(np.isnan(m), np.nan, 1.0)[..., None, None]
    A = np.where(np.isnan(m), np.nan, a)[..., None]
    return Trajectory(t, m[..., None], Q, A, risk, problem, method, diverged, t_exit, exit)


def integrate_ode_p1(problem: Problem, init: State, t_max: float, t_save=None, rtol: float = 1e-9,
                     atol: float = 1e-12, method: str = "DOP853", exit: Exit | None = None) -> Trajectory:
    r"""The p = 1 ODE of ``problem.link``, ``dm/dt = b(m)`` (:func:`drift_polynomial`), as a Trajectory.

    :func:`mdlib.integrate_ode` calls this for a problem with a link (p = 1,
    projected SGD, fixed second layer).  The runs are integrated together by
    :func:`scipy.integrate.solve_ivp` (``method``, ``rtol``, ``atol``) and
    saved at ``t_save``; with ``exit``, each run's exit time is the exact
    quadrature of :func:`ode_exit_time_p1` (``inf`` beyond ``t_max``) and
    its saved values after the exit are NaN.

    Parameters
    ----------
    problem : Problem
        With ``p = 1``; ``problem.link`` (``None``: the paper's ``z²``).
    init : State
        One start per run, all with the same ``a``.
    t_max, t_save, rtol, atol, method, exit :
        As in :func:`mdlib.integrate_ode`.

    Returns
    -------
    Trajectory
        ``method="ode"``; ``Q = 1``; the risk of the link.
    """
    from scipy.integrate import solve_ivp

    from ._validate import check_choice, check_t_save
    from .trajectory import time_grid

    link, a = _p1_problem(problem, init, "integrate_ode")
    t_max = check_real("t_max", t_max, positive=True)
    rtol = check_real("rtol", rtol, positive=True)
    atol = check_real("atol", atol, positive=True)
    check_choice("method", method, ("DOP853", "RK45", "RK23", "Radau", "BDF", "LSODA"))
    t_save = check_t_save(t_save, t_max, time_grid)
    exit = check_exit(exit)
    b = drift_polynomial(link, problem.gamma, problem.delta, a).coef
    m0 = init.m[:, 0].astype(float)
    R = m0.size
    m = np.full((R, t_save.size), np.nan)
    if t_save.size:
        sol = solve_ivp(lambda t, y: P.polyval(y, b), (0.0, float(t_save[-1])), m0, method=method,
                        t_eval=t_save, rtol=rtol, atol=atol, vectorized=True)
        if not sol.success:  # pragma: no cover - a polynomial drift on [-1, 1] is tame
            raise RuntimeError(f"the ODE solver failed: {sol.message}")
        m[:, : sol.y.shape[1]] = sol.y
    t_exit = None
    if exit is not None:
        t_exit = np.asarray(ode_exit_time_p1(link, m0, problem.gamma, problem.delta, exit, a), dtype=float)
        t_exit = np.where(t_exit <= t_max, t_exit, np.inf).reshape(R)
        m[t_save[None, :] > t_exit[:, None]] = np.nan
    return _trajectory_p1(problem, link, t_save.copy(), m, a, "ode", np.zeros(R, bool), t_exit, exit)


def integrate_sde_p1(problem: Problem, init: State, t_max: float, dt: float = 1e-3, seed=None, t_save=None,
                     exit: Exit | None = None) -> Trajectory:
    r"""Euler–Maruyama for the p = 1 SDE of ``problem.link``, as a Trajectory.

    .. math::

        dm = b(m)\,dt + \sqrt{\frac{\gamma}{d}\,\mathrm{Var}[X](m)}\;dB_t

    with the exact drift :func:`drift_polynomial` and variance
    :func:`variance_polynomial` (polynomials in ``m``, evaluated by Horner in
    a numba kernel).  :func:`mdlib.integrate_sde` calls this for a problem
    with a link; the steps, the seeding (run ``i`` owns the ``i``-th
    generator spawned from ``seed``), the saves and the exit (linear
    interpolation of the gap inside the step where it changes sign) are
    those of :func:`mdlib.integrate_sde`, so for the paper's ``z²`` the two
    give the same paths (to rounding; the tests check it run by run).

    Parameters
    ----------
    problem : Problem
        With ``p = 1``; ``problem.link`` (``None``: the paper's ``z²``).
    init : State
        One start per run, all with the same ``a``.
    t_max, dt, seed, t_save, exit :
        As in :func:`mdlib.integrate_sde`.

    Returns
    -------
    Trajectory
        ``method="sde"``; ``Q = 1``; the risk of the link.

    Notes
    -----
    The O(γ/d) Itô and finite-d drift corrections of :mod:`mdlib.sde` are
    left out (as in ``integrate_sde`` without ``ito_correction``).  ``m`` is
    not clipped to ``[-1, 1]``: the exit thresholds of interest are well
    inside.
    """
    import warnings

    from ._validate import check_t_save
    from .trajectory import _em_segments, time_grid

    link, a = _p1_problem(problem, init, "integrate_sde")
    t_max = check_real("t_max", t_max, positive=True)
    dt = check_real("dt", dt, positive=True)
    t_save = check_t_save(t_save, t_max, time_grid)
    exit = check_exit(exit)
    b = np.ascontiguousarray(drift_polynomial(link, problem.gamma, problem.delta, a).coef)
    v = np.ascontiguousarray(problem.gamma / problem.d
                             * variance_polynomial(link, problem.gamma, problem.delta, a).coef)
    seg_t0, seg_steps, seg_h, seg_save = _em_segments(t_save, t_max, dt, exit is not None)  # as integrate_sde
    mode = 0
    g, level_of = np.zeros(1), (lambda m0: 0.0)
    if exit is not None:
        mode = 1
        g, level_of = _gap_poly(link, exit, a, problem.delta)
        g = np.ascontiguousarray(g)
    R, nt = init.n_runs, t_save.size
    m_out = np.full((R, nt), np.nan)
    t_exit = np.full(R, np.inf) if exit is not None else None
    diverged = np.zeros(R, dtype=bool)
    save0 = nt > 0 and t_save[0] == 0
    for r, rng in enumerate(run_generators(seed, R)):
        m0 = float(init.m[r, 0])
        if save0:
            m_out[r, 0] = m0
        level = float(level_of(m0))
        if exit is not None and P.polyval(m0, g) - level <= 0:
            t_exit[r] = 0.0
            continue
        if not seg_steps.size:
            continue
        status, t = _em_run_p1(m0, rng, seg_t0, seg_steps, seg_h, seg_save, b, v, g, level, mode, m_out[r])
        if status == 1:
            t_exit[r] = t
            m_out[r, t_save > t] = np.nan
        elif status == 2:
            diverged[r] = True
            m_out[r, t_save >= t] = np.nan
            if exit is not None:
                t_exit[r] = np.nan
    if diverged.any():
        warnings.warn(f"{diverged.sum()} of {R} SDE runs diverged", RuntimeWarning, stacklevel=2)
    return _trajectory_p1(problem, link, t_save.copy(), m_out, a, "sde", diverged, t_exit, exit)


def sde_exit_times_p1(link: Link, problem: Problem, init: State, exit: Exit, t_max: float, dt: float = 1e-3,
                      seed=None) -> np.ndarray:
    r"""Exit times (Eq. 9) of the p = 1 SDE of a polynomial link, by Euler–Maruyama.

    Short for ``integrate_sde_p1(Problem(..., link=link), init, t_max, dt,
    seed, t_save=(), exit=exit).t_exit`` (:func:`integrate_sde_p1`, which
    :func:`mdlib.integrate_sde` calls for a problem with a link): each run
    takes ``ceil(t_max/dt)`` equal steps and stops at the first step where the
    exit criterion holds.

    Parameters
    ----------
    link : Link
    problem : Problem
        ``p = 1``, projected (``spherical=True``), fixed second layer; gives
        ``d``, ``γ`` and ``Δ`` (its own link, if any, must be ``link``).
    init : State
        Initial conditions, one per run (``random_init(problem, n, seed)`` or
        ``make_state(problem, m0).repeat(n)``); all runs must share ``a``.
    exit : Exit
        ``Exit(T, "max_m")``: ``m² >= T + (1 - T) m0²`` (Eq. 9 at p = 1 on the
        sphere); ``Exit(T)`` (``"risk"``) uses this link's excess risk.
    t_max : float
        Runs not exited by ``t_max`` get ``inf``.
    dt : float
        Largest Euler–Maruyama step.
    seed : int, SeedSequence or None

    Returns
    -------
    ndarray, shape (n_runs,)
        Exit times; ``inf`` if not exited by ``t_max``, ``nan`` if diverged.
    """
    import dataclasses

    _check_link(link)
    check_problem(problem)
    if problem.link is not None and problem.link != link:
        raise ValueError(f"problem.link = {problem.link!r} is not link = {link!r}")
    if check_exit(exit) is None:
        raise ValueError("exit must be an Exit (mdlib.Exit(T, criterion)), got None")
    if problem.spherical:
        problem = dataclasses.replace(problem, link=link)
    return integrate_sde_p1(problem, init, t_max, dt, seed, t_save=(), exit=exit).t_exit
