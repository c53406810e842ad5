"""Tests of the book's build/test infrastructure (not of mdlib).

They work for whatever chapters `_toc.yml` lists and never execute a real
chapter: rerun tests use a tiny notebook written to a temporary folder.
"""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import bookinfo  # noqa: E402
import browser_check  # noqa: E402
import offline_book  # noqa: E402

CHAPTERS = bookinfo.chapters()
CHAPTER_IDS = [p.stem for p in CHAPTERS]
PY = sys.executable


def norm(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def req_name(spec: str) -> str:
    return norm(re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec).group(1))


# ------------------------------------------------------------------ dependencies
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def direct_dependencies() -> set[str]:
    """mdlib's dependencies and the book extra: what the lock and environment.yml hold.
    (The ``cluster`` extra, dask-jobqueue, is documented for clusters, not installed here.)"""
    project = pyproject()["project"]
    deps = list(project["dependencies"]) + list(project["optional-dependencies"]["book"])
    return {req_name(d) for d in deps}


def environment_dependencies() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for pip_dep in dep.get("pip", []):
                if not pip_dep.startswith("-"):
                    names.add(req_name(pip_dep))
        else:
            names.add(req_name(dep))
    return names - {"python", "pip"}


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert m, f"requirements.lock line is not an exact pin: {line!r}"
        pins[norm(m.group(1))] = m.group(2)
    return pins


def test_pyproject_declares_package_and_python():
    data = pyproject()
    assert data["project"]["name"] == "mdlib"
    assert data["project"]["requires-python"] == ">=3.11"
    assert data["tool"]["setuptools"]["packages"] == ["mdlib"]
    core = {req_name(d) for d in data["project"]["dependencies"]}
    assert {"numpy", "scipy", "numba", "matplotlib", "tqdm"} <= core
    book = {req_name(d) for d in data["project"]["optional-dependencies"]["book"]}
    assert {"jupyter-book", "jupytext", "papermill", "pytest", "nbval", "ipykernel",
            "sphinx-exercise", "sphinxcontrib-bibtex", "sphinx-mathjax-offline",
            "selenium"} <= book
    for dep in data["project"]["dependencies"] + data["project"]["optional-dependencies"]["book"]:
        assert ">=" in dep, f"{dep!r} has no lower bound"


def test_environment_yml_names_the_same_direct_dependencies():
    assert environment_dependencies() == direct_dependencies()


def test_every_direct_dependency_is_pinned_in_the_lock():
    pins = lock_pins()
    missing = sorted(direct_dependencies() - set(pins))
    assert not missing, f"not pinned in requirements.lock: {missing} (run `make lock`)"
    assert "mdlib" not in pins, "requirements.lock must not pin mdlib itself"


def test_pins_satisfy_pyproject_bounds():
    from packaging.requirements import Requirement

    pins = lock_pins()
    project = pyproject()["project"]
    for spec in project["dependencies"] + project["optional-dependencies"]["book"]:
        req = Requirement(spec)
        version = pins[norm(req.name)]
        assert req.specifier.contains(version, prereleases=True), f"{req.name}=={version} violates {spec!r}"


# ------------------------------------------------------------------ book config
def final_config():
    from jupyter_book.config import get_final_config

    config, _ = get_final_config(
        user_yaml=ROOT / "_config.yml",
        cli_config={"latex_individualpages": False},
        sourcedir=ROOT,
        raise_on_invalid=True,
    )
    return config


