"""Tests of mdlib.landscape (App. H): population risk, gradients and Hessians, Euclidean
and spherical, against Monte Carlo averages of per-sample quantities (within standard
errors), finite differences of the risk, and the general risk of Eq. 6; plus the errata
of App. H.

Two scalings appear.  The book's: x ~ N(0, I_d/d), |w*|^2 = d (mdlib.landscape).  App. H's:
x ~ N(0, I_d), overlaps without 1/d, unit sphere; the printed formulas are tested in it.
The map between them is w_H = w_book / sqrt(d) (same m, q, rho), with
grad_H = sqrt(d) grad_book and Hess_H = d Hess_book.
"""
import math

import numpy as np
import pytest

import mdlib.landscape as L
from mdlib.risk import population_risk

D = 8
N_MC = 200_000
Z_MAX = 4.5  # max |z-score| over the <= d^2 entries of a Monte Carlo mean


def _unit(v):
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def vecs():
    rng = np.random.default_rng(20)
    w_star = math.sqrt(D) * _unit(rng.standard_normal(D))
    w = 1.3 * math.sqrt(D) * _unit(rng.standard_normal(D))       # off the sphere, q = 1.69
    ws = math.sqrt(D) * _unit(rng.standard_normal(D))             # on the sphere
    return w, ws, w_star


def _mc_mean(fn, n=N_MC, chunk=20_000):
    """Mean and standard error of fn(k, size) -> (size, ...) samples, accumulated in chunks."""
    s = s2 = None
    for k in range(0, n, chunk):
        x = fn(k, chunk)
        s = x.sum(0) if s is None else s + x.sum(0)
        s2 = (x**2).sum(0) if s2 is None else s2 + (x**2).sum(0)
    mean = s / n
    return mean, np.sqrt(np.maximum(s2 / n - mean**2, 0) / n)


def _zmax(mean, se, target):
    se = np.where(se > 0, se, np.inf)
    return float(np.max(np.abs(mean - target) / se))


def _data(w_star, delta, seed, scale=1.0):
    """A per-chunk sampler of (x, y); scale = sqrt(d) gives App. H's x ~ N(0, I)."""
    rng = np.random.default_rng(seed)

    def sample(size):
        x = rng.standard_normal((size, w_star.size)) / math.sqrt(w_star.size) * scale
        y = (x @ w_star) ** 2 + math.sqrt(delta) * rng.standard_normal(size)
        return x, y
    return sample


def _fd_grad(f, w, h=1e-5):
    e = np.eye(w.size)
    return np.array([(f(w + h * e[i]) - f(w - h * e[i])) / (2 * h) for i in range(w.size)])


def _risk_of_w(w, w_star, delta):
    m, q, rho = L.overlaps(w, w_star)
    return L.risk_euclidean(m, q, delta, rho)


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------

def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="w_star"):
        L.grad_euclidean(np.ones(4), np.ones(5))
    with pytest.raises(ValueError, match="w"):
        L.hess_sphere(np.ones((2, 2)), np.ones(4))
    with pytest.raises(ValueError, match="x"):
        L.loss_gradient(np.ones(4), np.ones((3, 5)), np.ones(3))
    with pytest.raises(ValueError, match="y"):
        L.loss_hessian(np.ones(4), np.ones((3, 4)), np.ones(2))
    with pytest.raises(ValueError, match="delta"):
        L.risk_euclidean(0.1, 1.0, delta=-1)
    with pytest.raises(ValueError, match="d"):
        L.sphere_critical_points(2)
    with pytest.raises(ValueError, match="points"):
        L.golf_course(np.ones((4, 2)))
    with pytest.raises(ValueError, match="w"):
        L.tangent_projector(np.zeros(3))


# ---------------------------------------------------------------------------
# Euclidean
# ---------------------------------------------------------------------------

def test_risk_is_eq6_and_mc_mean_of_loss(vecs):
    w, _, w_star = vecs
    delta = 0.4
    m, q, rho = L.overlaps(w, w_star)
    r = L.risk_euclidean(m, q, delta, rho)
    assert r == pytest.approx(float(population_risk([m], [[q]], [1.0], delta)), rel=1e-13)
    sample = _data(w_star, delta, 21)
    mean, se = _mc_mean(lambda k, n: L.loss(w, *sample(n)))
    assert abs(mean - r) < 4 * se


