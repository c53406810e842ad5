"""Polynomial links (mdlib.links): the Link type, the population risk for any p
against Eq. 6 and Monte Carlo, the p = 1 drift and diffusion against Eq. 7,
mdlib.ode / mdlib.sde, independent Gauss–Hermite quadrature and Monte Carlo
averages of exact one-step SGD increments, mediocrity at k* >= 3, the BAGJ
learning-rate schedule, and the p = 1 ODE / SDE exit times.

Tolerances: exact computations (Mehler's formula, quadrature, closed forms)
agree to 1e-12 relative unless a cancellation is stated; Monte Carlo
comparisons use standard errors from the samples and fail beyond 4.5 of
them (fixed seeds)."""
import math

import numpy as np
import pytest
from numpy.polynomial import hermite_e as He
from numpy.polynomial import polynomial as P
from scipy import stats
from scipy.integrate import solve_ivp

import mdlib
from mdlib import Exit, Problem, make_state, random_init
from mdlib.links import (
    Link,
    bagj_learning_rate,
    critical_learning_rate,
    critical_overlap,
    diffusion_p1,
    drift_p1,
    drift_polynomial,
    mediocrity_expansion,
    ode_exit_time_p1,
    population_risk,
    sample_complexity_exponent,
    sde_exit_times_p1,
    variance_polynomial,
)

Z_MAX = 4.5  # Monte Carlo tolerance, in standard errors

MIXED = Link((0.3, -0.5, 0.2, 1.0, 0.4))  # every parity, k* = 1
ODD_EVEN = Link((0.0, 0.0, 0.0, 0.6, 0.25))  # k* = 3 with an even part
LINKS = [Link.paper(), Link.hermite(1), Link.hermite(3), Link.hermite(4, normalized=True), MIXED, ODD_EVEN]


def normalized(k):
    return Link.hermite(k, normalized=True)


# --------------------------------------------------------------------------- #
# independent references
# --------------------------------------------------------------------------- #
def gh_expect(fun, m, n):
    """E[fun(λ, λ*, z)] by tensor Gauss–Hermite quadrature: λ* = g0,
    λ = m g0 + sqrt(1 - m²) g1, g0, g1 with n nodes (exact for degree <= 2n - 1
    in each), z with 3 nodes (exact for degree <= 5)."""
    x, w = He.hermegauss(n)
    z, wz = He.hermegauss(3)
    w, wz = w / np.sqrt(2 * np.pi), wz / np.sqrt(2 * np.pi)
    g0, g1, zz = np.meshgrid(x, x, z, indexing="ij")
    W = w[:, None, None] * w[None, :, None] * wz[None, None, :]
    return np.sum(W * fun(m * g0 + np.sqrt(1 - m * m) * g1, g0, zz))


def x_increment(link, m, gamma, delta, a):
    """The projected increment X of m per dt, written from the update rule."""
    def X(lam, lam_s, z):
        E = a * link(lam) - link(lam_s) - np.sqrt(delta) * z
        sp = link.derivative(lam)
        M = -a * E * sp * lam_s
        Qd = -2 * a * E * sp * lam + gamma * a * a * E**2 * sp**2
        return M - m / 2 * Qd
    return X


def gh_moments(link, m, gamma, delta, a=1.0):
    n = 4 * link.degree + 2
    X = x_increment(link, m, gamma, delta, a)
    mean = gh_expect(X, m, n)
    var = gh_expect(lambda *v: (X(*v) - mean) ** 2, m, n)
    return mean, var


def one_step_increments(link, m, gamma, delta, d, draws, a=1.0):
    """Exact one-step increments of m for projected SGD at p = 1, finite d.

    Coordinates: teacher (1, 0), student (m, r), r = sqrt(1 - m²); the
    sample is sqrt(d) x = (g0, g1, rest) with |rest|² = s² ~ χ²(d - 2)
    (``draws = (g0, g1, z, s2)``, z the label noise).  The step
    w ← w - γ a E σ'(λ) x moves the student row to (m - u g0, r - u g1, -u s),
    u = (γ/d) a E σ'(λ), whose norm and first coordinate give the new
    overlap after the projection."""
    g0, g1, z, s2 = draws
    r = np.sqrt(1 - m * m)
    lam = m * g0 + r * g1
    E = a * link(lam) - link(g0) - np.sqrt(delta) * z
    u = gamma / d * a * E * link.derivative(lam)
    c0 = m - u * g0
    t = r - u * g1
    c1 = np.sqrt(t * t + u * u * s2)
    return c0 / np.sqrt(c0 * c0 + c1 * c1) - m


