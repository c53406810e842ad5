#!/usr/bin/env python3
"""Facts about the book's chapters, shared by the Makefile, the tests and scripts.

A *chapter* is a ``file:`` entry of ``_toc.yml`` that resolves to a notebook
``book/<name>.ipynb`` (paired by jupytext with ``book/<name>.md``). Pages that are
plain MyST markdown (``book/intro.md``) are not chapters.

Command line::

    python scripts/bookinfo.py chapters        # chapter .ipynb paths, one per line
    python scripts/bookinfo.py params CHAPTER  # the parameters cell, one line each
    python scripts/bookinfo.py sync            # jupytext --sync every pair, strip outputs
    python scripts/bookinfo.py strip [FILES]   # remove outputs/execution counts
    python scripts/bookinfo.py cache-check DIR # every chapter executed once, by nbval
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOC = ROOT / "_toc.yml"
BOOK = ROOT / "book"


# --------------------------------------------------------------------------- ToC
def toc_files(toc: Path = TOC) -> list[str]:
    """Every ``file:`` (and ``root:``) entry of the ToC, in reading order."""
    import yaml

    data = yaml.safe_load(toc.read_text(encoding="utf-8"))
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "root" in node:
                found.append(str(node["root"]))
            if "file" in node:
                found.append(str(node["file"]))
            for key, value in node.items():
                if key not in ("root", "file"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return found


def chapters(root: Path = ROOT, toc: Path | None = None) -> list[Path]:
    """The chapter notebooks (``.ipynb``) named in the ToC, in reading order."""
    out = []
    for entry in toc_files(toc or root / "_toc.yml"):
        path = root / entry
        if path.suffix not in (".ipynb", ".md"):
            path = path.with_name(path.name + ".ipynb")
        ipynb = path.with_suffix(".ipynb")
        if ipynb.exists():
            out.append(ipynb)
    return out


def is_jupytext_markdown(md: Path) -> bool:
    """True if *md* is a jupytext (MyST) notebook: front matter with jupytext/kernelspec."""
    import yaml

    text = md.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return False
    try:
        meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError:
        return False
    return isinstance(meta, dict) and ("jupytext" in meta or "kernelspec" in meta)


def pairs(root: Path = ROOT) -> list[tuple[Path, Path]]:
    """``(md, ipynb)`` for every ToC entry that is (or should be) a jupytext pair,
    whether or not both files exist yet."""
    out = []
    for entry in toc_files(root / "_toc.yml"):
        base = root / entry
        if base.suffix in (".ipynb", ".md"):
            base = base.with_suffix("")
        md, ipynb = base.with_name(base.name + ".md"), base.with_name(base.name + ".ipynb")
        if ipynb.exists() or (md.exists() and is_jupytext_markdown(md)):
            out.append((md, ipynb))
    return out


# -------------------------------------------------------------- parameters cell
@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    comment: str
    line: str

    @property
    def type_name(self) -> str:
        return type(self.default).__name__


class ParametersError(ValueError):
    """The parameters cell is missing, duplicated or not of the required form."""


def parameters_cells(nb) -> list:
    return [
        c
        for c in nb.cells
        if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])
    ]


def parse_parameters_source(source: str) -> list[Parameter]:
    """Parse a parameters cell: every code line must read ``name = literal  # comment``.

    Blank lines and lines holding only a comment are allowed. A line may hold only
    one ``=`` (papermill's ``--help-notebook`` silently skips any other). Raises
    :class:`ParametersError` naming the offending line otherwise.
    """
    params: list[Parameter] = []
    for lineno, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line.count("=") > 1:
            raise ParametersError(
                f"line {lineno} {line!r}: exactly one '=' per parameter line, none in the "
                "comment or value (papermill --help-notebook skips such lines; "
                "write '>=' as 'at least')"
            )
        code, sep, comment = _split_comment(line)
        if not sep or not comment.strip():
            raise ParametersError(
                f"line {lineno} {line!r}: every parameter needs a trailing '# comment' "
                "saying what it is"
            )
        try:
            tree = ast.parse(code.strip())
        except SyntaxError as exc:
            raise ParametersError(f"line {lineno} {line!r}: not valid Python ({exc.msg})") from None
        stmt = tree.body[0] if len(tree.body) == 1 else None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target = stmt.target  # `name: int = 3  # comment` (papermill shows the type)
        else:
            target = None
        if not isinstance(target, ast.Name):
            raise ParametersError(
                f"line {lineno} {line!r}: must be a single assignment 'name = value  # comment'"
            )
        name = target.id
        try:
            value = ast.literal_eval(stmt.value)
        except ValueError:
            raise ParametersError(
                f"line {lineno} {line!r}: the value of {name!r} must be a literal "
                "(number, bool, string, list, tuple)"
            ) from None
        if any(p.name == name for p in params):
            raise ParametersError(f"line {lineno}: parameter {name!r} is assigned twice")
        params.append(Parameter(name, value, comment.strip(), line))
    return params


def _split_comment(line: str) -> tuple[str, str, str]:
    """Split ``code  # comment`` at the first ``#`` that is not inside a string."""
    import io
    import tokenize

    try:
        for tok in tokenize.generate_tokens(io.StringIO(line).readline):
            if tok.type == tokenize.COMMENT:
                col = tok.start[1]
                return line[:col], "#", line[col + 1 :]
    except (tokenize.TokenError, IndentationError):
        pass
    return line, "", ""


def read_notebook(path: Path):
    import nbformat

    return nbformat.read(str(path), as_version=4)


def chapter_parameters(path: Path) -> list[Parameter]:
    """The parameters of a chapter notebook; exactly one ``parameters`` cell required."""
    nb = read_notebook(path)
    cells = parameters_cells(nb)
    if len(cells) != 1:
        raise ParametersError(
            f"{path.name}: expected exactly one code cell tagged 'parameters', found {len(cells)}"
        )
    return parse_parameters_source(cells[0].source)


# ------------------------------------------------------------------ sync/strip
def strip_outputs(path: Path) -> bool:
    """Remove outputs, execution counts and execution metadata; True if changed."""
    import nbformat

    nb = read_notebook(path)
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            cell.outputs = []
            changed = True
        if cell.get("execution_count") is not None:
            cell.execution_count = None
            changed = True
        for key in ("execution", "papermill", "collapsed", "scrolled"):
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
    for key in ("papermill", "widgets"):
        if key in nb.metadata:
            del nb.metadata[key]
            changed = True
    if changed:
        nbformat.write(nb, str(path))
    return changed


def sync() -> None:
    """``jupytext --sync`` every chapter pair, then strip the notebooks' outputs."""
    from jupytext.cli import jupytext as jupytext_cli

    for md, ipynb in pairs():
        source = md if md.exists() else ipynb
        jupytext_cli(["--sync", str(source)])  # creates the missing half of a pair
        if strip_outputs(ipynb):
            print(f"[sync] stripped outputs from {ipynb.relative_to(ROOT)}")


# ------------------------------------------------------------------ cache check
def cache_check(cache_dir: Path) -> list[str]:
    """Problems with the execution cache after ``make test``'s book build, or [].

    ``make test`` executes each chapter once, under nbval, and stores it in the
    jupyter-cache with ``executed_by = "nbval"`` (``scripts/nbval_cache.py``). The build
    then only reads the cache. If the build had executed a chapter itself (its cached
    execution did not match, so the chapter ran twice), the record would have been
    overwritten by myst-nb without that mark.
    """
    from jupyter_cache import get_cache

    if not (cache_dir / "global.db").is_file():
        return [f"no jupyter-cache at {cache_dir}"]
    records = {Path(r.uri).resolve(): r for r in get_cache(str(cache_dir)).list_cache_records()}
    problems = []
    for nb in chapters():
        rec = records.get(nb.resolve())
        name = nb.relative_to(ROOT).as_posix()
        if rec is None:
            problems.append(f"{name}: no cached execution")
        elif rec.data.get("executed_by") != "nbval":
            problems.append(f"{name}: executed again by the book build (its nbval execution did not match)")
    return problems


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, args = argv[0], argv[1:]
    if cmd == "chapters":
        for path in chapters():
            print(path.relative_to(ROOT).as_posix())
    elif cmd == "params":
        for p in chapter_parameters(Path(args[0])):
            print(f"{p.name} ({p.type_name}, default {p.default!r}): {p.comment}")
    elif cmd == "sync":
        sync()
    elif cmd == "cache-check":
        problems = cache_check(Path(args[0]) if args else ROOT / "_build" / ".jupyter_cache")
        for msg in problems:
            print(f"cache-check: {msg}", file=sys.stderr)
        if problems:
            return 1
        print(f"cache-check: each of the {len(chapters())} chapters was executed once (by nbval) "
              "and the book build reused it")
    elif cmd == "strip":
        for path in [Path(a) for a in args] or chapters():
            if strip_outputs(path):
                print(f"stripped {path}")
    else:
        print(f"unknown command {cmd!r}\n{__doc__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
