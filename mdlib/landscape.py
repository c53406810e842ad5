r"""Geometry of the population risk at ``p = 1`` (App. H).

Conventions of the book (not those of App. H, see below): data
``x ~ N(0, I_d/d)``, ``λ = w·x``, ``λ* = w*·x``, label
``y = λ*² + sqrt(Δ) z``, loss ``ℓ = (y - λ²)²/2``, overlaps
``ρ = |w*|²/d``, ``q = |w|²/d``, ``m = w·w*/d`` (Eq. 62).  App. H writes the
displacement as ``E = y - f`` (Eq. 58), the opposite sign to App. C; with it
``∇ℓ = -2 E λ x`` (Eq. 60), which is what is implemented.

Per sample (Eqs. 60–61, with the sign of the noise corrected):

.. math::
    \nabla\ell = -2\mathcal{E}\lambda x,\qquad
    \nabla^2\ell = 2(2\lambda^2 - \mathcal{E})\,xx^\top
                 = 2(3\lambda^2 - \lambda_*^2 - \sqrt\Delta z)\,xx^\top .

Population (Eqs. 63, 65, 67, corrected; derived with Stein's lemma
``E[g x] = E[∇_x g]/d``):

.. math::
    \mathcal{R} &= \tfrac12(3\rho^2 + 3q^2 - 2\rho q - 4m^2) + \Delta/2,\\
    \nabla\mathcal{R} &= -\tfrac{2}{d}\big[(\rho - 3q)w + 2m w_*\big],\\
    \nabla^2\mathcal{R} &= \tfrac{2}{d}\big[(3q - \rho) I_d
        + \tfrac{6}{d} w w^\top - \tfrac{2}{d} w_* w_*^\top\big].

App. H effectively uses ``x ~ N(0, I_d)``: its gradients and Hessians lack
the overall ``1/d`` and ``1/d`` inside the rank-one terms (set ``d = 1`` in
the ``1/d`` factors above to compare).  Beyond that convention, Eq. 63 is off
by a factor 2 and Eqs. 66–68, 70–72 by factors on the rank-one terms; see
:mod:`mdlib.errata`.

Sphere ``S^{d-1}(sqrt(d))``: the tangent projector at ``w`` is
``P = I - w wᵀ/d`` (not ``I - w wᵀ``, which is for the unit sphere), the
Riemannian gradient is ``P ∇f`` and the Riemannian Hessian (as an operator
on the tangent space, extended by 0 on the normal direction) is

.. math::  \mathrm{Hess}\, f = P\,\nabla^2 f\,P - \frac{w\cdot\nabla f}{d}\,P .

For the population risk with ``ρ = 1`` this gives

.. math::
    \mathrm{grad}\,\mathcal{R} = \frac{4m}{d}(m w - w_*),\qquad
    \mathrm{Hess}\,\mathcal{R} = \frac4d\Big[m^2 P
        - \frac1d (w_* - m w)(w_* - m w)^\top\Big],

(Eqs. 82–83 in unit-sphere form are ``4m(mw - w*)`` and
``4[m² P - (w* - mw)(w* - mw)ᵀ]``).
"""
from __future__ import annotations

import numpy as np

from ._validate import check_int, check_real

__all__ = [
    "overlaps",
    "risk_euclidean",
    "grad_euclidean",
    "hess_euclidean",
    "euclidean_critical_points",
    "euclidean_flow",
    "solve_euclidean_flow",
    "euclidean_flow_plateau",
    "risk_sphere",
    "tangent_projector",
    "tangent_basis",
    "exp_map",
    "grad_sphere",
    "hess_sphere",
    "sphere_critical_points",
    "sample_data",
    "loss",
    "loss_gradient",
    "loss_hessian",
    "loss_gradient_sphere",
    "loss_hessian_sphere",
    "golf_course",
    "golf_course_grid",
    "overlap_density",
    "population_average",
    "finite_difference_hessian",
]


def _vec(name, v):
    v = np.asarray(v, dtype=float)
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"{name} must be a 1-d array of length d >= 2, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite")
    return v


def _pair(w, w_star):
    w, w_star = _vec("w", w), _vec("w_star", w_star)
    if w.shape != w_star.shape:
        raise ValueError(f"w and w_star must have the same length, got {w.size} and {w_star.size}")
    return w, w_star


