# Escaping mediocrity — an executable edition.
#
#   make book        create .venv if needed, execute every chapter, build _build/html
#   make test        unit tests + nbval over every chapter + book build + browser test
#
# Run `make help` for the other targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
JB     := $(BIN)/jupyter-book
# warnings are errors, nitpicky references, report all warnings before failing
BUILD_FLAGS ?= -W -n --keep-going
# nbval and the book build execute the chapters independently; run them side by side
TEST_JOBS ?= 2
NBVAL_FLAGS ?= --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider
CHAPTERS = $$($(BIN)/python scripts/bookinfo.py chapters)

export PIP_DISABLE_PIP_VERSION_CHECK := 1
# A user's MPLBACKEND (e.g. Agg) would reach the kernels and stop ipykernel from
# selecting its inline backend: figures would silently vanish from the book.
unexport MPLBACKEND

.PHONY: help venv book book-fast test test-unit test-nbval browser-test browser-deps \
        sync strip rerun lock clean distclean sweeps

help:
	@echo "make book          execute every chapter (forced) and build HTML into _build/html"
	@echo "make book-fast     same, but reuse cached executions (_build/.jupyter_cache)"
	@echo "make test          unit tests + nbval over the chapters + book + browser test"
	@echo "make test-unit     pytest tests/ only"
	@echo "make test-nbval    pytest --nbval-lax on every chapter notebook only"
	@echo "make browser-test  check _build/html in headless chromium (needs a build)"
	@echo "make browser-deps  install Debian chromium + chromedriver (root + apt only)"
	@echo "make sync          jupytext --sync every chapter .md/.ipynb pair, strip outputs"
	@echo "make rerun CH=setup ARGS='-p d 500'   re-run a chapter with papermill into runs/"
	@echo "make lock          regenerate requirements.lock from a clean venv"
	@echo "make sweeps        compute the paper-scale sweeps into results/ (resumable; SWEEPS='exit_vs_d ...',"
	@echo "                   SWEEP_ARGS='--executor dask --workers 8'; see python -m mdlib.sweeps list)"
	@echo "make clean         remove _build and runs/ (make distclean also removes .venv)"

# ---------------------------------------------------------------- environment
# Rebuilt only when requirements.lock or pyproject.toml change (stamp file).
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
	  "Python >= 3.11 is required (found %s); run make PYTHON=python3.11 ..." % sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.lock
	$(BIN)/python -m pip install -e . --no-deps
	touch $@

venv: $(STAMP)

# ---------------------------------------------------------------------- book
# Forced re-execution: empty jupyter-cache and re-read every page (--all).
book: $(STAMP)
	rm -rf _build/.jupyter_cache
	$(JB) build . --all $(BUILD_FLAGS)

# Incremental: only new/changed pages are re-read; unchanged notebooks reuse the
# cache (note: the cache does not know about changes to mdlib/ — use `make book`).
book-fast: $(STAMP)
	$(JB) build . $(BUILD_FLAGS)

# ---------------------------------------------------------------------- tests
test: $(STAMP) browser-deps
	$(MAKE) --no-print-directory test-unit
	@echo "== nbval and the book build run in parallel (TEST_JOBS=$(TEST_JOBS));" \
	      "each one's output is shown when it finishes"
	$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target test-nbval book
	$(MAKE) --no-print-directory browser-test

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/

test-nbval: $(STAMP)
	@chapters="$(CHAPTERS)"; \
	if [ -z "$$chapters" ]; then echo "no chapter notebooks in _toc.yml"; exit 0; fi; \
	echo "$(BIN)/python -m pytest $(NBVAL_FLAGS) $$chapters"; \
	$(BIN)/python -m pytest $(NBVAL_FLAGS) $$chapters

browser-test: $(STAMP)
	$(BIN)/python scripts/browser_check.py _build/html --screenshots _build/screenshots

# Debian chromium + chromedriver for the browser test. Installs only as root with
# apt-get; otherwise says what to do (the browser test then skips).
browser-deps:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  echo "browser-deps: $$(chromium --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "browser-deps: installing chromium and chromium-driver with apt-get"; \
	  ( apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver ) \
	    || echo "browser-deps: apt-get failed; the browser test will be skipped"; \
	else \
	  echo "browser-deps: chromium/chromedriver not found and cannot install them here"; \
	  echo "  (run as root: apt-get install chromium chromium-driver); the browser test will be skipped"; \
	fi

# ------------------------------------------------------------------ chapters
sync: $(STAMP)
	$(BIN)/python scripts/bookinfo.py sync

strip: $(STAMP)
	$(BIN)/python scripts/bookinfo.py strip

rerun: $(STAMP)
	@if [ -z "$(CH)" ]; then echo "usage: make rerun CH=<chapter> ARGS='-p name value ...'"; exit 2; fi
	$(BIN)/python scripts/rerun.py $(CH) $(ARGS)

# ------------------------------------------------------------------ sweeps
# The paper-scale sweeps (mdlib/sweeps.py) into results/<sweep>/; finished cells
# are skipped, so an interrupted `make sweeps` resumes where it stopped.
SWEEPS ?= exit_vs_d stochasticity_d width
SWEEP_ARGS ?=
sweeps: $(STAMP)
	@for s in $(SWEEPS); do \
	  echo "$(BIN)/python -m mdlib.sweeps run $$s --scale paper $(SWEEP_ARGS)"; \
	  $(BIN)/python -m mdlib.sweeps run $$s --scale paper $(SWEEP_ARGS) || exit $$?; \
	done

# ------------------------------------------------------------------ upkeep
LOCKVENV := _build/lockvenv
lock:
	rm -rf $(LOCKVENV)
	$(PYTHON) -m venv $(LOCKVENV)
	$(LOCKVENV)/bin/python -m pip install -q --upgrade pip
	$(LOCKVENV)/bin/python -m pip install -q '.[book]'
	{ echo "# Exact pins for 'pip install -r requirements.lock' (Python 3.11, Linux)."; \
	  echo "# Generated by 'make lock' (pip freeze of a clean venv with .[book]); mdlib excluded."; \
	  $(LOCKVENV)/bin/python -m pip freeze | grep -v -i -E '^mdlib([ =@]|$$)'; } > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock
	rm -rf $(LOCKVENV)

clean:
	rm -rf _build runs

distclean: clean
	rm -rf $(VENV) *.egg-info
