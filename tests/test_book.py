"""mdlib.book (chapter support: parameters, statistics, claims) and the claims table."""
import sys
from pathlib import Path

import numpy as np
import pytest

from mdlib import book

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import make_claims_table  # noqa: E402


# ------------------------------------------------------------------ parameters
def test_check_params_names_the_bad_parameter():
    ns = dict(d=3000, n_runs=10, gamma=0.1, T=0.01, flag=True, delta=0.0)
    book.check_params(ns, ints={"d": 3, "n_runs": 2}, positive=["gamma"], nonnegative=["delta"],
                      unit_interval=["T"], bools=["flag"])
    for bad, kwargs, match in [
        (dict(n_runs=1), dict(ints={"n_runs": 2}), "n_runs must be >= 2"),
        (dict(n_runs=10.0), dict(ints={"n_runs": 2}), "n_runs must be an integer"),
        (dict(n_runs=True), dict(ints={"n_runs": 2}), "n_runs must be an integer"),
        (dict(gamma=0.0), dict(positive=["gamma"]), "gamma must be > 0"),
        (dict(gamma="0.1"), dict(positive=["gamma"]), "gamma must be a real number"),
        (dict(delta=-1e-4), dict(nonnegative=["delta"]), "delta must be >= 0"),
        (dict(T=1.0), dict(unit_interval=["T"]), r"T must be in \(0, 1\)"),
        (dict(flag=1), dict(bools=["flag"]), "flag must be True or False"),
        ({}, dict(positive=["missing"]), "'missing' is not defined"),
    ]:
        with pytest.raises(ValueError, match=match):
            book.check_params({**ns, **bad}, **kwargs)


def test_seeds_are_independent_and_reproducible():
    a, b = book.seeds(3, "x", "y"), book.seeds(3, "x", "y", "z")
    assert a["x"].generate_state(2).tolist() == b["x"].generate_state(2).tolist()
    assert a["x"].generate_state(2).tolist() != a["y"].generate_state(2).tolist()
    with pytest.raises(ValueError, match="seed"):
        book.seeds(-1, "x")


# ------------------------------------------------------------------ statistics
def test_mean_se_and_ratio_se():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, 400)
    m, se = book.mean_se(x)
    assert isinstance(m, float) and m == pytest.approx(x.mean()) and se == pytest.approx(x.std(ddof=1) / 20)
    assert np.isnan(book.mean_se([1.0])[1])  # one value: the error is unknown, not zero
    cols, ses = book.mean_se(np.ones((5, 3)), axis=0)
    assert cols.shape == ses.shape == (3,)
    assert book.finite([1.0, np.inf, np.nan, 2.0]).tolist() == [1.0, 2.0]
    # ratio of paired means: its standard error matches the spread over independent replicas
    reps = []
    for s in range(300):
        r = np.random.default_rng(s)
        den = r.normal(2.0, 0.5, 200)
        reps.append(book.ratio_se(1.5 * den + r.normal(0, 0.3, 200), den))
    r_vals, r_ses = np.array(reps).T
    assert abs(r_vals.mean() - 1.5) < 3 * r_vals.std() / np.sqrt(300)
    assert r_ses.mean() == pytest.approx(r_vals.std(ddof=1), rel=0.15)


# ------------------------------------------------------------------ claims
@pytest.mark.parametrize("relation, measured, se, expected, holds", [
    ("==", 1.0, 0.1, 1.25, True), ("==", 1.0, 0.1, 1.35, False),
    ("<=", 1.25, 0.1, 1.0, True), ("<=", 1.35, 0.1, 1.0, False),
    (">=", 0.75, 0.1, 1.0, True), (">=", 0.65, 0.1, 1.0, False),
    ("<", 0.65, 0.1, 1.0, True), ("<", 0.75, 0.1, 1.0, False),
    (">", 1.35, 0.1, 1.0, True), (">", 1.25, 0.1, 1.0, False),
    ("!=", 1.35, 0.1, 1.0, True), ("!=", 0.75, 0.1, 1.0, False),
])
def test_claim_relations_with_three_standard_errors(relation, measured, se, expected, holds):
    if holds:
        c = book.claim("x", measured, se=se, expected=expected, relation=relation, glue_values=False)
        assert c.tolerance == pytest.approx(0.3) and c.z == pytest.approx((measured - expected) / se)
    else:
        with pytest.raises(book.ClaimError, match="claim 'x' fails"):
            book.claim("x", measured, se=se, expected=expected, relation=relation, glue_values=False)