def _batch(w, x, y):
    w = _vec("w", w)
    x = np.asarray(x, dtype=float)
    single = x.ndim == 1
    x = np.atleast_2d(x)
    if x.ndim != 2 or x.shape[1] != w.size:
        raise ValueError(f"x must have shape (d,) or (n, d) with d = {w.size}, got {np.shape(x)}")
    y = np.atleast_1d(np.asarray(y, dtype=float))
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have one entry per sample ({x.shape[0]}), got shape {y.shape}")
    return w, x, y, single


def overlaps(w, w_star):
    """Overlaps ``(m, q, ρ) = (w·w*/d, |w|²/d, |w*|²/d)`` of Eq. 62."""
    w, w_star = _pair(w, w_star)
    d = w.size
    return float(w @ w_star / d), float(w @ w / d), float(w_star @ w_star / d)


# --------------------------------------------------------------------------
# Euclidean landscape
# --------------------------------------------------------------------------

def risk_euclidean(m, q, delta=0.0, rho=1.0):
    r"""Population risk ``E[ℓ]`` at ``p = 1`` (Eq. 63, corrected):

    .. math:: \mathcal{R}(m, q) = \tfrac12\,(3\rho^2 + 3q^2 - 2\rho q - 4m^2) + \Delta/2 .

    It is Eq. 6 with ``p = 1, a = 1``: ``E[(λ*² - λ²)²]/2 + Δ/2``.  The paper
    prints it without the ``1/2``.  On the sphere (``q = ρ = 1``) it is
    ``2(1 - m²) + Δ/2`` (Eq. 80).
    """
    delta = check_real("delta", delta, nonnegative=True)
    rho = check_real("rho", rho, nonnegative=True)
    m, q = np.asarray(m, dtype=float), np.asarray(q, dtype=float)
    r = 0.5 * (3 * rho**2 + 3 * q**2 - 2 * rho * q - 4 * m**2) + delta / 2
    return r if r.ndim else float(r)


def grad_euclidean(w, w_star):
    r"""Expected gradient ``∇_w R = E[∇ℓ]`` (Eq. 65 in the book's scaling):

    .. math:: \nabla\mathcal{R} = -\frac{2}{d}\big[(\rho - 3q)\,w + 2m\,w_*\big].

    Independent of Δ.
    """
    w, w_star = _pair(w, w_star)
    m, q, rho = overlaps(w, w_star)
    return -2.0 / w.size * ((rho - 3 * q) * w + 2 * m * w_star)


def hess_euclidean(w, w_star):
    r"""Expected Hessian ``∇²R`` (Eq. 67, corrected, book scaling):

    .. math::
        \nabla^2\mathcal{R} = \frac{2}{d}\Big[(3q - \rho) I_d
        + \frac{6}{d} w w^\top - \frac{2}{d} w_* w_*^\top\Big],

    from ``E[λ² x xᵀ] = (q I + 2 w wᵀ/d)/d`` (Eq. 66 misses the 2).
    """
    w, w_star = _pair(w, w_star)
    m, q, rho = overlaps(w, w_star)
    d = w.size
    return 2.0 / d * ((3 * q - rho) * np.eye(d) + 6.0 / d * np.outer(w, w) - 2.0 / d * np.outer(w_star, w_star))