# --------------------------------------------------------------------------- #
# the Link type
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("bad,name", [
    ((), "coefficients"), ((1.0,), "coefficients"), ((1.0, 0.0, 0.0), "coefficients"),
    ((0.0, float("nan")), "coefficients[1]"), ((0.0, "x"), "coefficients[1]"), ("abc", "coefficients"),
    ((0.0,) * 9 + (1.0,), "degree"), (3.0, "coefficients"), ([[0.0, 1.0]], "flat"),
])
def test_link_validation(bad, name):
    with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
        Link(bad)


def test_link_constructor_validation():
    with pytest.raises(ValueError, match="k must be >= 1"):
        Link.hermite(0)
    with pytest.raises(ValueError, match="k must be an integer"):
        Link.hermite(2.0)
    with pytest.raises(ValueError, match="scale"):
        Link.hermite(2, scale=np.inf)
    with pytest.raises(ValueError, match="name"):
        Link((0, 1), name=3)
    with pytest.raises(ValueError, match="non-empty"):
        Link.from_monomials([])
    with pytest.raises(ValueError, match="constant target"):
        Link.from_monomials([2.0])


def test_link_basics():
    assert Link((1.0, 0.0, 1.0, 0.0, 0.0)).coefficients == (1.0, 0.0, 1.0)
    assert Link.paper() == Link((1, 0, 1)) and hash(Link.paper()) == hash(Link((1, 0, 1)))
    assert Link.paper().information_exponent == 2 and Link.paper().degree == 2
    assert [Link.hermite(k).information_exponent for k in range(1, 6)] == [1, 2, 3, 4, 5]
    assert MIXED.information_exponent == 1 and ODD_EVEN.information_exponent == 3
    # monomial coefficients of known Hermite polynomials
    assert np.array_equal(Link.hermite(3).monomial_coefficients, [0, -3, 0, 1])
    assert np.array_equal(Link.hermite(4).monomial_coefficients, [3, 0, -6, 0, 1])
    assert np.array_equal(Link.paper().monomial_coefficients, [0, 0, 1])
    assert np.array_equal(Link.hermite(4).derivative_monomial_coefficients, [0, -12, 0, 4])
    back = Link.from_monomials(MIXED.monomial_coefficients)
    assert np.allclose(back.coefficients, MIXED.coefficients, rtol=0, atol=1e-14)
    assert Link.from_monomials([0, 0, 1]) == Link.paper()
    # normalisation: E[σ²] = κ(1) = 1
    for k in range(1, 7):
        assert normalized(k).correlation(1.0) == pytest.approx(1.0, rel=1e-14)
    # labels
    assert repr(Link.hermite(3)) == "Link(He₃)"
    assert repr(Link((0.5, -1, 0, 2))) == "Link(2 He₃ - He₁ + 0.5)"
    assert Link.hermite(3).label == r"$\mathrm{He}_{3}$" and Link.paper().label == "$z^2$"


def test_link_evaluation():
    rng = np.random.default_rng(0)
    z = rng.standard_normal(1000) * 2
    for link in LINKS:
        assert np.allclose(link(z), He.hermeval(z, link.coefficients), rtol=1e-13, atol=1e-12)
        assert np.allclose(link.derivative(z), He.hermeval(z, He.hermeder(link.coefficients)), rtol=1e-13,
                           atol=1e-12)
    assert np.array_equal(Link.paper()(z), z * z)  # bitwise: the paper's link is exactly z²
    assert np.array_equal(Link.paper().derivative(z), 2 * z)
    assert Link.hermite(3)(np.float64(2.0)).shape == ()


def test_mehler_formula():
    """E[He_k(u) He_l(v)] = δ_kl k! ρ^k and κ(ρ) = E[σ(u)σ(v)], by quadrature."""
    for rho in (-0.7, 0.0, 0.35, 0.9):
        for k in range(6):
            for j in range(6):
                ek, el = np.eye(k + 1)[k], np.eye(j + 1)[j]
                val = gh_expect(lambda u, v, z: He.hermeval(u, ek) * He.hermeval(v, el), rho, 8)
                want = math.factorial(k) * rho**k if k == j else 0.0
                assert val == pytest.approx(want, abs=1e-12 * max(1, math.factorial(k)))
        for link in LINKS:
            val = gh_expect(lambda u, v, z: link(u) * link(v), rho, 2 * link.degree + 1)
            assert link.correlation(rho) == pytest.approx(val, rel=1e-12)