def test_gradient_mc_and_finite_differences(vecs):
    w, _, w_star = vecs
    g = L.grad_euclidean(w, w_star)
    np.testing.assert_allclose(_fd_grad(lambda v: _risk_of_w(v, w_star, 0.3), w), g, atol=1e-8)
    sample = _data(w_star, 0.3, 22)
    mean, se = _mc_mean(lambda k, n: L.loss_gradient(w, *sample(n)))
    assert _zmax(mean, se, g) < Z_MAX


def test_hessian_mc_and_finite_differences(vecs):
    w, _, w_star = vecs
    H = L.hess_euclidean(w, w_star)
    fd = np.array([_fd_grad(lambda v: L.grad_euclidean(v, w_star)[i], w) for i in range(D)])
    np.testing.assert_allclose(fd, H, atol=1e-8)
    sample = _data(w_star, 0.3, 23)
    mean, se = _mc_mean(lambda k, n: L.loss_hessian(w, *sample(n)), chunk=10_000)
    assert _zmax(mean, se, H) < Z_MAX


def _critical_point(name, w_star, rng):
    v = rng.standard_normal(w_star.size)
    v -= (v @ w_star) / (w_star @ w_star) * w_star
    if name.startswith("origin"):
        return np.zeros(w_star.size)
    if name.startswith("ring"):
        rho = w_star @ w_star / w_star.size
        return math.sqrt(rho / 3 * w_star.size) * _unit(v)
    return -w_star.copy()


@pytest.mark.parametrize("rho", [1.0, 2.5])
def test_euclidean_critical_points(rho):
    rng = np.random.default_rng(24)
    w_star = math.sqrt(rho * D) * _unit(rng.standard_normal(D))
    for cp in L.euclidean_critical_points(D, rho=rho, delta=0.2):
        w = _critical_point(cp["name"], w_star, rng)
        assert np.allclose(L.grad_euclidean(w, w_star), 0, atol=1e-13)
        m, q, _ = L.overlaps(w, w_star)
        assert abs(m) == pytest.approx(cp["m"], abs=1e-12) and q == pytest.approx(cp["q"], abs=1e-12)
        assert _risk_of_w(w, w_star, 0.2) == pytest.approx(cp["risk"], rel=1e-12)
        expected = np.sort(np.concatenate([[lam] * mult for lam, mult, _ in cp["spectrum"]]))
        np.testing.assert_allclose(np.linalg.eigvalsh(L.hess_euclidean(w, w_star)), expected, atol=1e-12)


def test_euclidean_flow_is_mean_sgd_increment():
    """Eqs. 75-76 (+ the noise term 4 gamma Delta q) = mean per-unit-time increments of
    plain SGD with |x|^2 -> 1: dm = -2(lam^2 - y) lam lam*, dq = -4(lam^2 - y) lam^2 + 4 gamma (lam^2 - y)^2 lam^2."""
    rng = np.random.default_rng(25)
    gamma, delta, rho = 0.07, 0.5, 1.2
    for m, q in [(0.1, 1.0), (0.5, 0.8), (-0.3, 1.5)]:
        cov = np.array([[q, m], [m, rho]])
        n = 1_000_000
        lam, lams = (np.linalg.cholesky(cov) @ rng.standard_normal((2, n)))
        y = lams**2 + math.sqrt(delta) * rng.standard_normal(n)
        e = lam**2 - y
        dm = -2 * e * lam * lams
        dq = -4 * e * lam**2 + 4 * gamma * e**2 * lam**2
        mdot, qdot = L.euclidean_flow(m, q, gamma, delta, rho)
        assert abs(dm.mean() - mdot) < 4.5 * dm.std() / math.sqrt(n)
        assert abs(dq.mean() - qdot) < 4.5 * dq.std() / math.sqrt(n)


def test_euclidean_flow_agrees_with_mdlib_ode():
    ode = pytest.importorskip("mdlib.ode")
    from mdlib.problem import Problem

    prob = Problem(p=1, d=100, gamma=0.07, delta=0.5, spherical=False)
    for m, q in [(0.1, 1.0), (0.5, 0.8)]:
        dm, dQ, _ = ode.ode_drift(prob, [m], [[q]])
        mdot, qdot = L.euclidean_flow(m, q, 0.07, 0.5)
        assert float(dm[0]) == pytest.approx(mdot, rel=1e-12)
        assert float(dQ[0, 0]) == pytest.approx(qdot, rel=1e-12)