def euclidean_critical_points(d, rho=1.0, delta=0.0):
    r"""Critical points of the Euclidean population risk and their Hessian spectra.

    Solutions of ``(ρ - 3q) w + 2m w* = 0`` (Eq. 65):

    * ``w = 0``: Hessian ``-(2/d)(ρ I + (2/d) w* w*ᵀ)``, eigenvalues
      ``-2ρ/d`` (×(d-1)) and ``-6ρ/d`` along ``w*`` — a local maximum with
      risk ``3ρ²/2 + Δ/2`` (Eqs. 68–69 corrected);
    * the ring ``w ⊥ w*``, ``q = ρ/3``: Hessian
      ``(2/d²)(6 w wᵀ - 2 w* w*ᵀ)``, eigenvalues ``+4ρ/d`` along ``w``,
      ``-4ρ/d`` along ``w*`` and ``0`` (×(d-2)) — saddles with risk
      ``4ρ²/3 + Δ/2`` (Eqs. 70–71 corrected);
    * ``w = ±w*``: Hessian ``(4/d)(ρ I + (2/d) w* w*ᵀ)``, eigenvalues
      ``4ρ/d`` (×(d-1)) and ``12ρ/d`` along ``w*`` — global minima with risk
      ``Δ/2`` (Eqs. 72–73).

    Parameters
    ----------
    d : int
        Dimension ``>= 2``.
    rho : float
        ``|w*|²/d > 0``.
    delta : float

    Returns
    -------
    list of dict
        Keys ``name``, ``m``, ``q``, ``risk`` and ``spectrum``: a list of
        ``(eigenvalue, multiplicity, direction)``.
    """
    d = check_int("d", d, 2)
    rho = check_real("rho", rho, positive=True)
    delta = check_real("delta", delta, nonnegative=True)
    return [
        dict(name="origin (local maximum)", m=0.0, q=0.0, risk=risk_euclidean(0, 0, delta, rho),
             spectrum=[(-2 * rho / d, d - 1, "orthogonal to w*"), (-6 * rho / d, 1, "w*")]),
        dict(name="ring q = rho/3, m = 0 (saddles)", m=0.0, q=rho / 3, risk=risk_euclidean(0, rho / 3, delta, rho),
             spectrum=[(4 * rho / d, 1, "w"), (-4 * rho / d, 1, "w*"), (0.0, d - 2, "orthogonal to w, w*")]),
        dict(name="w = ±w* (global minima)", m=rho, q=rho, risk=risk_euclidean(rho, rho, delta, rho),
             spectrum=[(4 * rho / d, d - 1, "orthogonal to w*"), (12 * rho / d, 1, "w*")]),
    ]


def euclidean_flow(m, q, gamma, delta=0.0, rho=1.0):
    r"""Unconstrained ODE at ``p = 1`` (Eqs. 75–76, with the noise term):

    .. math::
        \dot m &= 6 m (\rho - q),\\
        \dot q &= 4\big(q(\rho - 3q) + 2m^2\big)
          + 12\gamma\big(q(\rho^2 + 5q^2 - 2\rho q) + 4m^2(\rho - 2q)\big)
          + 4\gamma\Delta q ,

    in time ``t = ν γ / d``, as ``d → ∞``.  It is the mean of the per-step
    increments ``-2(λ² - y)λλ*`` and ``-4(λ² - y)λ² + 4γ(λ² - y)²λ²``
    (``|x|² → 1``).  Eq. 76 is printed for ``Δ = 0``.

    Returns
    -------
    mdot, qdot : float or ndarray
    """
    gamma = check_real("gamma", gamma, nonnegative=True)
    delta = check_real("delta", delta, nonnegative=True)
    rho = check_real("rho", rho, nonnegative=True)
    m, q = np.asarray(m, dtype=float), np.asarray(q, dtype=float)
    mdot = 6 * m * (rho - q)
    qdot = (4 * (q * (rho - 3 * q) + 2 * m**2)
            + 12 * gamma * (q * (rho**2 + 5 * q**2 - 2 * rho * q) + 4 * m**2 * (rho - 2 * q))
            + 4 * gamma * delta * q)
    if mdot.ndim == 0:
        return float(mdot), float(qdot)
    return mdot, qdot


def solve_euclidean_flow(m0, q0, t_max, gamma, delta=0.0, rho=1.0, t_eval=None, rtol=1e-10, atol=1e-12):
    r"""Solve the unconstrained ``p = 1`` flow (Eqs. 75–76, :func:`euclidean_flow`) from ``(m0, q0)``.

    ``scipy.integrate.solve_ivp`` (RK45) on ``[0, t_max]``.

    Parameters
    ----------
    m0, q0 : float
        Initial overlap and squared norm (``m0² <= q0 ρ``).
    t_max : float
    gamma, delta, rho : float
    t_eval : array_like, optional
        Times at which to store the solution (``sol.y``, shape ``(2, n_t)``);
        without it the solution is returned as a dense output ``sol.sol(t)``.
    rtol, atol : float

    Returns
    -------
    scipy.integrate.OdeResult
        ``sol.y[0]`` is ``m``, ``sol.y[1]`` is ``q``.
    """
    from scipy.integrate import solve_ivp

    m0, q0 = check_real("m0", m0), check_real("q0", q0, nonnegative=True)
    t_max = check_real("t_max", t_max, positive=True)
    gamma = check_real("gamma", gamma, nonnegative=True)
    delta = check_real("delta", delta, nonnegative=True)
    rho = check_real("rho", rho, nonnegative=True)

    def rhs(_t, y):
        return euclidean_flow(y[0], y[1], gamma, delta, rho)

    return solve_ivp(rhs, (0, t_max), [m0, q0], t_eval=t_eval, rtol=rtol, atol=atol, dense_output=t_eval is None)


