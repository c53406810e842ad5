#!/usr/bin/env python3
"""Re-run one chapter with other parameters, using papermill.

    python scripts/rerun.py CHAPTER [-p NAME VALUE]... [--output-dir runs] [--dry-run]
    make rerun CH=CHAPTER ARGS="-p d 5000 -p gamma 0.05"

CHAPTER is a chapter name (``setup`` -> ``book/setup.ipynb``) or a path to the
``.ipynb`` (or its paired ``.md``). The parameters that may be changed are the
assignments of the chapter's cell tagged ``parameters``; ``--list`` shows them.

Every value is checked *before* anything runs: an unknown name, or a value that
does not fit the type of the default (int stays int; a float parameter accepts
ints; bool accepts true/false; str anything; lists/tuples a Python literal) stops
the script with a message naming the parameter. The executed notebook is written
to a new file under ``runs/`` (git-ignored); nothing is ever overwritten, least of
all the chapter itself.
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bookinfo  # noqa: E402

ROOT = bookinfo.ROOT
BOOK = bookinfo.BOOK


class RerunError(Exception):
    """A user error, reported as one line without a traceback."""


def resolve_chapter(chapter: str) -> Path:
    path = Path(chapter)
    candidates = []
    if path.suffix in (".ipynb", ".md"):
        candidates.append(path.with_suffix(".ipynb"))
        candidates.append((ROOT / path).with_suffix(".ipynb"))
    else:
        candidates.append(BOOK / f"{chapter}.ipynb")
        candidates.append(ROOT / f"{chapter}.ipynb")
    for cand in candidates:
        if cand.is_file():
            return cand.resolve()
    known = ", ".join(p.stem for p in bookinfo.chapters()) or "(none)"
    raise RerunError(f"no chapter notebook {chapter!r}; chapters: {known}")


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce(param: bookinfo.Parameter, raw: str):
    """Convert the command-line string *raw* to the type of the parameter's default."""
    default = param.default
    want = type(default).__name__

    def bad(extra: str = ""):
        return RerunError(
            f"parameter {param.name!r} expects {want} (default {default!r}), "
            f"got {raw!r}{extra}"
        )

    if isinstance(default, bool):  # before int: bool is a subclass of int
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise bad("; use true or false")
    if isinstance(default, int):
        try:
            return int(raw.strip().replace("_", ""), 10)
        except ValueError:
            raise bad() from None
    if isinstance(default, float):
        try:
            value = float(raw)
        except ValueError:
            raise bad() from None
        if value != value or value in (float("inf"), float("-inf")):
            raise bad("; must be finite")
        return value
    if isinstance(default, str):
        return raw
    if default is None:
        try:
            return ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
    if isinstance(default, (list, tuple, dict)):
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise bad("; write a Python literal such as [1, 2, 5]") from None
        if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
            return type(default)(value)
        if isinstance(value, type(default)):
            return value
        raise bad()
    raise bad()


def validate(nb_path: Path, pairs: list[tuple[str, str]]) -> dict:
    try:
        params = {p.name: p for p in bookinfo.chapter_parameters(nb_path)}
    except bookinfo.ParametersError as exc:
        raise RerunError(f"{nb_path.name}: {exc}") from None
    values = {}
    for name, raw in pairs:
        if name not in params:
            known = ", ".join(params) or "(none)"
            raise RerunError(
                f"unknown parameter {name!r} for chapter {nb_path.stem}; known parameters: {known}"
            )
        if name in values:
            raise RerunError(f"parameter {name!r} given twice")
        values[name] = coerce(params[name], raw)
    return values


def output_path(nb_path: Path, values: dict, output_dir: Path) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    tag = "_".join(f"{k}={v}" for k, v in values.items())
    tag = re.sub(r"[^A-Za-z0-9=.,+_-]+", "", tag)[:80]
    stem = f"{nb_path.stem}_{stamp}" + (f"_{tag}" if tag else "")
    out = output_dir / f"{stem}.ipynb"
    k = 1
    while out.exists():
        out = output_dir / f"{stem}-{k}.ipynb"
        k += 1
    return out


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="rerun.py",
        description="Re-run a chapter with papermill, with validated parameters.",
        epilog="Example: scripts/rerun.py escape_p1 -p d 10000",
    )
    ap.add_argument("chapter", help="chapter name (e.g. setup) or path to its .ipynb/.md")
    ap.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a parameter (repeatable)",
    )
    ap.add_argument(
        "--output-dir",
        default=str(ROOT / "runs"),
        help="folder for the executed notebook (default: runs/)",
    )
    ap.add_argument("--list", action="store_true", help="list the chapter's parameters and exit")
    ap.add_argument("--dry-run", action="store_true", help="validate and exit without running")
    ap.add_argument("--log-output", action="store_true", help="stream cell outputs to the terminal")
    ap.add_argument("--kernel", default=None, help="kernel name (default: the notebook's)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        nb_path = resolve_chapter(args.chapter)
        if args.list:
            for p in bookinfo.chapter_parameters(nb_path):
                print(f"{p.name:>12} = {p.default!r:<12} ({p.type_name})  # {p.comment}")
            return 0
        values = validate(nb_path, [tuple(p) for p in args.parameter])
        output_dir = Path(args.output_dir).resolve()
        if output_dir == nb_path.parent:
            raise RerunError(
                f"refusing to write into the chapter's own folder {output_dir}; "
                "choose another --output-dir"
            )
        out = output_path(nb_path, values, output_dir)
    except RerunError as exc:
        print(f"rerun.py: error: {exc}", file=sys.stderr)
        return 2

    shown = " ".join(f"-p {k} {v!r}" for k, v in values.items())
    print(f"[rerun] {nb_path.relative_to(ROOT) if nb_path.is_relative_to(ROOT) else nb_path} {shown}")
    print(f"[rerun] output: {out}")
    if args.dry_run:
        print("[rerun] dry run: parameters are valid, nothing executed")
        return 0

    import papermill as pm

    out.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(
        str(nb_path),
        str(out),
        parameters=values,
        progress_bar=True,
        log_output=args.log_output,
        kernel_name=args.kernel,
        cwd=str(nb_path.parent),
    )
    print(f"[rerun] done: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