def test_claim_model_error_and_exact_values():
    book.claim("x", 1.05, expected=1.0, model_error=0.06, glue_values=False)
    with pytest.raises(book.ClaimError):
        book.claim("x", 1.05, expected=1.0, model_error=0.04, glue_values=False)
    c = book.claim("x", 2.0, expected=2.0, glue_values=False)  # exact: se = 0, z = 0
    assert c.z == 0 and c.text == "2 vs 2"


@pytest.mark.parametrize("measured, se", [(np.nan, 0.1), (1.0, np.nan), (np.inf, 0.1), (1.0, -0.1)])
def test_claim_without_evidence_fails(measured, se):
    with pytest.raises(book.ClaimError, match="missing or invalid"):
        book.claim("x", measured, se=se, expected=1.0, glue_values=False)


def test_claim_rejects_bad_arguments():
    with pytest.raises(ValueError, match="relation"):
        book.claim("x", 1.0, expected=1.0, relation="~", glue_values=False)
    with pytest.raises(ValueError, match="key"):
        book.claim("not an identifier", 1.0, expected=1.0, glue_values=False)
    with pytest.raises(ValueError, match="model_error"):
        book.claim("x", 1.0, expected=1.0, model_error=-1, glue_values=False)


def test_claim_summary_template():
    c = book.claim("x", 0.31241, se=0.0138, expected=0.3125, fmt=".4f", glue_values=False,
                   text="slope {measured} ± {se} (theory {expected}, z = {z})")
    assert c.text == "slope 0.3124 ± 0.0138 (theory 0.3125, z = -0.0)"


# ------------------------------------------------------------------ the claims table
CHAPTER = '''---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter

```{code-cell} ipython3
from mdlib import book
book.claim("first", 1.0, expected=1.0, paper="Eq. 1", statement="$x = 1$", where="{ref}`a`",
           verdict="confirmed")
book.claim("internal", 2.0, expected=2.0)  # a check, not a row
```

```{code-cell} ipython3
%matplotlib inline
claim("second", 1.0, se=0.1, expected=1.0, paper="Sec. 2", statement="y", where="here", verdict="holds")
```
'''


def test_claims_table_rows_come_from_the_claim_calls(tmp_path):
    md = tmp_path / "demo.md"
    md.write_text(CHAPTER, encoding="utf-8")
    rows = make_claims_table.chapter_rows(md)
    assert [r.key for r in rows] == ["first", "second"]
    assert rows[0].statement == "$x = 1$" and rows[1].paper == "Sec. 2"
    table = make_claims_table.render_table(rows)
    assert "| Eq. 1 | $x = 1$ | {ref}`a` | {glue:text}`demo.ipynb::claim_first:s` | confirmed |" in table
    page = f"intro\n{make_claims_table.START}\nold\n{make_claims_table.END}\nafter\n"
    new = make_claims_table.render_page(page, rows)
    assert new.startswith("intro\n") and new.endswith("\nafter\n") and "\nold\n" not in new


def test_claims_table_needs_literal_complete_rows(tmp_path):
    md = tmp_path / "bad.md"
    md.write_text(CHAPTER.replace('verdict="confirmed"', 'verdict=f"{x}"'), encoding="utf-8")
    with pytest.raises(SystemExit, match="verdict= must be a string literal"):
        make_claims_table.chapter_rows(md)
    md.write_text(CHAPTER.replace(', verdict="holds"', ""), encoding="utf-8")
    with pytest.raises(SystemExit, match="needs all of"):
        make_claims_table.chapter_rows(md)


def test_glue_figure_publishes_and_closes(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import myst_nb

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: seen.update({name: (value, display)}))
    fig, _ = plt.subplots()
    book.glue_figure("fig_x", fig)
    assert seen["fig_x"] == (fig, False)
    assert not plt.fignum_exists(fig.number)  # closed: not shown a second time under the cell
    with pytest.raises(ValueError, match="Figure"):
        book.glue_figure("fig_y", 1.0)


def test_glue_all_glues_each_entry_with_the_prefix(monkeypatch):
    import myst_nb

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: seen.update({name: value}))
    book.glue_all({"a": np.float64(1.5), "n": np.int64(3)}, prefix="x_")
    assert seen == {"x_a": 1.5, "x_n": 3} and type(seen["x_a"]) is float and type(seen["x_n"]) is int
    with pytest.raises(ValueError, match="glued"):
        book.glue_all({"bad": [1, 2]})


# ------------------------------------------------------------------ chapters and the result store
@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """The demo sweep at paper scale in a temporary store (4 cells of 12 runs, a few seconds)."""
    from mdlib import sweeps

    root = tmp_path_factory.mktemp("store")
    sweeps.run_sweep("demo", scale="paper", root=root, workers=2, progress=False)
    return root