def euclidean_flow_plateau(gamma, delta=0.0, rho=1.0):
    r"""The fixed point ``q_s`` of the unconstrained flow on the axis ``m = 0`` (App. B).

    At ``m = 0``, Eq. 76 with the noise term reads
    ``q̇ = 4q[15γq² - (3 + 6γρ)q + ρ + 3γρ² + γΔ]``; the plateau reached by
    norm learning is the smaller root of the bracket,

    .. math::

        q_s = \frac{3 + 6\gamma\rho - \sqrt{(3 + 6\gamma\rho)^2 - 60\gamma(\rho + 3\gamma\rho^2 + \gamma\Delta)}}
                  {30\gamma}
        \;\xrightarrow{\gamma\to 0}\; \frac\rho3 ,

    slightly above the saddle ring ``q = ρ/3`` of the landscape: the noise
    of SGD pushes the norm up.  The overlap then escapes at the rate
    ``6(ρ - q_s)``.  Computed in the cancellation-free form
    ``2c/(b + sqrt(b² - 4ac))``.

    Returns
    -------
    float
        ``nan`` if the bracket has no real root (``γ`` too large: the norm
        is not held below ``ρ`` and there is no plateau).
    """
    gamma = check_real("gamma", gamma, nonnegative=True)
    delta = check_real("delta", delta, nonnegative=True)
    rho = check_real("rho", rho, positive=True)
    a, b, c = 15 * gamma, 3 + 6 * gamma * rho, rho + 3 * gamma * rho**2 + gamma * delta
    disc = b * b - 4 * a * c
    if disc < 0:
        return float("nan")
    return float(2 * c / (b + np.sqrt(disc)))


# --------------------------------------------------------------------------
# spherical landscape
# --------------------------------------------------------------------------

def risk_sphere(m, delta=0.0):
    r"""Population risk on the sphere (``q = ρ = 1``), Eq. 80: ``2(1 - m²) + Δ/2``."""
    return risk_euclidean(m, 1.0, delta, 1.0)


def tangent_projector(w):
    r"""Orthogonal projector on the tangent space of the sphere through ``w``:
    ``P = I - w wᵀ/|w|²`` (``= I - w wᵀ/d`` on ``S^{d-1}(sqrt(d))``; Eq. 77 is
    the unit-sphere case)."""
    w = _vec("w", w)
    n2 = w @ w
    if n2 == 0:
        raise ValueError("w must be non-zero")
    return np.eye(w.size) - np.outer(w, w) / n2


def tangent_basis(w, seed=None):
    """An orthonormal basis of the tangent space of the sphere at ``w``, shape ``(d, d - 1)``.

    The QR factorisation of ``[w, G]`` with ``G`` a ``d × (d - 1)`` standard
    Gaussian matrix (drawn from ``seed``): a random basis, as good as any
    for restricting a Riemannian Hessian to the tangent space (``Uᵀ H U``).
    """
    w = _vec("w", w)
    rng = np.random.default_rng(seed)
    d = w.size
    Qm, _ = np.linalg.qr(np.column_stack([w, rng.standard_normal((d, d - 1))]))
    return Qm[:, 1:]