def test_book_config_is_strict_and_offline():
    cfg = final_config()
    assert cfg["html_title"] == "Escaping mediocrity — an executable edition"
    assert "sphinx.ext.intersphinx" not in cfg["extensions"]
    assert "sphinx_thebe" not in cfg["extensions"]
    assert not cfg.get("intersphinx_mapping")
    for ext in ("sphinx_exercise", "sphinxcontrib.bibtex", "offline_book", "myst_nb"):
        assert ext in cfg["extensions"]
    assert cfg["mathjax_path"] == offline_book.MATHJAX_ENTRY
    assert not re.match(r"^(https?:)?//", cfg["mathjax_path"])
    assert cfg["nb_ipywidgets_js"] == {}
    assert cfg["nb_execution_allow_errors"] is False
    assert cfg["nb_execution_raise_on_error"] is True
    assert cfg["nb_execution_mode"] == "cache"  # `make book` empties the cache first
    assert cfg["nb_execution_timeout"] >= 600
    assert cfg["nb_merge_streams"] is True
    assert {"dollarmath", "amsmath", "colon_fence"} <= set(cfg["myst_enable_extensions"])
    assert cfg["external_toc_exclude_missing"] is True
    assert cfg["bibtex_bibfiles"] == ["book/references.bib"]
    launch = cfg["html_theme_options"]["launch_buttons"]
    assert launch["binderhub_url"] and launch["colab_url"]
    assert not launch.get("thebe")


def test_extra_extensions_are_not_dropped():
    """sphinx.config.extensions replaces jupyter-book's list: nothing may fall out."""
    user = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["sphinx"]
    wanted = list(user.get("extra_extensions") or []) + list(user.get("local_extensions") or {})
    final = final_config()["extensions"]
    missing = [ext for ext in wanted if ext not in final]
    assert not missing, f"add {missing} to sphinx.config.extensions in _config.yml"


def make_target(text: str, name: str) -> str:
    """The recipe of a Makefile target (up to the next blank line)."""
    start = text.index(f"\n{name}:")
    return text[start:text.index("\n\n", start)]


def test_makefile_book_targets():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "CACHE  := _build/.jupyter_cache" in text
    book = make_target(text, "book")
    assert "rm -rf $(CACHE)" in book and "--all" in book
    assert "BUILD_FLAGS ?= -W -n --keep-going" in text