# --------------------------------------------------------------------------- #
# population risk
# --------------------------------------------------------------------------- #
def random_sphere_state(rng, p):
    V = rng.standard_normal((p + 1, p + 3))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    G = V @ V.T
    return G[1:, 0], G[1:, 1:], rng.uniform(-0.5, 1.5, p)


@pytest.mark.parametrize("p", [1, 3, 7])
def test_risk_is_eq6_for_the_paper_link(p):
    rng = np.random.default_rng(p)
    for _ in range(20):
        m, Q, a = random_sphere_state(rng, p)
        Q[np.diag_indices(p)] = 1.0
        delta = rng.uniform(0, 1)
        r1 = population_risk(Link.paper(), m, Q, a, delta)
        r2 = mdlib.population_risk(m, Q, a, delta)
        assert abs(r1 - r2) <= 1e-14 * max(1.0, abs(r2))
    # batched shapes
    m, Q, a = (np.stack(x) for x in zip(*[random_sphere_state(rng, p) for _ in range(5)]))
    Q[:, np.arange(p), np.arange(p)] = 1.0
    assert np.allclose(population_risk(Link.paper(), m, Q, a, 0.1), mdlib.population_risk(m, Q, a, 0.1),
                       rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("link", [Link.hermite(3), normalized(4), MIXED, ODD_EVEN], ids=repr)
def test_risk_against_monte_carlo(link):
    rng = np.random.default_rng(7)
    p, n, delta = 3, 400_000, 0.3
    m, Q, a = random_sphere_state(rng, p)
    Q[np.diag_indices(p)] = 1.0
    omega = np.block([[Q, m[:, None]], [m[None, :], np.ones((1, 1))]])
    lam = rng.multivariate_normal(np.zeros(p + 1), omega, size=n)
    f = link(lam[:, :p]) @ a / p
    y = link(lam[:, p]) + np.sqrt(delta) * rng.standard_normal(n)
    loss = (f - y) ** 2 / 2
    want = population_risk(link, m, Q, a, delta)
    assert abs(loss.mean() - want) < Z_MAX * loss.std() / np.sqrt(n)


def test_risk_flat_directions_at_mediocrity():
    """At p = 1, R - Δ/2 = κ(1) - κ(m): the first k* - 1 derivatives vanish at m = 0, the k*-th does not."""
    for k in range(1, 6):
        link = normalized(k)
        coef = P.polyfit(np.linspace(-0.5, 0.5, 12), [
            population_risk(link, np.array([mm]), np.ones((1, 1)), np.ones(1), 0.0) for mm in np.linspace(-0.5, 0.5, 12)
        ], 11)
        assert np.all(np.abs(coef[1:k]) < 1e-9) and abs(coef[k]) > 0.1


def test_risk_validation():
    with pytest.raises(ValueError, match="unit diagonal"):
        population_risk(Link.paper(), [0.1], [[0.9]], [1.0], 0.0)
    with pytest.raises(ValueError, match="shapes"):
        population_risk(Link.paper(), [0.1, 0.2], [[1.0]], [1.0], 0.0)
    with pytest.raises(ValueError, match="delta"):
        population_risk(Link.paper(), [0.1], [[1.0]], [1.0], -1.0)
    with pytest.raises(ValueError, match="link"):
        population_risk("z^2", [0.1], [[1.0]], [1.0], 0.0)


# --------------------------------------------------------------------------- #
# the p = 1 ODE drift
# --------------------------------------------------------------------------- #
def test_drift_is_eq7_for_the_paper_link():
    m = np.linspace(-1, 1, 41)
    for gamma in (0.01, 0.1, 1 / 6, 0.4):
        for delta in (0.0, 1e-4, 0.5):
            ours = drift_p1(Link.paper(), m, gamma, delta)
            assert np.max(np.abs(ours - mdlib.drift_p1(m, gamma, delta))) <= 1e-12
            dm, _, _ = mdlib.ode_drift(Problem(1, 1000, gamma, delta), m[:, None])
            assert np.max(np.abs(ours - dm[:, 0])) <= 1e-12
    coef = drift_polynomial(Link.paper(), 0.1, 0.5).coef  # m[4(1 - 6γ)(1 - m²) - 2γΔ]
    assert np.allclose(coef, [0, 4 * 0.4 - 0.1, 0, -4 * 0.4], rtol=0, atol=1e-14)


@pytest.mark.parametrize("link", LINKS + [Link.hermite(6), normalized(8)], ids=repr)
def test_drift_and_variance_against_quadrature(link):
    for gamma, delta, a in [(0.1, 0.0, 1.0), (0.3, 0.5, 0.7)]:
        for m in (0.0, 0.13, -0.6, 0.9):
            mean, var = gh_moments(link, m, gamma, delta, a)
            assert abs(drift_p1(link, m, gamma, delta, a) - mean) <= 1e-12 * (abs(mean) + np.sqrt(var))
            assert variance_polynomial(link, gamma, delta, a)(m) == pytest.approx(var, rel=1e-11)


def test_drift_closed_form():
    """γ-free part a(1 - m²)κ'(m); O(γ) part -(γa²m/2)(E[(aσ(λ) - σ(λ*))²σ'(λ)²] + ΔE[σ'²]), by quadrature."""
    m = np.linspace(-0.95, 0.95, 9)
    for link in LINKS:
        for a in (1.0, 0.6):
            kappa_prime = P.polyder([c * c * math.factorial(k) for k, c in enumerate(link.coefficients)])
            g0 = drift_p1(link, m, 0.0, 0.0, a)
            assert np.allclose(g0, a * (1 - m * m) * P.polyval(m, kappa_prime), rtol=1e-12, atol=1e-12)
            for mm, b0 in zip(m, g0):
                B = gh_expect(lambda lam, ls, z: (a * link(lam) - link(ls)) ** 2 * link.derivative(lam) ** 2, mm,
                              2 * link.degree + 1)
                B += 0.3 * gh_expect(lambda lam, ls, z: link.derivative(lam) ** 2, mm, link.degree + 1)
                want = b0 - 0.2 * a * a * mm / 2 * B
                assert drift_p1(link, mm, 0.2, 0.3, a) == pytest.approx(want, rel=1e-11, abs=1e-11)


def test_drift_validation():
    with pytest.raises(ValueError, match="gamma"):
        drift_p1(Link.paper(), 0.1, -0.1)
    with pytest.raises(ValueError, match="delta"):
        drift_p1(Link.paper(), 0.1, 0.1, np.nan)
    with pytest.raises(ValueError, match="link"):
        drift_polynomial((1, 0, 1), 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("link,m,gamma,delta", [
    (Link.paper(), 0.3, 0.1, 0.5),
    (normalized(3), 0.4, 0.05, 0.2),
    (normalized(4), 0.5, 0.02, 0.0),
    (ODD_EVEN, -0.3, 0.05, 0.1),
    (MIXED, 0.2, 0.05, 0.1),
], ids=lambda v: repr(v) if isinstance(v, Link) else None)
def test_drift_and_diffusion_against_sgd_steps(link, m, gamma, delta):
    """Monte Carlo of exact one-step increments of projected SGD.

    Mean (d = 10^8): the increment per dt averages to the drift within Z_MAX
    standard errors, and the drift without the O(γ) projection term is
    rejected.

    Variance: sample variances of these high-degree polynomials of Gaussians
    converge far too slowly for a z-test (with 2·10^6 draws the sample
    variance of X is 2 to 4 times below Var[X] for the k* >= 3 links: the
    variance lives in rare large draws, and the sample standard error misses
    them too); only the paper's quadratic link is light-tailed enough for it.
    So the exact increments are compared, on the same draws, with X of the
    module docstring (first order in dt, |x|² → 1): at d = 10^11 their sample
    variances agree to 1e-3 (the difference is O(dt), carried by the largest
    draws, whose exact increments saturate: it is -40 % for the mixed link at
    d = 10^7), and Var[X] itself is checked exactly against quadrature in
    test_drift_and_variance_against_quadrature."""
    n = 2_000_000
    rng = np.random.default_rng(11)
    r = np.sqrt(1 - m * m)
    g0, g1, z = rng.standard_normal((3, n))
    d = 10**8
    dt = gamma / d
    inc = one_step_increments(link, m, gamma, delta, d, (g0, g1, z, rng.chisquare(d - 2, n))) / dt
    mean, se = inc.mean(), inc.std() / np.sqrt(n)
    assert abs(mean - drift_p1(link, m, gamma, delta)) < Z_MAX * se
    assert abs(mean - drift_p1(link, m, 0.0, 0.0)) > 2 * Z_MAX * se, "no power to see the O(γ) term"
    if link == Link.paper():
        dev2 = (inc - mean) ** 2
        assert abs(dev2.mean() - variance_polynomial(link, gamma, delta)(m)) < Z_MAX * dev2.std() / np.sqrt(n)
    d = 10**11
    dt = gamma / d
    inc = one_step_increments(link, m, gamma, delta, d, (g0, g1, z, rng.chisquare(d - 2, n))) / dt
    X = x_increment(link, m, gamma, delta, 1.0)(m * g0 + r * g1, g0, z)
    assert inc.var() == pytest.approx(X.var(), rel=1e-3)
    assert abs(inc.mean() - X.mean()) < 0.01 * se
    assert diffusion_p1(link, m, gamma, delta, d=d) == pytest.approx(dt * variance_polynomial(link, gamma, delta)(m))


# --------------------------------------------------------------------------- #
# the p = 1 diffusion
# --------------------------------------------------------------------------- #
def test_diffusion_is_mdlib_sde_for_the_paper_link():
    d = 3000
    for gamma, delta in [(0.1, 1e-4), (0.05, 0.5), (0.3, 0.0)]:
        pb = Problem(1, d, gamma, delta)
        for m in (0.0, 0.02, 0.3, -0.7, 0.95):
            want = gamma / d * mdlib.increment_covariance(pb, m, projected=True)[0, 0]
            assert diffusion_p1(Link.paper(), m, gamma, delta, d=d) == pytest.approx(want, rel=1e-12)
        mu, sigma2 = mdlib.ou_parameters_p1(d, gamma, delta)
        assert diffusion_p1(Link.paper(), 0.0, gamma, delta, d=d) == pytest.approx(sigma2, rel=1e-14)
        assert drift_polynomial(Link.paper(), gamma, delta).coef[1] == pytest.approx(mu, rel=1e-14)


def test_diffusion_at_mediocrity_closed_form():
    """At m = 0, Var[X] = a² E[E² σ'(λ)² λ*²] with λ, λ* independent."""
    for link in LINKS:
        for a, delta in [(1.0, 0.0), (0.5, 0.7)]:
            want = gh_expect(lambda lam, ls, z: a * a * (a * link(lam) - link(ls) - np.sqrt(delta) * z) ** 2
                             * link.derivative(lam) ** 2 * ls**2, 0.0, 2 * link.degree + 2)
            want -= drift_p1(link, 0.0, 0.1, delta, a) ** 2
            assert variance_polynomial(link, 0.1, delta, a)(0.0) == pytest.approx(want, rel=1e-12)


# --------------------------------------------------------------------------- #
# mediocrity at k* >= 3
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("link", LINKS + [normalized(5)], ids=repr)
def test_mediocrity_expansion_matches_the_drift_polynomial(link):
    for gamma, delta, a in [(0.05, 0.0, 1.0), (0.01, 0.3, 0.8)]:
        e = mediocrity_expansion(link, gamma, delta, a)
        full = np.pad(drift_polynomial(link, gamma, delta, a).coef, (0, 10))
        free = np.pad(drift_polynomial(link, 0.0, 0.0, a).coef, (0, 10))
        k = link.information_exponent
        assert e.k == k
        assert e.constant == pytest.approx(full[0], abs=1e-14)
        assert e.linear == pytest.approx(full[1], rel=1e-12, abs=1e-14)
        assert e.contraction == pytest.approx(free[1] - full[1], rel=1e-12)
        assert e.signal == pytest.approx(free[k - 1], rel=1e-12)
        assert np.all(np.abs(free[1:k - 1]) < 1e-12)
        assert e.contraction > 0
        if k >= 3:
            assert e.fixed_point and e.stable and e.linear < 0
            assert e.m_c == pytest.approx((e.contraction / e.signal) ** (1 / (k - 2)))


def test_mediocrity_phase_diagram_k2():
    """z²: unstable iff γ < 8/(48 + 4Δ) (the paper's γ < 1/6 at Δ = 0)."""
    for delta in (0.0, 0.5):
        g_max = 8 / (48 + 4 * delta)
        assert not mediocrity_expansion(Link.paper(), 0.99 * g_max, delta).stable
        assert mediocrity_expansion(Link.paper(), 1.01 * g_max, delta).stable
        assert critical_overlap(Link.paper(), 0.99 * g_max, delta) == 0.0
        assert critical_overlap(Link.paper(), 1.01 * g_max, delta) == math.inf
    e = mediocrity_expansion(Link.hermite(1), 0.1)
    assert not e.fixed_point and e.constant == 1.0 and critical_overlap(Link.hermite(1), 10.0) == 0.0


@pytest.mark.parametrize("link", [normalized(3), normalized(4), ODD_EVEN, Link.hermite(4)], ids=repr)
def test_critical_overlap(link):
    k = link.information_exponent
    for gamma, delta in [(1e-3, 0.0), (1e-3, 0.5), (1e-4, 0.0)]:
        unit = mediocrity_expansion(link, 1.0, delta)
        gamma = gamma * unit.signal / unit.contraction
        mc = critical_overlap(link, gamma, delta)
        assert 0 < mc < 1
        b = drift_polynomial(link, gamma, delta)
        scale = mediocrity_expansion(link, gamma, delta).contraction * mc
        assert abs(b(mc)) < 1e-9 * scale
        grid = np.linspace(0, mc, 50)[1:-1]
        assert np.all(b(grid) < 0) and b(mc * 1.01) > 0
        # the leading order (γα̂/β)^(1/(k-2)) becomes exact as γ -> 0
        lead = mediocrity_expansion(link, gamma, delta).m_c
        assert mc == pytest.approx(lead, rel=10 * lead)
        # the ODE returns to 0 from below m_c and escapes from above
        relax = 1 / mediocrity_expansion(link, gamma, delta).contraction  # time scale of the return to 0
        below = solve_ivp(lambda t, y: b(y), (0, 20 * relax), [0.97 * mc], rtol=1e-10, atol=1e-14)
        assert below.y[0, -1] < 0.5 * mc
        assert ode_exit_time_p1(link, 0.97 * mc, gamma, delta, Exit(0.1, "max_m")) == math.inf
        assert np.isfinite(ode_exit_time_p1(link, 1.03 * mc, gamma, delta, Exit(0.1, "max_m")))
    # leading order: relative error O(m_c) for pure Hermite links
    g = 1e-6
    e = mediocrity_expansion(link, g)
    assert critical_overlap(link, g) == pytest.approx(e.m_c, rel=0.05 if k == 3 else 0.01)
    # odd k*: no escape on the negative side; even pure Hermite links are symmetric
    if k % 2 and link.coefficients[k + 1:] == ():
        assert critical_overlap(link, g, side=-1) == math.inf
    if k % 2 == 0:
        assert critical_overlap(link, g, side=-1) == pytest.approx(critical_overlap(link, g), rel=1e-12)


def test_critical_overlap_validation():
    with pytest.raises(ValueError, match="side"):
        critical_overlap(Link.paper(), 0.1, side=0)


# --------------------------------------------------------------------------- #
# the critical learning rate and the BAGJ schedule
# --------------------------------------------------------------------------- #
def test_critical_learning_rate():
    # z²: S/G = 8(1 - m²)/(48(1 - m²) + 4Δ), smallest at m1 when Δ > 0
    m1 = 0.4
    assert critical_learning_rate(Link.paper(), 0.01, m1, 0.5) == pytest.approx(
        8 * (1 - m1**2) / (48 * (1 - m1**2) + 2), rel=1e-12)
    for link in (normalized(3), normalized(4), ODD_EVEN):
        k = link.information_exponent
        e = mediocrity_expansion(link, 1.0)
        m0 = 1e-3
        gc = critical_learning_rate(link, m0, 0.5)
        assert gc == pytest.approx(e.signal / e.contraction * m0 ** (k - 2), rel=0.01)
        # just below γ_c the ODE from m0 reaches m_end, just above it never does
        ex = Exit(0.25 - 0.75 * m0**2, "max_m")  # exits at m² = 0.25 from m0
        assert np.isfinite(ode_exit_time_p1(link, m0, 0.999 * gc, 0.0, ex))
        assert ode_exit_time_p1(link, m0, 1.001 * gc, 0.0, ex) == math.inf
    assert critical_learning_rate(Link.hermite(3), 0.0 + 1e-9, 0.5) > 0
    with pytest.raises(ValueError, match="m0"):
        critical_learning_rate(Link.paper(), 0.5, 0.1)


def test_bagj_schedule_scaling():
    d = np.array([10**4, 10**6, 10**8])
    for k in (1, 2, 3, 4, 5):
        link = normalized(k)
        g = bagj_learning_rate(link, d)
        slopes = np.diff(np.log(g)) / np.diff(np.log(d))
        assert np.allclose(slopes, -max(k - 2, 0) / 2, atol=2e-3)
        e = mediocrity_expansion(link, 1.0)
        if k >= 3:
            assert g[-1] == pytest.approx(0.5 * e.signal / e.contraction * d[-1] ** (-(k - 2) / 2), rel=1e-3)
    assert sample_complexity_exponent(Link.hermite(1)) == (1, 0)
    assert sample_complexity_exponent(Link.paper()) == (1, 1)
    assert sample_complexity_exponent(normalized(3)) == (2, 0)
    assert sample_complexity_exponent(ODD_EVEN) == (2, 0)
    assert sample_complexity_exponent(Link.hermite(4)) == (3, 0)
    assert bagj_learning_rate(Link.paper(), 1000) == pytest.approx(1 / 12, rel=1e-12)
    for bad, kw in [("theta", dict(theta=1.0)), ("m_end", dict(m_end=0.0)), ("too small", dict(m_end=0.01))]:
        with pytest.raises(ValueError, match=bad):
            bagj_learning_rate(Link.paper(), 1000, **kw)


def test_bagj_sample_complexity_of_the_ode():
    """n = t_ODE d/γ with the schedule, from m0 = d^(-1/2) to weak recovery:
    ∝ d^(k-1) for k >= 3, with the leading-order constant
    (α̂/β²) ln(1/(1-θ))/((k-2)θ²); ∝ d log d for k = 2; ∝ d for k = 1."""
    T = 0.25
    d = np.array([10**4, 10**5, 10**6, 10**7])
    for k in (1, 2, 3, 4):
        link = normalized(k)
        n = np.array([ode_exit_time_p1(link, di ** -0.5, g, 0.0, Exit(T, "max_m")) * di / g
                      for di, g in zip(d, bagj_learning_rate(link, d))])
        slope = np.diff(np.log(n)) / np.diff(np.log(d))
        if k == 1:
            assert np.allclose(slope, 1, atol=0.01)
        elif k == 2:  # n = C d (ln d + c): slope 1 + 1/(ln d + c)
            assert np.all((slope > 1.03) & (slope < 1.15)) and np.all(np.diff(slope) < 0)
            assert np.allclose(n / (d * np.log(d)), n[-1] / (d[-1] * np.log(d[-1])), rtol=0.25)
        else:
            assert np.allclose(slope, k - 1, atol=0.02)
            e = mediocrity_expansion(link, 1.0)
            lead = d.astype(float) ** (k - 1) * e.contraction / e.signal**2 * np.log(2) / ((k - 2) * 0.25)
            assert n[-1] == pytest.approx(lead[-1], rel=0.02)


# --------------------------------------------------------------------------- #
# exit times at p = 1
# --------------------------------------------------------------------------- #
def test_ode_exit_time_is_the_closed_form_for_the_paper_link():
    for gamma, delta, T in [(0.1, 1e-4, 0.01), (0.05, 0.5, 0.3), (0.15, 0.0, 0.5)]:
        m0 = np.array([0.003, -0.02, 0.2])
        want = mdlib.theory.exit_time_ode_p1(m0, gamma, delta, T)
        for crit in ("max_m", "risk"):  # the same criterion for z² at p = 1 on the sphere
            got = ode_exit_time_p1(Link.paper(), m0, gamma, delta, Exit(T, crit))
            assert np.allclose(got, want, rtol=1e-9)
    assert ode_exit_time_p1(Link.paper(), 0.0, 0.1) == math.inf  # mediocrity is a fixed point
    assert ode_exit_time_p1(Link.paper(), 0.01, 0.2) == math.inf  # γ > 1/6
    with pytest.raises(ValueError, match="m0"):
        ode_exit_time_p1(Link.paper(), 1.0, 0.1)
    with pytest.raises(ValueError, match="exit"):
        ode_exit_time_p1(Link.paper(), 0.1, 0.1, exit=0.01)


@pytest.mark.parametrize("link", [normalized(3), MIXED, ODD_EVEN], ids=repr)
def test_ode_exit_time_against_solve_ivp(link):
    """Independent check: integrate the drift with an event on the criterion."""
    delta, T = 0.1, 0.2
    e = mediocrity_expansion(link, 1.0, delta)
    gamma = 0.05 * e.signal / e.contraction  # m_c = 0.05^(1/(k-2)) for k* = 3
    b = drift_polynomial(link, gamma, delta)
    n_exit = 0
    for crit in ("max_m", "risk"):
        for m0 in (0.15, -0.1, 0.08):
            got = ode_exit_time_p1(link, m0, gamma, delta, Exit(T, crit))
            excess = lambda m: link.correlation(1.0) - link.correlation(m)  # noqa: E731  (R - Δ/2 at p = 1, a = 1)
            if crit == "max_m":
                gap = lambda t, y: T + (1 - T) * m0**2 - y[0] ** 2  # noqa: E731
            else:
                gap = lambda t, y: excess(y[0]) - (1 - T) * excess(m0)  # noqa: E731
            gap.terminal = True
            sol = solve_ivp(lambda t, y: b(y), (0, 300), [m0], events=gap,
                            rtol=1e-11, atol=1e-13)
            want = sol.t_events[0][0] if sol.t_events[0].size else math.inf
            if math.isinf(want):
                assert got == math.inf, (crit, m0)
            else:
                n_exit += 1
                assert got == pytest.approx(want, rel=1e-7), (crit, m0)
    assert n_exit >= 4


def test_sde_exit_times_basic():
    link = normalized(3)
    pb = Problem(1, 10_000, 0.01, 0.0)
    init = make_state(pb, 0.2).repeat(20)
    t1 = sde_exit_times_p1(link, pb, init, Exit(0.1, "max_m"), 50.0, dt=1e-2, seed=3)
    t2 = sde_exit_times_p1(link, pb, init, Exit(0.1, "max_m"), 50.0, dt=1e-2, seed=3)
    assert np.array_equal(t1, t2) and np.all(np.isfinite(t1))
    # run i has the same stream whatever the number of runs
    t3 = sde_exit_times_p1(link, pb, init.run(slice(0, 5)), Exit(0.1, "max_m"), 50.0, dt=1e-2, seed=3)
    assert np.array_equal(t3, t1[:5])
    # not exited by t_max -> inf; below m_c and with tiny noise -> never exits
    short = sde_exit_times_p1(link, pb, init, Exit(0.1, "max_m"), 0.01, dt=1e-2, seed=3)
    assert np.all(short == math.inf)
    for bad, args in [
        ("p = 1", (Problem(2, 100, 0.1), random_init(Problem(2, 100, 0.1), 2, seed=0))),
        ("p = 1", (Problem(1, 100, 0.1, spherical=False), random_init(Problem(1, 100, 0.1, spherical=False), 2,
                                                                       seed=0))),
    ]:
        with pytest.raises(ValueError, match=bad):
            sde_exit_times_p1(link, *args, Exit(0.1), 1.0)
    with pytest.raises(ValueError, match="share"):
        sde_exit_times_p1(link, pb, make_state(pb, [[0.1], [0.2]], a=[[1.0], [0.5]]), Exit(0.1), 1.0)
    with pytest.raises(ValueError, match="exit"):
        sde_exit_times_p1(link, pb, init, 0.1, 1.0)


def test_sde_small_noise_limit_is_the_ode():
    """At d = 10^9 the noise is negligible: every SDE run exits at the ODE time."""
    for link in (normalized(3), ODD_EVEN, MIXED):
        e = mediocrity_expansion(link, 1.0, 0.1)
        gamma = 0.05 * e.signal / e.contraction
        pb = Problem(1, 10**9, gamma, 0.1)
        ex = Exit(0.2, "max_m")
        t_ode = ode_exit_time_p1(link, 0.15, gamma, 0.1, ex)
        assert np.isfinite(t_ode)
        t = sde_exit_times_p1(link, pb, make_state(pb, 0.15).repeat(10), ex, 3 * t_ode, dt=1e-3 * t_ode, seed=1)
        assert np.allclose(t, t_ode, rtol=3e-3)


@pytest.mark.parametrize("criterion", ["risk", "max_m"])
def test_sde_exit_times_are_mdlib_sde_paths_for_the_paper_link(criterion):
    """For σ = z² the link SDE is mdlib.integrate_sde's p = 1 SDE (no Itô
    term), with the same per-run seeding, steps and exit interpolation: the
    same seed gives the same paths, so the exit times agree run by run (up to
    the rounding of two different evaluations of drift and diffusion)."""
    pb = Problem(1, 1000, 0.1, 1e-4)
    init = random_init(pb, 40, seed=5)
    T, t_max, dt = 0.05, 12.0, 2e-3
    ours = sde_exit_times_p1(Link.paper(), pb, init, Exit(T, criterion), t_max, dt=dt, seed=1)
    theirs = mdlib.integrate_sde(pb, init, t_max, dt=dt, seed=1, t_save=(), exit=Exit(T, criterion)).t_exit
    assert np.sum(np.isfinite(ours)) >= 35
    assert np.array_equal(np.isfinite(ours), np.isfinite(theirs))
    ok = np.isfinite(ours)
    assert np.allclose(ours[ok], theirs[ok], rtol=1e-12, atol=0)  # measured: 2e-15
    other = sde_exit_times_p1(Link.paper(), pb, init, Exit(T, criterion), t_max, dt=dt, seed=2)
    assert stats.ks_2samp(ours[ok], other[np.isfinite(other)]).pvalue > 1e-3  # another seed, same law
    assert not np.allclose(ours[ok], other[ok])


# --------------------------------------------------------------------------- #
# exports
# --------------------------------------------------------------------------- #
def test_exports():
    assert mdlib.links.Link is Link and mdlib.Link is Link
    for name in ("mediocrity_expansion", "critical_overlap", "bagj_learning_rate"):
        assert getattr(mdlib, name) is getattr(mdlib.links, name)
    assert mdlib.population_risk is not population_risk  # the paper's Eq. 6 keeps its name