def exp_map(w, v):
    r"""Exponential map of the sphere through ``w`` (radius ``|w|``): follow the great circle along ``v``.

    .. math::  \mathrm{Exp}_w(v) = \cos(|v|/r)\,w + r\sin(|v|/r)\,\frac{v}{|v|}, \qquad r = |w|,

    for a tangent vector ``v`` (``v·w = 0``).  The Riemannian Hessian of ``f``
    at ``w`` is the ordinary Hessian of ``c ↦ f(Exp_w(Uc))`` at ``c = 0``
    (``U`` an orthonormal tangent basis).
    """
    w, v = np.asarray(w, dtype=float), np.asarray(v, dtype=float)
    nv = np.linalg.norm(v)
    if nv == 0:
        return w
    r = np.linalg.norm(w)
    return np.cos(nv / r) * w + r * np.sin(nv / r) * v / nv


def grad_sphere(w, w_star):
    r"""Riemannian gradient of the population risk on the sphere through ``w``.

    ``P ∇R``; for ``|w|² = |w*|² = d``: ``(4m/d)(m w - w*)`` (Eq. 82 is the
    unit-sphere form ``4m(mw - w*)``).
    """
    return tangent_projector(w) @ grad_euclidean(w, w_star)


def hess_sphere(w, w_star):
    r"""Riemannian Hessian of the population risk on the sphere through ``w``.

    ``P ∇²R P - (w·∇R/|w|²) P``, a symmetric matrix that vanishes on the
    normal direction ``w``.  For ``|w|² = |w*|² = d``:

    .. math::
        \frac4d\Big[m^2 P - \frac1d (w_* - m w)(w_* - m w)^\top\Big].

    Eq. 83 prints ``4[m² I + m w w*ᵀ - w* w*ᵀ]`` (unit sphere): not
    symmetric and not projected, although it has the same quadratic form on
    tangent vectors.  At ``m = 0`` it is ``-(4/d²) w* w*ᵀ`` (Eq. 84): one
    eigenvalue ``-4/d`` along ``w*`` and ``d - 2`` flat tangent directions.
    At ``w = ±w*`` it is ``(4/d) P`` (Eq. 85 prints ``4 I``).
    """
    w = _vec("w", w)
    P = tangent_projector(w)
    g = grad_euclidean(w, w_star)
    return P @ hess_euclidean(w, w_star) @ P - (w @ g) / (w @ w) * P


def sphere_critical_points(d, delta=0.0):
    r"""Critical points of the spherical risk (``ρ = 1``) and their spectra.

    Eigenvalues of the Riemannian Hessian on the ``(d-1)``-dimensional
    tangent space:

    * ``m = 0`` (the equator ``w ⊥ w*``: saddles, also the global maximum of
      the risk ``2 + Δ/2``): ``-4/d`` along ``w*`` and ``0`` with multiplicity
      ``d - 2`` — the flat directions (``d - p - 1`` with ``p = 1``, as in
      App. B; Eq. 84 says ``d - 1``, counting the normal direction);
    * ``m = ±1`` (``w = ±w*``, global minima, risk ``Δ/2``): ``4/d`` with
      multiplicity ``d - 1``.
    """
    d = check_int("d", d, 3)
    delta = check_real("delta", delta, nonnegative=True)
    return [
        dict(name="equator m = 0 (saddles / global maximum)", m=0.0, risk=risk_sphere(0.0, delta),
             spectrum=[(-4.0 / d, 1, "w* (projected)"), (0.0, d - 2, "tangent, orthogonal to w*")]),
        dict(name="w = ±w* (global minima)", m=1.0, risk=risk_sphere(1.0, delta),
             spectrum=[(4.0 / d, d - 1, "all tangent directions")]),
    ]


# --------------------------------------------------------------------------
# per-sample quantities
# --------------------------------------------------------------------------

def sample_data(w_star, n, delta=0.0, seed=None):
    r"""``n`` samples ``x ~ N(0, I_d/d)``, ``y = (w*·x)² + sqrt(Δ) z`` (Eq. 2).

    Returns
    -------
    x : ndarray, shape (n, d)
    y : ndarray, shape (n,)
    """
    w_star = _vec("w_star", w_star)
    n = check_int("n", n, 1)
    delta = check_real("delta", delta, nonnegative=True)
    rng = np.random.default_rng(seed)
    d = w_star.size
    x = rng.standard_normal((n, d)) / np.sqrt(d)
    y = (x @ w_star) ** 2 + np.sqrt(delta) * rng.standard_normal(n)
    return x, y


