"""The errata list is complete, points at tests that exist, and renders as a page; and the
errata whose demonstration belongs to no single module (App. H's scaling, the second
layer's learning rate)."""
import ast
import math
import re
from pathlib import Path

import numpy as np
import pytest

import mdlib
from mdlib import landscape as L
from mdlib.errata import (
    ERRATA,
    ERRATUM_FIELDS,
    KINDS,
    Erratum,
    errata_table,
    printed_hessian_eq67,
    printed_hessian_eq83,
)

ROOT = Path(__file__).resolve().parent.parent
# test files whose errata tests are written alongside this list; others belong to other modules
OWN_TEST_FILES = {"tests/test_theory.py", "tests/test_landscape.py", "tests/test_errata.py"}


def _node_exists(node_id):
    """(file_exists, node_exists) for 'path::func' or 'path::Class::method' (parametrize ids allowed)."""
    parts = node_id.split("::")
    path = ROOT / parts[0]
    if not path.exists():
        return False, False
    names = [re.sub(r"\[.*\]$", "", p) for p in parts[1:]]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    scope = tree.body
    for name in names:
        found = [n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and n.name == name]
        if not found:
            return True, False
        scope = getattr(found[0], "body", [])
    return True, True


def test_entries_are_complete_and_unique():
    assert len(ERRATA) > 0
    ids = [e.id for e in ERRATA]
    assert len(ids) == len(set(ids)), "duplicate erratum ids"
    for e in ERRATA:
        assert isinstance(e, Erratum)
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", e.id), e.id
        assert e.kind in KINDS, e.id
        for name in ERRATUM_FIELDS:
            value = getattr(e, name)
            assert isinstance(value, str), (e.id, name)
            if name not in ("evidence", "test"):
                assert value.strip(), f"erratum {e.id}: field {name!r} is empty"
        assert e.paper.strip() != e.corrected.strip(), e.id
        if e.kind == "text":  # a text erratum quotes the paper instead of pointing at a test
            assert e.test == "" and "“" in e.paper and "”" in e.paper, e.id
        else:
            assert re.fullmatch(r"tests/test_\w+\.py::test_\w+(\[.*\])?", e.test), e.test


def test_kinds_are_validated():
    with pytest.raises(ValueError, match="kind"):
        Erratum("x", "typo", "Eq. 1", "a", "b", "why", "tests/test_x.py::test_y")
    with pytest.raises(ValueError, match="needs a test"):
        Erratum("x", "formula", "Eq. 1", "a", "b", "why", "")


def test_the_page_shows_every_kind_and_every_entry():
    # the committed page, which tests/test_pages.py checks is exactly what the script renders
    out = (ROOT / "book" / "errata.md").read_text(encoding="utf-8")
    for e in ERRATA:
        assert f"(erratum-{e.id})=" in out
    for kind in {e.kind for e in ERRATA}:
        assert f"*{kind}*" in out
    # the two bounds on gamma are filed as a sharpening, not as an error
    assert next(e for e in ERRATA if e.id == "sec2-learning-rate-bound").kind == "sharpening"


@pytest.mark.parametrize("e", ERRATA, ids=[e.id for e in ERRATA])
def test_latex_braces_balance(e):
    for text in (e.paper, e.corrected):
        depth = 0
        for ch in text.replace(r"\{", "").replace(r"\}", ""):
            depth += (ch == "{") - (ch == "}")
            assert depth >= 0, (e.id, text)
        assert depth == 0, (e.id, text)


def test_every_test_node_exists():
    missing_own, missing_foreign_file = [], []
    for e in ERRATA:
        if not e.test:
            continue
        file_exists, node_exists = _node_exists(e.test)
        path = e.test.split("::")[0]
        if node_exists:
            continue
        if file_exists or path in OWN_TEST_FILES:
            missing_own.append(e.test)
        else:
            missing_foreign_file.append(e.test)
    assert not missing_own, f"errata point at tests that do not exist: {missing_own}"
    if missing_foreign_file:  # a test file another module has not written yet
        pytest.xfail(f"test files not written yet: {missing_foreign_file}")


def test_errata_tests_in_this_area_are_named_as_errata():
    for e in ERRATA:
        if e.kind in ("formula", "sharpening") and e.test.split("::")[0] in OWN_TEST_FILES:
            assert e.test.split("::")[-1].startswith("test_erratum_"), e.test