# ---------------------------------------------------------------------------
# sphere S^{d-1}(sqrt(d))
# ---------------------------------------------------------------------------

def _geodesic(w, v, t):
    """Unit-speed great circle through w (|w| = r) with tangent unit vector v."""
    r = np.linalg.norm(w)
    return math.cos(t / r) * w + math.sin(t / r) * r * v


def test_sphere_closed_forms(vecs):
    _, w, w_star = vecs
    m, _, _ = L.overlaps(w, w_star)
    P = L.tangent_projector(w)
    np.testing.assert_allclose(P, np.eye(D) - np.outer(w, w) / D, atol=1e-14)
    np.testing.assert_allclose(L.grad_sphere(w, w_star), 4 * m / D * (m * w - w_star), atol=1e-14)
    u = w_star - m * w
    np.testing.assert_allclose(L.hess_sphere(w, w_star), 4 / D * (m**2 * P - np.outer(u, u) / D), atol=1e-14)
    assert L.risk_sphere(m, 0.3) == pytest.approx(_risk_of_w(w, w_star, 0.3), rel=1e-13)


def test_sphere_gradient_and_hessian_by_finite_differences_along_geodesics(vecs):
    _, w, w_star = vecs
    rng = np.random.default_rng(26)
    G, H = L.grad_sphere(w, w_star), L.hess_sphere(w, w_star)
    f = lambda v: _risk_of_w(v, w_star, 0.0)  # noqa: E731
    h = 1e-3
    basis = np.linalg.qr(L.tangent_projector(w) @ rng.standard_normal((D, D)))[0][:, : D - 1]
    for i in range(D - 1):
        v = basis[:, i]
        d1 = (f(_geodesic(w, v, h)) - f(_geodesic(w, v, -h))) / (2 * h)
        d2 = (f(_geodesic(w, v, h)) - 2 * f(w) + f(_geodesic(w, v, -h))) / h**2
        assert d1 == pytest.approx(v @ G, abs=1e-6)
        assert d2 == pytest.approx(v @ H @ v, abs=1e-5)
    # gradient and Hessian are tangent / vanish on the normal direction
    assert abs(G @ w) < 1e-12 and np.allclose(H @ w, 0, atol=1e-12)


def test_sphere_gradient_and_hessian_mc(vecs):
    _, w, w_star = vecs
    sample = _data(w_star, 0.3, 27)
    mean, se = _mc_mean(lambda k, n: L.loss_gradient_sphere(w, *sample(n)))
    assert _zmax(mean, se, L.grad_sphere(w, w_star)) < Z_MAX
    mean, se = _mc_mean(lambda k, n: L.loss_hessian_sphere(w, *sample(n)), chunk=10_000)
    assert _zmax(mean, se, L.hess_sphere(w, w_star)) < Z_MAX


def _tangent_spectrum(w, H):
    """Eigenvalues of H restricted to the (d-1)-dimensional tangent space at w."""
    P = L.tangent_projector(w)
    vals, vecs_ = np.linalg.eigh(P)
    B = vecs_[:, vals > 0.5]
    return np.linalg.eigvalsh(B.T @ H @ B)


def test_sphere_critical_points():
    rng = np.random.default_rng(28)
    w_star = math.sqrt(D) * _unit(rng.standard_normal(D))
    v = rng.standard_normal(D)
    v -= (v @ w_star) / D * w_star
    equator = math.sqrt(D) * _unit(v)
    cps = L.sphere_critical_points(D, delta=0.1)
    for cp, w in zip(cps, [equator, w_star]):
        assert np.allclose(L.grad_sphere(w, w_star), 0, atol=1e-13)
        assert _risk_of_w(w, w_star, 0.1) == pytest.approx(cp["risk"], rel=1e-13)
        expected = np.sort(np.concatenate([[lam] * mult for lam, mult, _ in cp["spectrum"]]))
        np.testing.assert_allclose(_tangent_spectrum(w, L.hess_sphere(w, w_star)), expected, atol=1e-13)
    np.testing.assert_allclose(L.hess_sphere(equator, w_star), -4 / D**2 * np.outer(w_star, w_star), atol=1e-14)
    np.testing.assert_allclose(L.hess_sphere(-w_star, w_star), 4 / D * L.tangent_projector(w_star), atol=1e-14)