def loss(w, x, y):
    r"""Per-sample loss ``(y - (w·x)²)²/2`` (Eq. 56); shape (n,) or scalar."""
    w, x, y, single = _batch(w, x, y)
    out = 0.5 * (y - (x @ w) ** 2) ** 2
    return float(out[0]) if single else out


def loss_gradient(w, x, y):
    r"""Per-sample Euclidean gradient ``-2 E λ x`` with ``E = y - λ²`` (Eqs. 58–60)."""
    w, x, y, single = _batch(w, x, y)
    lam = x @ w
    g = (-2.0 * (y - lam**2) * lam)[:, None] * x
    return g[0] if single else g


def loss_hessian(w, x, y):
    r"""Per-sample Euclidean Hessian ``2(3λ² - y) x xᵀ``
    ``= 2(3λ² - λ*² - sqrt(Δ) z) x xᵀ`` (Eq. 61, sign of the noise corrected)."""
    w, x, y, single = _batch(w, x, y)
    lam = x @ w
    H = (2.0 * (3 * lam**2 - y))[:, None, None] * x[:, :, None] * x[:, None, :]
    return H[0] if single else H


def loss_gradient_sphere(w, x, y):
    r"""Per-sample Riemannian gradient on the sphere through ``w`` (Eq. 78):
    ``-2 E λ (x - λ w/|w|²)`` (``|w|² = d``; Eq. 78 is the unit-sphere form)."""
    w, x, y, single = _batch(w, x, y)
    lam = x @ w
    px = x - np.outer(lam, w) / (w @ w)
    g = (-2.0 * (y - lam**2) * lam)[:, None] * px
    return g[0] if single else g


def loss_hessian_sphere(w, x, y):
    r"""Per-sample Riemannian Hessian on the sphere through ``w`` (Eq. 79, re-derived):

    .. math::
        2(3\lambda^2 - y)\,(Px)(Px)^\top + \frac{2\mathcal{E}\lambda^2}{|w|^2}\,P,
        \qquad P = I - \frac{w w^\top}{|w|^2},\ \mathcal{E} = y - \lambda^2,

    i.e. ``P ∇²ℓ P - (w·∇ℓ/|w|²) P`` with ``w·∇ℓ = -2Eλ²``.
    """
    w, x, y, single = _batch(w, x, y)
    lam = x @ w
    n2 = w @ w
    P = np.eye(w.size) - np.outer(w, w) / n2
    px = x - np.outer(lam, w) / n2
    H = (2.0 * (3 * lam**2 - y))[:, None, None] * px[:, :, None] * px[:, None, :]
    H = H + (2.0 * (y - lam**2) * lam**2 / n2)[:, None, None] * P
    return H[0] if single else H


# --------------------------------------------------------------------------
# golf course (Figure 4)
# --------------------------------------------------------------------------

def golf_course(points, delta=0.0, w_star_dir=(0.0, 0.0, 1.0)):
    r"""Spherical population risk at points of the unit sphere ``S²`` (d = 3).

    A point ``u`` stands for ``w = sqrt(3) u`` and the teacher for
    ``w* = sqrt(3) e`` with ``e = w_star_dir/|w_star_dir|``, so
    ``m = u·e`` and ``R = 2(1 - m²) + Δ/2`` (Eq. 80).  The points are
    normalised first.

    Parameters
    ----------
    points : array_like, shape (..., 3)
    delta : float
    w_star_dir : array_like, shape (3,)

    Returns
    -------
    ndarray, shape (...)
    """
    delta = check_real("delta", delta, nonnegative=True)
    u = np.asarray(points, dtype=float)
    if u.shape[-1:] != (3,):
        raise ValueError(f"points must have shape (..., 3), got {u.shape}")
    e = np.asarray(w_star_dir, dtype=float)
    if e.shape != (3,) or not np.any(e):
        raise ValueError("w_star_dir must be a non-zero vector of length 3")
    norm = np.linalg.norm(u, axis=-1)
    if np.any(norm == 0):
        raise ValueError("points must be non-zero")
    m = (u @ (e / np.linalg.norm(e))) / norm
    return 2.0 * (1.0 - m**2) + delta / 2.0