def test_errata_table_rows():
    rows = errata_table()
    assert len(rows) == len(ERRATA)
    for row, e in zip(rows, ERRATA):
        assert list(row) == list(ERRATUM_FIELDS)
        assert row["id"] == e.id and row["test"] == e.test
        assert all(isinstance(v, str) for v in row.values())
    # rows are copies: editing them does not touch the list
    rows[0]["id"] = "changed"
    assert ERRATA[0].id != "changed"


# ---------------------------------------------------------------------------
# errata demonstrated here
# ---------------------------------------------------------------------------
D = 8
Z_MAX = 4.5  # max |z| over the <= D^2 entries of a Monte Carlo mean


def _zmax(mean, se, target):
    return float(np.max(np.abs(mean - target) / np.where(se > 0, se, np.inf)))


def _mc(samples):
    return samples.mean(0), samples.std(0) / math.sqrt(len(samples))


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(40)
    v = rng.standard_normal(D)
    w_star = math.sqrt(D) * v / np.linalg.norm(v)
    w = 1.3 * rng.standard_normal(D)
    return w, w_star


@pytest.mark.slow
def test_erratum_eq64_moments_scaling(pair):
    """Eq. 64 with the paper's data x ~ N(0, I_d/d) and the overlaps of Eq. 62 (normalised by d):
    E[lam*^2 lam x] = (rho w + 2 m w*)/d and E[lam^3 x] = 3 q w/d. The printed right-hand sides
    (theta read as w) miss the 1/d, and the printed E[lam*^3 x] is not 3 q w."""
    w, w_star = pair
    rho, m, q = w_star @ w_star / D, w @ w_star / D, w @ w / D
    x = np.random.default_rng(41).standard_normal((400_000, D)) / math.sqrt(D)
    lam, lams = x @ w, x @ w_star
    mean, se = _mc(lams[:, None] ** 2 * lam[:, None] * x)
    assert _zmax(mean, se, (rho * w + 2 * m * w_star) / D) < Z_MAX
    assert _zmax(mean, se, rho * w + 2 * m * w_star) > 20  # printed: a factor d too large
    mean, se = _mc(lam[:, None] ** 3 * x)
    assert _zmax(mean, se, 3 * q * w / D) < Z_MAX
    mean, se = _mc(lams[:, None] ** 3 * x)  # the printed left-hand side ...
    assert _zmax(mean, se, 3 * q * w / D) > 20  # ... is not 3 q w (/d)
    assert _zmax(mean, se, 3 * rho * w_star / D) < Z_MAX  # it is 3 rho w*/d


@pytest.mark.slow
def test_erratum_eq66_67_moments_and_hessian(pair):
    """App. H's scaling (x ~ N(0, I_d), unnormalised overlaps): E[lam^2 x x^T] = q I + 2 w w^T and
    E[lam*^2 x x^T] = rho I + 2 w* w*^T (Eq. 66 prints a factor 1 on both rank-one terms); the
    population Hessian is 2((3q - rho) I + 6 w w^T - 2 w* w*^T), the Jacobian of Eq. 65, not Eq. 67."""
    w, w_star = pair
    wH, wsH = w / math.sqrt(D), w_star / math.sqrt(D)
    q, rho = wH @ wH, wsH @ wsH
    eye = np.eye(D)
    x = np.random.default_rng(42).standard_normal((200_000, D))
    xx = x[:, :, None] * x[:, None, :]
    for v, norm2 in ((wH, q), (wsH, rho)):
        mean, se = _mc((x @ v)[:, None, None] ** 2 * xx)
        assert _zmax(mean, se, norm2 * eye + 2 * np.outer(v, v)) < Z_MAX
        assert _zmax(mean, se, norm2 * eye + np.outer(v, v)) > 20  # printed
    corrected = 2 * ((3 * q - rho) * eye + 6 * np.outer(wH, wH) - 2 * np.outer(wsH, wsH))
    printed = 2 * (-(rho - 3 * q) * eye + 3 * np.outer(wH, wH) - np.outer(wsH, wsH))
    rng = np.random.default_rng(43)
    xs = rng.standard_normal((200_000, D))
    y = (xs @ wsH) ** 2 + math.sqrt(0.3) * rng.standard_normal(len(xs))
    hess = 2 * (3 * (xs @ wH) ** 2 - y)[:, None, None] * xs[:, :, None] * xs[:, None, :]  # Eq. 61, per sample
    mean, se = _mc(hess)
    assert _zmax(mean, se, corrected) < Z_MAX
    assert _zmax(mean, se, printed) > 20
    np.testing.assert_allclose(corrected, D * L.hess_euclidean(w, w_star), atol=1e-12)  # the book's scaling
    eq65 = lambda v: -2 * ((rho - 3 * (v @ v)) * v + 2 * (v @ wsH) * wsH)  # noqa: E731
    h = 1e-5
    jac = np.array([(eq65(wH + h * e) - eq65(wH - h * e)) / (2 * h) for e in eye]).T
    np.testing.assert_allclose(jac, corrected, atol=1e-8)