@pytest.mark.slow
def test_sweep_data_reads_the_store_and_says_so(demo_store, tmp_path):
    res = book.sweep_data("demo", root=demo_store, cache=tmp_path)
    assert res.origin == "store" and not (tmp_path / "demo").exists()  # nothing computed
    assert int(res.ds["n_runs"].min()) == 12 and res.ds["t_sgd"].sizes["run"] == 12
    assert "from the result store: 4 cells, 12 runs per cell" in res.note and "commit" in res.note
    sub = book.sweep_data("demo", root=demo_store, cache=tmp_path, grid={"p": [2]})
    assert sub.ds["p"].values.tolist() == [2] and len(sub.provenance) == 2


@pytest.mark.slow
def test_sweep_data_computes_what_the_store_lacks(demo_store, tmp_path):
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(demo_store, partial)
    files = sorted((partial / "demo").glob("*.nc"))
    files[0].unlink()
    res = book.sweep_data("demo", root=partial, cache=tmp_path / "cache")
    assert res.origin == "mixed" and "1 of the 4 cells are not in the store" in res.note
    assert np.isfinite(res.ds["t_sgd"]).sum() == 3 * 12 + 6  # three stored cells, one at book scale (6 runs)
    assert sorted(res.ds["n_runs"].values.ravel().tolist()) == [6, 12, 12, 12]
    assert len(list((tmp_path / "cache" / "demo").glob("*.nc"))) == 1  # only the missing cell was computed
    # a store that holds none of the cells: all computed now, and the origin says so (nothing to recheck)
    res = book.sweep_data("demo", root=tmp_path / "empty", cache=tmp_path / "cache", book_runs=3)
    assert res.origin == "computed" and "4 of the 4 cells are not in the store" in res.note
    # another fixed parameter, or a grid value the store lacks: computed now, and the note says why
    res = book.sweep_data("demo", root=demo_store, cache=tmp_path / "cache", fixed={"gamma_over_p": 0.04})
    assert res.origin == "computed" and "gamma_over_p = 0.04 (the store holds 0.05)" in res.note
    res = book.sweep_data("demo", root=demo_store, cache=tmp_path / "cache", grid={"d": [40, 60]})
    assert res.origin == "computed" and "d in [60] (not in the stored grid)" in res.note
    res = book.sweep_data("demo", source="compute", root=demo_store, cache=tmp_path / "cache", book_runs=3)
    assert res.origin == "computed" and int(res.ds["n_runs"].max()) == 3
    with pytest.raises(ValueError, match="source"):
        book.sweep_data("demo", source="disk")
    with pytest.raises(ValueError, match="not fixed parameters"):
        book.sweep_data("demo", fixed={"nope": 1})


@pytest.mark.slow
def test_store_recheck_passes_on_the_store_and_fails_on_a_wrong_one(demo_store, tmp_path):
    import shutil

    import xarray as xr

    cells = [{"p": 1, "d": 80}, {"p": 2, "d": 80}]
    z, thr, table = book.store_recheck("demo", cells, n_runs=24, seed=99, variables=("t_sgd", "t_ode"),
                                       root=demo_store)
    assert len(table) == 4 and z < thr
    # a store whose exit times are wrong (here: all later by 5) fails the same check
    wrong = tmp_path / "wrong"
    shutil.copytree(demo_store, wrong)
    for f in (wrong / "demo").glob("*.nc"):
        ds = xr.load_dataset(f, engine="h5netcdf")
        ds["t_sgd"] = ds["t_sgd"] + 5.0
        ds.to_netcdf(f, engine="h5netcdf")
    z, thr, _ = book.store_recheck("demo", cells, n_runs=24, seed=99, root=wrong)
    assert z > thr


def test_plain_math_writes_the_summaries_maths_in_unicode():
    """Claim summaries are pasted with {glue:text}, which shows TeX verbatim: their maths is glued in Unicode."""
    from mdlib.book import plain_math

    assert plain_math(r"slope vs $\log d$: 0.32 ± 0.01") == "slope vs log d: 0.32 ± 0.01"
    assert plain_math(r"$\gamma_{\rm opt}$ at $d \ge 1000$, $d\to\infty$") == "γ_opt at d ≥ 1000, d→∞"
    assert plain_math("no maths: 3 ± 1 vs 2") == "no maths: 3 ± 1 vs 2"
    assert "$" not in plain_math(r"$\omega_M$ = 3.6; $z \le$ -17") and "\\" not in plain_math(r"$\Delta = 4$")