def golf_course_grid(n_theta=60, n_phi=120, delta=0.0):
    r"""A latitude–longitude grid on ``S²`` and the risk there, for surface plots.

    Returns
    -------
    X, Y, Z, R : ndarray, shape (n_theta, n_phi)
        Cartesian coordinates (teacher along ``+Z``) and :func:`golf_course`.
    """
    n_theta = check_int("n_theta", n_theta, 2)
    n_phi = check_int("n_phi", n_phi, 3)
    theta = np.linspace(0.0, np.pi, n_theta)[:, None]
    phi = np.linspace(0.0, 2 * np.pi, n_phi)[None, :]
    X = np.sin(theta) * np.cos(phi)
    Y = np.sin(theta) * np.sin(phi)
    Z = np.cos(theta) * np.ones_like(phi)
    return X, Y, Z, golf_course(np.stack([X, Y, Z], axis=-1), delta)


def overlap_density(m, d):
    r"""Density of ``m = u·v`` for ``u`` uniform on ``S^{d-1}`` (fixed ``v``):

    .. math:: \frac{(1 - m^2)^{(d-3)/2}}{B\big(\tfrac12, \tfrac{d-1}{2}\big)}, \quad |m| < 1 .

    It concentrates at ``m = 0`` with variance ``1/d``: in high dimension
    almost all of the sphere lies on the flat plateau of the golf course.
    """
    from scipy.special import betaln

    d = check_int("d", d, 2)
    m = np.asarray(m, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logf = (d - 3) / 2.0 * np.log1p(-m**2) - betaln(0.5, (d - 1) / 2.0)
        out = np.where(np.abs(m) < 1, np.exp(logf), 0.0)
    return out if out.ndim else float(out)


# --------------------------------------------------------------------------
# numerical checks of the formulas: Monte Carlo and finite differences
# --------------------------------------------------------------------------

def population_average(fn, w, w_star, n, delta=0.0, seed=None, basis=None, chunk=20_000):
    r"""Monte Carlo mean and standard error of a per-sample quantity over fresh samples (Eq. 2).

    ``fn(w, x, y)`` returns, for a batch of samples, one value per sample: a
    scalar (:func:`loss`), a vector (:func:`loss_gradient`) or a matrix
    (:func:`loss_hessian`).  A matrix is expressed in ``basis`` as
    ``Bᵀ H B`` (e.g. the eigenbasis of a Hessian formula, so that the
    diagonal entries are Rayleigh quotients with honest standard errors).

    Parameters
    ----------
    fn : callable
    w, w_star : ndarray, shape (d,)
    n : int
        Number of samples (``>= 2``), drawn in chunks of ``chunk``.
    delta : float
    seed : int, SeedSequence, Generator or None
    basis : ndarray, shape (d, k), optional

    Returns
    -------
    mean, se : ndarray
        Entrywise.
    """
    n = check_int("n", n, 2)
    chunk = check_int("chunk", chunk, 1)
    rng = np.random.default_rng(seed)
    s1 = s2 = 0.0
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        x, y = sample_data(w_star, k, delta, seed=rng)
        v = fn(w, x, y)
        if basis is not None:
            v = basis.T @ v @ basis  # batched: (n, k, k)
        s1 = s1 + v.sum(axis=0)
        s2 = s2 + (v**2).sum(axis=0)
    mean = s1 / n
    return mean, np.sqrt(np.maximum(s2 / n - mean**2, 0) / (n - 1))


def finite_difference_hessian(f, n_dim, h=1e-3):
    r"""Central finite-difference Hessian of ``f: R^n_dim → R`` at 0.

    ``H_ij = [f(h e_i + h e_j) - f(h e_i - h e_j) - f(h e_j - h e_i) + f(-h e_i - h e_j)]/(4h²)``,
    exact up to ``O(h²)``: an independent check of the closed-form Hessians
    (use ``f(e) = R(w + e)``, or ``f(c) = R(Exp_w(Uc))`` on the sphere).
    """
    n_dim = check_int("n_dim", n_dim, 1)
    h = check_real("h", h, positive=True)
    E = np.eye(n_dim) * h
    H = np.empty((n_dim, n_dim))
    for i in range(n_dim):
        for j in range(i, n_dim):
            H[i, j] = H[j, i] = (f(E[i] + E[j]) - f(E[i] - E[j]) - f(E[j] - E[i])
                                 + f(-E[i] - E[j])) / (4 * h * h)
    return H
