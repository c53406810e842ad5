"""Local Sphinx extension: keep the book strictly offline and the sources unambiguous.

Loaded by ``_config.yml`` (``sphinx.local_extensions``). It does three things when
the configuration is ready (``config-inited``):

1. **MathJax without a CDN.** The MathJax 3 distribution shipped inside the
   ``sphinx-mathjax-offline`` wheel (``<site-packages>/sphinx-mathjax-offline/
   static/mathjax``) is mirrored, without the combined components the book does
   not use (SVG output, ``tex-svg*.js``, ``mml-*.js``...), to
   ``_build/offline_static/mathjax``, which is added to ``html_static_path``, so
   Sphinx copies it to ``_build/html/_static/mathjax``; ``mathjax_path`` points at
   the local ``mathjax/tex-chtml.js`` (relative to ``_static``). Everything that
   ``tex-chtml.js`` may load on demand (TeX extensions, CHTML fonts, menu,
   accessibility, speech rules) is kept.
2. **One Sphinx source per chapter.** A chapter is a jupytext pair
   ``ch.md`` (MyST, human-authored) + ``ch.ipynb`` (the Sphinx source, so that
   launch/download buttons open the notebook). Both would map to the docname
   ``ch``; every ``.md`` with an ``.ipynb`` twin is therefore added to
   ``exclude_patterns``.
3. **No remote scripts.** myst-nb's ipywidgets loader (require.js and the widget
   manager from CDNs) is switched off.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

MATHJAX_DIST = "sphinx-mathjax-offline"  # the wheel's top-level package (hyphenated)
MATHJAX_ENTRY = "mathjax/tex-chtml.js"  # relative to _static
# parts of the MathJax distribution that tex-chtml.js never loads
MATHJAX_SKIP_DIRS = ("output/svg", "adaptors")
PRUNE_DIRS = {"_build", "runs", "node_modules", "__pycache__", "mdlib", "tests", "scripts"}


def mathjax_static_dir() -> Path:
    """Folder whose ``mathjax/`` sub-folder holds MathJax 3 (``tex-chtml.js`` etc.)."""
    spec = importlib.util.find_spec(MATHJAX_DIST)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the package {MATHJAX_DIST!r} is not installed; it ships MathJax 3 for "
            "the offline book (pip install -r requirements.lock)"
        )
    static = Path(list(spec.submodule_search_locations)[0]) / "static"
    if not (static / MATHJAX_ENTRY).is_file():
        raise RuntimeError(f"{static / MATHJAX_ENTRY} is missing")
    return static


def mirror_mathjax(dest: Path) -> Path:
    """Copy the MathJax files the book needs to ``dest/mathjax``; return *dest*."""
    src = mathjax_static_dir() / "mathjax"
    target = dest / "mathjax"
    shutil.rmtree(target, ignore_errors=True)
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir():
            continue
        if len(rel.parts) == 1 and rel.as_posix() != Path(MATHJAX_ENTRY).name:
            continue  # other combined components (tex-svg.js, mml-chtml.js, ...)
        if any(rel.as_posix().startswith(d + "/") for d in MATHJAX_SKIP_DIRS):
            continue
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out)
    return dest


def paired_markdown_twins(srcdir: str | os.PathLike) -> list[str]:
    """``.md`` files (posix paths relative to *srcdir*) that have an ``.ipynb`` twin."""
    srcdir = Path(srcdir)
    twins = []
    for root, dirs, files in os.walk(srcdir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in PRUNE_DIRS)
        names = set(files)
        for name in sorted(files):
            if name.endswith(".md") and name[:-3] + ".ipynb" in names:
                twins.append((Path(root) / name).relative_to(srcdir).as_posix())
    return twins


def _config_inited(app, config):
    # 1. MathJax served from _static/mathjax
    static = str(mirror_mathjax(Path(app.outdir).parent / "offline_static"))
    if static not in config.html_static_path:
        config.html_static_path = list(config.html_static_path) + [static]
    config.mathjax_path = MATHJAX_ENTRY
    # 2. exclude the .md twins of paired notebooks
    twins = [t for t in paired_markdown_twins(app.srcdir) if t not in config.exclude_patterns]
    if twins:
        config.exclude_patterns = list(config.exclude_patterns) + twins
    # 3. no CDN-loaded widget JavaScript
    config.nb_ipywidgets_js = {}


def setup(app):
    app.connect("config-inited", _config_inited)
    # Chapter titles with maths appear in the navigation of every page, including
    # pages without maths of their own (search, genindex): load MathJax everywhere.
    app.set_html_assets_policy("always")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