def test_golf_course_and_overlap_density():
    assert L.golf_course([0, 0, 2.0], delta=0.2) == pytest.approx(0.1)
    assert L.golf_course([1.0, 0, 0]) == pytest.approx(2.0)
    X, Y, Z, R = L.golf_course_grid(30, 40, delta=0.0)
    assert X.shape == R.shape == (30, 40)
    np.testing.assert_allclose(X**2 + Y**2 + Z**2, 1.0, atol=1e-12)
    np.testing.assert_allclose(R, 2 * (1 - Z**2), atol=1e-12)
    # matches the book-scaled risk at w = sqrt(3) u
    rng = np.random.default_rng(29)
    u = _unit(rng.standard_normal(3))
    assert L.golf_course(u) == pytest.approx(_risk_of_w(math.sqrt(3) * u, math.sqrt(3) * np.array([0, 0, 1.0]), 0.0))
    from scipy.integrate import quad
    for d in [3, 10, 1000]:
        assert quad(lambda m: L.overlap_density(m, d), -1, 1, points=[0])[0] == pytest.approx(1, rel=1e-8)
        assert quad(lambda m: m * m * L.overlap_density(m, d), -1, 1, points=[0])[0] == pytest.approx(1 / d, rel=1e-8)


# ---------------------------------------------------------------------------
# errata of App. H
# ---------------------------------------------------------------------------