def test_make_test_executes_each_chapter_once():
    """make test: nbval executes the chapters into the cache, the build only reads it."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    test = make_target(text, "test")
    assert "test-chapters" in test and "book-cached" in test and "lint" in test and "test-unit" in test
    assert "$(MAKE) --no-print-directory book\n" not in test + "\n", "make book would execute every chapter again"
    assert "-p nbval_cache --nbval-cache $(CACHE)" in text
    chapters = make_target(text, "test-chapters")
    assert "rm -rf $(CACHE)" in chapters and "PYTHONPATH=scripts" in chapters
    cached = make_target(text, "book-cached")
    assert "rm -rf" not in cached and "cache-check $(CACHE)" in cached
    assert "-m \"not slow\"" in make_target(text, "test-fast")


def test_nbval_run_fills_the_cache_the_build_reads(tmp_path):
    """A notebook that passes under nbval is stored with its outputs, and myst-nb's cache
    lookup (the one the book build does) finds it; a failing notebook is not stored."""
    from jupyter_cache import get_cache

    good = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 6 * 7"),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("print('the answer', x)\nx"),
    ])
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    for name, nb in (("good", good), ("bad", bad)):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(tmp_path / f"{name}.ipynb"))
    cache = tmp_path / "_build" / ".jupyter_cache"
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
         "-p", "nbval_cache", "--nbval-cache", str(cache), "-q", "good.ipynb", "bad.ipynb"],
        cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "scripts")},
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 1, res.stdout + res.stderr  # bad.ipynb fails
    jc = get_cache(str(cache))
    uris = {Path(r.uri).name for r in jc.list_cache_records()}
    assert uris == {"good.ipynb"}
    record = jc.match_cache_notebook(nbformat.read(str(tmp_path / "good.ipynb"), as_version=4))
    assert record.data["executed_by"] == "nbval"
    _, merged = jc.merge_match_into_notebook(nbformat.read(str(tmp_path / "good.ipynb"), as_version=4))
    outputs = merged.cells[2].outputs
    assert [o["output_type"] for o in outputs] == ["stream", "execute_result"]
    assert outputs[0]["text"] == "the answer 42\n" and outputs[1]["data"]["text/plain"] == "42"


def test_pages_workflow_tests_before_it_publishes():
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text(encoding="utf-8"))
    steps = flow["jobs"]["build"]["steps"]
    runs = [s.get("run", "") for s in steps]
    uses = [s.get("uses", "") for s in steps]
    test_at = next(i for i, r in enumerate(runs) if r.startswith("make test"))
    upload_at = next(i for i, u in enumerate(uses) if u.startswith("actions/upload-pages-artifact"))
    assert test_at < upload_at
    assert flow["jobs"]["deploy"]["needs"] == "build"


def test_ci_run_calls_make_test():
    run = ROOT / ".ci" / "run"
    text = run.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash") or text.startswith("#!/bin/bash")
    assert "set -euo pipefail" in text and re.search(r"^\s*make test\b", text, re.M)
    assert run.stat().st_mode & stat.S_IXUSR


def test_gitignore():
    lines = set((ROOT / ".gitignore").read_text(encoding="utf-8").split())
    for entry in (".venv/", "_build/", "runs/", "__pycache__/", "*.egg-info/",
                  ".ipynb_checkpoints/", ".pytest_cache/", ".jupyter_cache/", "*.nbi", "*.nbc"):
        assert entry in lines, entry


def test_references_bib_has_the_cited_works():
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"@\w+\{([^,\s]+),", bib))
    assert len(keys) == len(re.findall(r"@\w+\{", bib)), "duplicate or malformed keys"
    for needle in ("2305.18502", "Saad", "Vershynin", "Zeng", "Veiga",
                   "dimensionless", "critical scaling", "non-convex losses"):
        assert needle in bib, needle


def test_mathjax_is_shipped_locally():
    static = offline_book.mathjax_static_dir()
    entry = static / offline_book.MATHJAX_ENTRY
    assert entry.is_file()
    assert b'VERSION="3.' in (static / "mathjax" / "core.js").read_bytes()
    assert (static / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()


# ------------------------------------------------------------------ chapters
def test_toc_entries_exist():
    for entry in bookinfo.toc_files():
        path = ROOT / entry
        candidates = [path] if path.suffix else [path.with_suffix(s) for s in (".md", ".ipynb")]
        assert any(c.is_file() for c in candidates), (
            f"_toc.yml names a missing file {entry}"
            + (" (run `make sync` to create it from its .md)"
               if path.with_suffix(".md").is_file() else ""))


def test_chapter_md_twins_are_excluded_from_sphinx():
    twins = set(offline_book.paired_markdown_twins(ROOT))
    for nb in CHAPTERS:
        md = nb.with_suffix(".md").relative_to(ROOT).as_posix()
        assert md in twins
    assert "book/intro.md" not in twins


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=CHAPTER_IDS)
def test_chapter_is_a_myst_pair(nb_path):
    md = nb_path.with_suffix(".md")
    assert md.is_file(), f"{nb_path.name} has no paired {md.name} (make sync)"
    header = md.read_text(encoding="utf-8").split("---")[1]
    meta = yaml.safe_load(header)
    assert meta["jupytext"]["text_representation"]["format_name"] == "myst"
    assert meta["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=CHAPTER_IDS)
def test_pair_is_in_sync(nb_path):
    import jupytext

    from_md = jupytext.read(nb_path.with_suffix(".md"))
    from_ipynb = jupytext.read(nb_path)

    def cells(nb):
        return [
            (c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", [])))
            for c in nb.cells
        ]

    a, b = cells(from_md), cells(from_ipynb)
    if a != b:
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                pytest.fail(f"{nb_path.stem}: cell {i} differs between .md and .ipynb "
                            f"(run `make sync`):\n  md:    {x!r:.200}\n  ipynb: {y!r:.200}")
        pytest.fail(f"{nb_path.stem}: .md has {len(a)} cells, .ipynb {len(b)} (run `make sync`)")


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=CHAPTER_IDS)
def test_notebook_is_committed_without_outputs(nb_path):
    nb = nbformat.read(str(nb_path), as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"cell {i} has outputs (make strip)"
            assert cell.execution_count is None, f"cell {i} has an execution count (make strip)"


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=CHAPTER_IDS)
def test_exactly_one_documented_parameters_cell(nb_path):
    params = bookinfo.chapter_parameters(nb_path)  # raises with a precise message
    assert params, "the parameters cell assigns nothing"
    for p in params:
        assert p.comment, p.name


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=CHAPTER_IDS)
def test_papermill_lists_the_parameters_with_comments(nb_path):
    """papermill's own inspection (what ``papermill --help-notebook`` prints) finds every parameter
    with its comment as help."""
    listed = papermill.inspect_notebook(str(nb_path))
    for p in bookinfo.chapter_parameters(nb_path):
        assert p.name in listed, f"papermill does not list {p.name!r}: {sorted(listed)}"
        assert " ".join(p.comment.split()) == " ".join(listed[p.name]["help"].split()), listed[p.name]


def test_papermill_help_notebook_prints_them():
    """The command line a reader types: ``papermill --help-notebook`` (one chapter; the others share
    the inspection above)."""
    nb_path = CHAPTERS[0]
    out = subprocess.run(
        [PY, "-m", "papermill", "--help-notebook", str(nb_path)],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    # papermill prints "  name: type (default value)  help", wrapping long help
    blocks = {m.group(1): " ".join(m.group(2).split())
              for m in re.finditer(r"^  (\w+): (.*?)(?=^  \w+: |\Z)", out, re.M | re.S)}
    for p in bookinfo.chapter_parameters(nb_path):
        assert p.name in blocks, f"papermill does not list {p.name!r}:\n{out}"
        assert " ".join(p.comment.split()) in blocks[p.name], f"{p.name!r} without its comment:\n{out}"


@pytest.mark.parametrize(
    "source, message",
    [
        ("n = 3", "trailing '# comment'"),
        ("n = 3  #   ", "trailing '# comment'"),
        ("import numpy as np  # numpy", "single assignment"),
        ("a = b = 1  # two", "exactly one '='"),
        ("a += 1  # two", "single assignment"),
        ("x = f(1)  # call", "literal"),
        ("n = 1  # a\nn = 2  # b", "twice"),
        ("p = 2  # width (>= 2)", "exactly one '='"),
        ("s = 'a=b'  # label", "exactly one '='"),
    ],
)
def test_parameters_cell_rules(source, message):
    with pytest.raises(bookinfo.ParametersError, match=re.escape(message)):
        bookinfo.parse_parameters_source(source)


def test_parameters_cell_accepts_documented_assignments():
    src = "# model\nd = 3000  # input dimension\n\ngamma: float = 0.1  # learning rate\nname = 'a#b'  # label\n"
    params = bookinfo.parse_parameters_source(src)
    assert [(p.name, p.default, p.comment) for p in params] == [
        ("d", 3000, "input dimension"), ("gamma", 0.1, "learning rate"), ("name", "a#b", "label")]


# ------------------------------------------------------------------ rerun
def tiny_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(
        "n = 3  # number of points\ngamma = 0.1  # learning rate\n"
        "flag = False  # a switch\nlabel = 'x'  # a label"
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "assert isinstance(n, int) and isinstance(gamma, float)\n"
            "print('result', n * gamma, flag, label)"
        ),
    ]
    path = folder / "tiny.ipynb"
    nbformat.write(nb, str(path))
    return path


def rerun(*args, cwd=ROOT):
    return subprocess.run([PY, str(ROOT / "scripts" / "rerun.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def test_rerun_rejects_unknown_parameter_before_running(tmp_path):
    nb = tiny_notebook(tmp_path)
    out = tmp_path / "runs"
    res = rerun(nb, "-p", "nn", "5", "--output-dir", out)
    assert res.returncode == 2
    assert "unknown parameter 'nn'" in res.stderr and "n, gamma, flag, label" in res.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "name, value",
    [("n", "3.5"), ("n", "ten"), ("gamma", "fast"), ("flag", "maybe"), ("gamma", "nan")],
)
def test_rerun_rejects_ill_typed_values_before_running(tmp_path, name, value):
    nb = tiny_notebook(tmp_path)
    out = tmp_path / "runs"
    res = rerun(nb, "-p", name, value, "--output-dir", out)
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"parameter '{name}'" in res.stderr and repr(value) in res.stderr
    assert not out.exists()


def test_rerun_coerces_types():
    from rerun import coerce

    p = {q.name: q for q in bookinfo.parse_parameters_source(
        "n = 3  # a\ng = 0.1  # b\nf = True  # c\ns = 'x'  # d\nl = [1, 2]  # e")}
    assert coerce(p["n"], "5000") == 5000 and type(coerce(p["n"], "5000")) is int
    assert coerce(p["g"], "1") == 1.0 and type(coerce(p["g"], "1")) is float
    assert coerce(p["g"], "1e-4") == 1e-4
    assert coerce(p["f"], "false") is False and coerce(p["f"], "True") is True
    assert coerce(p["s"], "3") == "3"
    assert coerce(p["l"], "[5, 6]") == [5, 6]


def test_rerun_demo_chapter_validation():
    """The first chapter's own parameters pass a dry run; a wrong name does not."""
    if not CHAPTERS:
        pytest.skip("no chapters")
    nb = CHAPTERS[0]
    first = bookinfo.chapter_parameters(nb)[0]
    res = rerun(nb.stem, "-p", first.name, repr(first.default).strip("'\""), "--dry-run")
    assert res.returncode == 0, res.stderr
    res = rerun(nb.stem, "-p", "no_such_parameter", "1", "--dry-run")
    assert res.returncode == 2 and "unknown parameter 'no_such_parameter'" in res.stderr