def test_convention_second_layer_rate():
    """The second layer's learning rate: at gamma/d (App. B, the book) the mean one-step move of a,
    per unit of t = nu gamma/(p d), is the ODE's da/dt; at gamma/p (the words of App. C.1) it is d/p
    times larger, so that a would move infinitely fast compared with m and Q as d grows."""
    p, d, gamma, delta = 3, 2000, 0.4, 1e-3
    pb = mdlib.Problem(p, d, gamma, delta, spherical=False, train_second_layer=True)
    rng = np.random.default_rng(44)
    m = np.array([0.3, -0.1, 0.05])
    Q = np.array([[1.1, 0.2, 0.0], [0.2, 0.9, -0.1], [0.0, -0.1, 1.0]])
    a = np.array([1.0, 0.7, 1.2])
    da_ode = mdlib.ode_drift(pb, m, Q, a)[2]
    omega = np.block([[np.ones((1, 1)), m[None, :]], [m[:, None], Q]])
    fields = rng.standard_normal((2_000_000, p + 1)) @ np.linalg.cholesky(omega).T
    lam_star, lam = fields[:, 0], fields[:, 1:]
    E = (lam**2 @ a) / p - lam_star**2 - math.sqrt(delta) * rng.standard_normal(len(fields))
    grad_a = E[:, None] * lam**2 / p  # d loss / d a_j
    dt = pb.dt  # gamma/(p d) per step
    for rate, factor in ((gamma / d, 1.0), (gamma / p, d / p)):
        step = -rate * grad_a / dt  # one-step move of a per unit of t
        mean, se = _mc(step)
        assert _zmax(mean, se, factor * da_ode) < Z_MAX
    assert np.all(np.abs(da_ode) > 0.05)  # a really moves: the comparison has power


def test_printed_hessians_are_the_app_h_expressions_in_the_book_scaling():
    """printed_hessian_eq67/eq83 (book scaling, used by the landscape chapter) are the printed
    App. H expressions of tests/test_landscape.py, rescaled: Hess_H = d Hess_book with
    w_H = w / sqrt(d); they differ from the corrected Hessians (mdlib.landscape)."""
    d = 8
    rng = np.random.default_rng(7)
    w_star = rng.standard_normal(d)
    w_star *= math.sqrt(d) / np.linalg.norm(w_star)
    w = rng.standard_normal(d) + 0.5 * w_star
    wH, wsH = w / math.sqrt(d), w_star / math.sqrt(d)
    q, rho = wH @ wH, wsH @ wsH
    eq67_H = 2 * (-(rho - 3 * q) * np.eye(d) + 3 * np.outer(wH, wH) - np.outer(wsH, wsH))
    np.testing.assert_allclose(d * printed_hessian_eq67(w, w_star), eq67_H, atol=1e-12)
    assert np.abs(printed_hessian_eq67(w, w_star) - L.hess_euclidean(w, w_star)).max() > 0.1 / d
    w_s = w * math.sqrt(d) / np.linalg.norm(w)  # on the sphere
    wH = w_s / math.sqrt(d)
    m = wH @ wsH
    eq83_H = 4 * (m**2 * np.eye(d) + m * np.outer(wH, wsH) - np.outer(wsH, wsH))
    np.testing.assert_allclose(d * printed_hessian_eq83(w_s, w_star), eq83_H, atol=1e-12)
    P = np.eye(d) - np.outer(wH, wH)
    t = P @ rng.standard_normal(d)  # same quadratic form on tangent vectors, not the same matrix
    assert t @ printed_hessian_eq83(w_s, w_star) @ t == pytest.approx(t @ L.hess_sphere(w_s, w_star) @ t, rel=1e-10)
    assert np.abs(printed_hessian_eq83(w_s, w_star) - L.hess_sphere(w_s, w_star)).max() > 0.1 / d