def test_erratum_eq61_noise_sign():
    """Per-sample Hessian by finite differences of the per-sample gradient, at fixed (x, z)."""
    rng = np.random.default_rng(30)
    w_star, w = rng.standard_normal((2, D))
    x = rng.standard_normal(D)
    delta, z = 1.0, 1.3
    lam, lams = w @ x, w_star @ x
    y = lams**2 + math.sqrt(delta) * z
    fd = np.array([_fd_grad(lambda v: L.loss_gradient(v, x, y)[i], w) for i in range(D)])
    corrected = 2 * (3 * lam**2 - lams**2 - math.sqrt(delta) * z) * np.outer(x, x)
    printed = 2 * (3 * lam**2 - lams**2 + math.sqrt(delta) * z) * np.outer(x, x)
    np.testing.assert_allclose(fd, corrected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(L.loss_hessian(w, x, y), corrected, rtol=1e-12)
    assert np.max(np.abs(fd - printed)) > 1.0


def test_erratum_eq63_risk_factor(vecs):
    w, ws, w_star = vecs
    delta = 0.4
    for v in [w, ws]:
        m, q, rho = L.overlaps(v, w_star)
        corrected = delta / 2 + (3 * rho**2 + 3 * q**2 - 4 * m**2 - 2 * rho * q) / 2
        printed = delta / 2 + 3 * rho**2 + 3 * q**2 - 4 * m**2 - 2 * rho * q
        sample = _data(w_star, delta, 31)
        mean, se = _mc_mean(lambda k, n: L.loss(v, *sample(n)))
        assert abs(mean - corrected) < 4 * se
        assert abs(mean - printed) > 100 * se
    # on the sphere only the corrected form gives Eq. 80, and Eq. 69 at the origin
    m = 0.3
    assert delta / 2 + (3 + 3 - 4 * m**2 - 2) / 2 == pytest.approx(2 * (1 - m**2) + delta / 2)
    assert delta / 2 + (3 + 3 - 4 * m**2 - 2) != pytest.approx(2 * (1 - m**2) + delta / 2)
    assert L.risk_euclidean(0, 0, delta, 1.0) == pytest.approx(delta / 2 + 1.5)


def test_erratum_eq68_72_spectra():
    """App. H scaling, rho = 1: Hessian spectra at the critical points from finite differences
    of the (MC-verified) risk: -6 rho along w* at 0, +-4 rho at the ring, 12 rho at the minima."""
    rng = np.random.default_rng(35)
    wsH = _unit(rng.standard_normal(D))
    v = rng.standard_normal(D)
    v = _unit(v - (v @ wsH) * wsH)
    I = np.eye(D)

    def risk_H(u):  # corrected Eq. 63 in App. H scaling
        return 0.5 * (3 + 3 * (u @ u) ** 2 - 2 * (u @ u) - 4 * (u @ wsH) ** 2)

    def fd_hess(u, h=1e-4):
        e = np.eye(D)
        return np.array([[(risk_H(u + h * e[i] + h * e[j]) - risk_H(u + h * e[i] - h * e[j])
                           - risk_H(u - h * e[i] + h * e[j]) + risk_H(u - h * e[i] - h * e[j])) / (4 * h * h)
                          for j in range(D)] for i in range(D)])

    cases = [
        (np.zeros(D), -2 * (I + np.outer(wsH, wsH)), [-2] * (D - 1) + [-6]),            # Eq. 68
        (v / math.sqrt(3), 2 * (3 * np.outer(v, v) / 3 - np.outer(wsH, wsH)), [-4] + [0] * (D - 2) + [4]),  # Eq. 70
        (wsH, 4 * (I + np.outer(wsH, wsH)), [4] * (D - 1) + [12]),                        # Eq. 72
    ]
    for u, printed, eig in cases:
        H = fd_hess(u)
        np.testing.assert_allclose(np.linalg.eigvalsh(H), np.sort(eig), atol=1e-5)
        assert np.max(np.abs(np.linalg.eigvalsh(printed) - np.sort(eig))) > 1.0
    # Eq. 68's stated eigenvalue -2(rho + 1) = -4 along w* is not the -6 rho found
    assert abs(-2 * (1 + 1) - (-6)) > 1


def test_erratum_eq71_saddle_risk():
    rng = np.random.default_rng(36)
    rho, delta = 1.7, 0.2
    w_star = math.sqrt(rho * D) * _unit(rng.standard_normal(D))
    v = rng.standard_normal(D)
    v -= (v @ w_star) / (w_star @ w_star) * w_star
    w = math.sqrt(rho / 3 * D) * _unit(v)
    sample = _data(w_star, delta, 37)
    mean, se = _mc_mean(lambda k, n: L.loss(w, *sample(n)))
    assert abs(mean - (delta / 2 + 4 / 3 * rho**2)) < 4 * se
    assert abs(mean - (delta / 2 + 10 / 3 * rho**2)) > 100 * se


def _unit_sphere_case(seed=38):
    rng = np.random.default_rng(seed)
    wsH = _unit(rng.standard_normal(D))
    wH = _unit(rng.standard_normal(D) + 0.8 * wsH)
    m = wH @ wsH
    P = np.eye(D) - np.outer(wH, wH)
    u = wsH - m * wH
    return wH, wsH, m, P, 4 * (m**2 * P - np.outer(u, u))


def test_erratum_eq79_sample_hessian():
    """Unit sphere, x ~ N(0, I): the mean of the corrected per-sample Riemannian Hessian is the
    population one; the printed Eq. 79 (theta = w, E = y - lam^2) is not."""
    wH, wsH, m, P, hess = _unit_sphere_case()
    np.testing.assert_allclose(hess, D * L.hess_sphere(math.sqrt(D) * wH, math.sqrt(D) * wsH), atol=1e-12)
    sample = _data(wsH, 0.3, 39, scale=math.sqrt(D))

    def printed(k, n):
        x, y = sample(n)
        lam = x @ wH
        e = y - lam**2
        xx = x[:, :, None] * x[:, None, :]
        lx = lam[:, None, None] * wH[None, :, None] * x[:, None, :]
        # (3 lam^2 - lam*^2)(x x^T - lam w x^T) + E lam^2 I, with lam*^2 = y at Delta = 0
        return (3 * lam**2 - y)[:, None, None] * (xx - lx) + (e * lam**2)[:, None, None] * np.eye(D)

    mean, se = _mc_mean(lambda k, n: L.loss_hessian_sphere(wH, *sample(n)), chunk=10_000)
    assert _zmax(mean, se, hess) < Z_MAX
    sample = _data(wsH, 0.0, 40, scale=math.sqrt(D))  # Delta = 0 so that y = lam*^2 exactly as printed
    mean_p, se_p = _mc_mean(printed, chunk=10_000)
    assert _zmax(mean_p, se_p, hess) > 20
    asym = np.abs(mean_p - mean_p.T) / np.sqrt(se_p**2 + se_p.T**2 + 1e-300)
    assert np.max(asym) > 8  # not even symmetric (conservative: the two entries are correlated)


def test_erratum_eq83_riemannian_hessian():
    """Eq. 83 as printed: same quadratic form on tangent vectors, but not symmetric and not 0 on
    the normal direction; Eq. 85: 4 I instead of 4 P."""
    wH, wsH, m, P, hess = _unit_sphere_case()
    printed = 4 * (m**2 * np.eye(D) + m * np.outer(wH, wsH) - np.outer(wsH, wsH))
    rng = np.random.default_rng(41)
    for _ in range(5):
        t = P @ rng.standard_normal(D)
        assert t @ printed @ t == pytest.approx(t @ hess @ t, rel=1e-12)
    assert np.max(np.abs(printed - printed.T)) > 0.1
    assert np.max(np.abs(printed - hess)) > 0.1
    assert abs(wH @ printed @ wH) > 0.1 and abs(wH @ hess @ wH) < 1e-12
    # second derivatives of the unit-sphere risk 2(1 - m^2) through the metric-projection retraction
    # u -> u/|u| (a second-order retraction, so this is the Riemannian Hessian even off critical points)
    f = lambda u: 2 * (1 - (u @ wsH) ** 2)  # noqa: E731
    B = np.linalg.qr(P @ rng.standard_normal((D, D)))[0][:, : D - 1]
    h = 1e-4
    fd = np.array([[(f(_unit(wH + h * (B[:, i] + B[:, j]))) - f(_unit(wH + h * (B[:, i] - B[:, j])))
                     - f(_unit(wH - h * (B[:, i] - B[:, j]))) + f(_unit(wH - h * (B[:, i] + B[:, j])))) / (4 * h * h)
                    for j in range(D - 1)] for i in range(D - 1)])
    np.testing.assert_allclose(fd, B.T @ hess @ B, atol=1e-5)
    assert np.linalg.norm(P @ wsH) > 0.1 and abs(m) > 0.1  # a non-critical point
    # Eq. 85 at w = +-w*: 4 P, not 4 I (they differ only on the normal direction)
    P_star = np.eye(D) - np.outer(wsH, wsH)
    assert np.allclose(D * L.hess_sphere(math.sqrt(D) * wsH, math.sqrt(D) * wsH), 4 * P_star, atol=1e-12)
    assert not np.allclose(4 * P_star, 4 * np.eye(D))


def test_erratum_eq84_flat_directions():
    """At m = 0 the Riemannian Hessian has one negative eigenvalue (-4/d, towards w*) and d - 2 zero
    eigenvalues on the (d-1)-dimensional tangent space; the risk is exactly constant along the d - 2
    great circles orthogonal to w*, not along d - 1 directions."""
    rng = np.random.default_rng(42)
    w_star = math.sqrt(D) * _unit(rng.standard_normal(D))
    v = rng.standard_normal(D)
    v -= (v @ w_star) / D * w_star
    w = math.sqrt(D) * _unit(v)
    spec = _tangent_spectrum(w, L.hess_sphere(w, w_star))
    assert spec.size == D - 1
    assert np.sum(np.abs(spec) < 1e-12) == D - 2          # corrected: d - 2 flat
    assert np.sum(np.abs(spec) < 1e-12) != D - 1          # printed: d - 1
    assert spec.min() == pytest.approx(-4 / D)
    # exactly flat: along geodesics in the (d-2)-dimensional space orthogonal to w and w*
    B = np.linalg.qr(np.column_stack([w, w_star, rng.standard_normal((D, D - 2))]))[0][:, 2:]
    f = lambda u: _risk_of_w(u, w_star, 0.0)  # noqa: E731
    for i in range(D - 2):
        for t in [0.3, 1.0, 2.0]:
            assert f(_geodesic(w, B[:, i], t)) == pytest.approx(f(w), abs=1e-12)
    t_dir = _unit(L.tangent_projector(w) @ w_star)
    assert f(_geodesic(w, t_dir, 0.5)) < f(w) - 1e-3  # the one descent direction


# ---------------------------------------------------------------------------
# tools moved from the landscape chapter: the (m, q) flow, its plateau, Monte Carlo
# averages, finite-difference Hessians, tangent bases and the exponential map
# ---------------------------------------------------------------------------

def test_solve_euclidean_flow_matches_the_general_ode():
    """Eqs. 75-76 solved by solve_euclidean_flow against mdlib.integrate_ode (the general drift of
    Eq. 17, another solver) for plain SGD at p = 1, a = 1, rho = 1."""
    from mdlib import Problem, integrate_ode, make_state

    gamma, delta = 0.05, 0.0
    pr = Problem(1, 1000, gamma, delta, spherical=False)
    t = np.linspace(0, 3, 31)
    ode = integrate_ode(pr, make_state(pr, [0.03], [[1.2]]), 3.0, t_save=t, rtol=1e-11, atol=1e-13)
    sol = L.solve_euclidean_flow(0.03, 1.2, 3.0, gamma, delta, t_eval=t)
    np.testing.assert_allclose(sol.y[0], ode.m[0, :, 0], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(sol.y[1], ode.Q[0, :, 0, 0], rtol=1e-7, atol=1e-10)
    dense = L.solve_euclidean_flow(0.03, 1.2, 3.0, gamma, delta)  # no t_eval: dense output
    np.testing.assert_allclose(dense.sol(t), sol.y, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("gamma, delta, rho", [(0.05, 0.0, 1.0), (0.1, 0.0, 1.0), (0.05, 1e-3, 1.0),
                                               (0.15, 0.5, 1.0), (0.02, 0.3, 2.0)])
def test_euclidean_flow_plateau_is_the_root_on_the_axis(gamma, delta, rho):
    from scipy.optimize import brentq

    q_s = L.euclidean_flow_plateau(gamma, delta, rho)
    root = brentq(lambda q: L.euclidean_flow(0.0, q, gamma, delta, rho)[1], 0.2 * rho, rho, xtol=1e-15)
    assert q_s == pytest.approx(root, rel=1e-12)
    assert rho / 3 < q_s < rho  # above the saddle ring q = rho/3: the noise pushes the norm up
    assert L.euclidean_flow_plateau(1e-9, 0.0, rho) == pytest.approx(rho / 3, rel=1e-7)
    assert math.isnan(L.euclidean_flow_plateau(2.0, 0.0))  # no plateau: the norm is not held


def test_population_average_against_the_formulas(vecs):
    """Monte Carlo means of the loss and its gradient and Hessian (in the formula's eigenbasis)
    agree with Eqs. 63, 65, 67 (corrected) within Z_MAX standard errors."""
    w, _, w_star = vecs
    delta = 0.2
    m, q, rho = L.overlaps(w, w_star)
    r, r_se = L.population_average(L.loss, w, w_star, 100_000, delta, seed=1)
    assert abs(r - L.risk_euclidean(m, q, delta, rho)) < Z_MAX * r_se
    g, g_se = L.population_average(L.loss_gradient, w, w_star, 100_000, delta, seed=2)
    assert _zmax(g, g_se, L.grad_euclidean(w, w_star)) < Z_MAX
    lam, V = np.linalg.eigh(L.hess_euclidean(w, w_star))
    H, H_se = L.population_average(L.loss_hessian, w, w_star, 100_000, delta, seed=3, basis=V)
    assert _zmax(H, H_se, np.diag(lam)) < Z_MAX
    # chunking does not change the estimate
    r2, _ = L.population_average(L.loss, w, w_star, 100_000, delta, seed=1, chunk=7_000)
    assert abs(r2 - r) < 3 * r_se


def test_finite_difference_hessian_tangent_basis_and_exp_map():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((6, 6))
    A = A + A.T
    np.testing.assert_allclose(L.finite_difference_hessian(lambda e: 0.5 * e @ A @ e + e.sum() ** 3, 6), A,
                               atol=1e-6)  # exact for the quadratic part, O(h^2) for the cubic one at 0
    w = rng.standard_normal(7)
    w *= math.sqrt(7) / np.linalg.norm(w)
    U = L.tangent_basis(w, seed=6)
    assert U.shape == (7, 6)
    np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(w @ U, 0, atol=1e-12)
    v = U @ rng.standard_normal(6) * 0.3
    e = L.exp_map(w, v)
    assert np.linalg.norm(e) == pytest.approx(math.sqrt(7), rel=1e-13)  # stays on the sphere
    angle = math.acos(e @ w / 7)  # the geodesic distance on S^{d-1}(sqrt d) is sqrt(d) * angle = |v|
    assert math.sqrt(7) * angle == pytest.approx(np.linalg.norm(v), rel=1e-12)
    assert np.array_equal(L.exp_map(w, np.zeros(7)), w)
    # the Riemannian Hessian is the ordinary Hessian along geodesics (the spherical chapter's check)
    w_star = rng.standard_normal(7)
    w_star *= math.sqrt(7) / np.linalg.norm(w_star)

    def risk(c):
        m, q, rho = L.overlaps(L.exp_map(w, U @ c), w_star)
        return L.risk_euclidean(m, q, 0.0, rho)

    np.testing.assert_allclose(L.finite_difference_hessian(risk, 6), U.T @ L.hess_sphere(w, w_star) @ U, atol=1e-6)