def test_rerun_executes_into_output_dir_and_keeps_the_source(tmp_path):
    nb = tiny_notebook(tmp_path)
    before = nb.read_bytes()
    out = tmp_path / "runs"
    res = rerun(nb, "-p", "n", "7", "-p", "gamma", "2", "--output-dir", out)
    assert res.returncode == 0, res.stdout + res.stderr
    assert nb.read_bytes() == before
    (result,) = out.glob("tiny_*.ipynb")
    executed = nbformat.read(str(result), as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "result 14.0 False x" in text
    # a second run never overwrites the first
    assert rerun(nb, "-p", "n", "7", "-p", "gamma", "2", "--output-dir", out).returncode == 0
    assert len(list(out.glob("tiny_*.ipynb"))) == 2


# ------------------------------------------------------------------ browser check
def fake_site(tmp_path: Path, body: str) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    page = ("<!doctype html><html><head><title>t</title></head><body>"
            f"<p id='top'>x</p>{body}</body></html>")
    (site / "index.html").write_text(page, encoding="utf-8")
    (site / "other.html").write_text("<html><body><h1 id='here'>o</h1></body></html>",
                                     encoding="utf-8")
    return site


def test_static_check_flags_remote_assets_and_broken_links(tmp_path):
    site = fake_site(tmp_path, (
        "<script src='https://cdn.example.org/x.js'></script>"
        "<link rel='stylesheet' href='//fonts.example.org/f.css'>"
        "<a href='other.html#here'>ok</a><a href='other.html#gone'>bad anchor</a>"
        "<a href='missing.html'>bad file</a><a href='https://arxiv.org/abs/2305.18502'>ext</a>"
        "<a href='#top'>self</a>"
    ))
    errors = browser_check.static_checks(site)
    text = "\n".join(errors)
    assert "cdn.example.org" in text and "fonts.example.org" in text
    assert "#gone" in text and "missing.html" in text
    assert "arxiv" not in text and "#here" not in text and "#top" not in text
    assert len(errors) == 4


def test_browser_check_flags_broken_pages(tmp_path):
    chromium, driver, why = browser_check.find_browser()
    if why:
        pytest.skip(f"browser check unavailable: {why}")
    site = fake_site(tmp_path, (
        "<img src='nope.png'>"
        "<img src='https://cdn.example.org/remote.png'>"
        "<p>raw maths $$x$$ left over</p>"
        "<div class='output traceback'>Traceback (most recent call last):</div>"
    ))
    errors = browser_check.browser_checks(site, tmp_path / "shots", chromium, driver, "other.html")
    text = "\n".join(errors)
    assert "image did not load" in text
    assert "raw TeX" in text
    assert "traceback" in text
    assert "HTTP 404" in text
    assert "non-loopback request: https://cdn.example.org/remote.png" in text
    assert (tmp_path / "shots" / "landing.png").is_file()
    assert not [e for e in errors if e.startswith("other.html")]


def test_browser_check_blames_each_page_for_its_own_console_errors(tmp_path):
    """A page's late console entries (a 404's "Failed to load resource") are not blamed on
    the next page, whatever the browser's timing: pages with missing images alternate with
    clean ones, and each error must name the page that caused it."""
    chromium, driver, why = browser_check.find_browser()
    if why:
        pytest.skip(f"browser check unavailable: {why}")
    site = fake_site(tmp_path, "<img src='nope0.png'>")
    for k in range(1, 4):  # a_1 (broken), b_1 (clean), a_2, b_2, ... in the order they are opened
        (site / f"a_{k}.html").write_text(f"<html><body><img src='nope{k}.png'></body></html>", encoding="utf-8")
        (site / f"b_{k}.html").write_text("<html><body><p>clean</p></body></html>", encoding="utf-8")
    errors = browser_check.browser_checks(site, None, chromium, driver, None)
    for k in range(1, 4):
        mine = [e for e in errors if e.startswith(f"a_{k}.html:")]
        assert any(f"nope{k}.png" in e and "console:" in e for e in mine), errors
        assert all(f"nope{k}.png" in e for e in mine), errors
        assert not [e for e in errors if e.startswith(f"b_{k}.html")], errors
    assert not [e for e in errors if e.startswith("other.html")], errors


# ------------------------------------------------------------------ chapters share code through mdlib
def _chapter_code(nb_path):
    nb = nbformat.read(str(nb_path), as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_no_function_or_class_is_defined_in_two_chapters():
    """Code a chapter needs twice belongs in mdlib: no name is defined by two chapters."""
    import ast

    owners: dict[str, list[str]] = {}
    for nb in CHAPTERS:
        names = set()
        for src in _chapter_code(nb):
            lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
            tree = ast.parse("\n".join(lines))
            names |= {n.name for n in ast.walk(tree)
                      if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))}
        for name in names:
            owners.setdefault(name, []).append(nb.stem)
    twice = {k: v for k, v in owners.items() if len(v) > 1}
    assert not twice, f"defined in several chapters (move them to mdlib): {twice}"


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=CHAPTER_IDS)
def test_one_import_style(nb_path):
    """Chapters import mdlib one way: `import mdlib` and `from mdlib import book, plotting`,
    then call `mdlib.<name>` (no `from mdlib.<module> import ...`)."""
    code = "\n".join(_chapter_code(nb_path))
    assert re.search(r"^import mdlib$", code, re.M), "no `import mdlib`"
    assert re.search(r"^from mdlib import book, plotting$", code, re.M), "no `from mdlib import book, plotting`"
    other = [ln for ln in code.splitlines()
             if re.match(r"\s*(from mdlib|import mdlib\.)", ln) and ln.strip() != "from mdlib import book, plotting"]
    assert not other, other
