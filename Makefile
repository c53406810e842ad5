# Escaping mediocrity — an executable edition.
#
#   make book        create .venv if needed, execute every chapter, build _build/html
#   make test        lint + unit tests + every chapter once under nbval + book from those
#                    executions + browser test
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
# `make test` spends the least CPU rather than the least time: on two cores, parallel pytest workers
# finish sooner but cost more CPU (each imports and collects everything, they compile the numba
# kernels side by side, two chapters share the caches).  Measured one after the other, same clone:
#   unit tests, cold numba cache: one process (UNIT_JOBS=0) 152 s CPU, 144 s wall; two workers 167 s, 98 s
#   chapters: one at a time through one xdist worker (TEST_JOBS=1) 279 s CPU, 197 s wall; two at a time
#   287 s, 150 s; in the pytest process itself (TEST_JOBS=0, no worker to start and feed) 305 and 316 s
#   against 311 and 334 s for TEST_JOBS=1 in two alternated pairs on a slower day
# `make test UNIT_JOBS=2 TEST_JOBS=2` is ~90 s sooner for ~25 s more CPU.
UNIT_JOBS ?= 0
# Threads per simulation when a unit test does not ask for a number (mdlib's default is the cores
# the process may use, NUMBA_NUM_THREADS when set): the tests' runs are too short for a second
# thread to pay.  Alternated, same clone, warm numba cache: one thread 114 and 125 s CPU (111, 123 s
# wall), two threads 137 and 143 s CPU (125, 131 s wall).  The tests of the threaded paths (bitwise
# the same results whatever the threads, sweeps' workers) pass n_threads / workers themselves.
UNIT_THREADS ?= 1
TEST_JOBS ?= 0
# the unit tests of `make test-fast` (quick iteration: the clock matters)
FAST_JOBS ?= 2
CACHE  := _build/.jupyter_cache
# nbval executes each chapter once; scripts/nbval_cache.py stores the executed notebooks
# in the jupyter-cache that the book build then reads instead of executing them again
NBVAL_FLAGS ?= --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider \
               -p nbval_cache --nbval-cache $(CACHE) -n $(TEST_JOBS) --dist loadfile
CHAPTERS = $$($(BIN)/python scripts/bookinfo.py chapters)

export PIP_DISABLE_PIP_VERSION_CHECK := 1
# A user's MPLBACKEND (e.g. Agg) would reach the kernels and stop ipykernel from
# selecting its inline backend: figures would silently vanish from the book.
unexport MPLBACKEND

.PHONY: help venv book book-fast test test-fast lint test-unit test-chapters test-nbval book-cached \
        browser-test browser-deps sync claims strip rerun lock clean distclean sweeps

help:
	@echo "make book          execute every chapter (forced) and build HTML into _build/html"
	@echo "make book-fast     same, but reuse cached executions (_build/.jupyter_cache)"
	@echo "make test          lint + unit tests + each chapter once (nbval) + book from those runs + browser test"
	@echo "make test-fast     lint + unit tests without the slow statistical ones (quick iteration)"
	@echo "make lint          ruff over mdlib/, scripts/, tests/, benchmarks/ (rules in pyproject.toml)"
	@echo "make test-unit     pytest tests/ and the docstring examples of mdlib/ (all, slow ones included)"
	@echo "make test-chapters execute every chapter once under nbval, into the execution cache"
	@echo "make browser-test  check _build/html in headless chromium (needs a build)"
	@echo "make browser-deps  install Debian chromium + chromedriver (root + apt only)"
	@echo "make sync          jupytext --sync every chapter .md/.ipynb pair, strip outputs"
	@echo "make claims        regenerate the landing page's claims table and the errata page from their sources"
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
	rm -rf $(CACHE)
	$(JB) build . --all $(BUILD_FLAGS)

# Incremental: only new/changed pages are re-read; unchanged notebooks reuse the
# cache (note: the cache does not know about changes to mdlib/ — use `make book`).
book-fast: $(STAMP)
	$(JB) build . $(BUILD_FLAGS)

# ---------------------------------------------------------------------- tests
# Each chapter is executed exactly once: by nbval (test-chapters), whose executions
# fill the jupyter-cache; the book is then built from that cache (book-cached), and
# `bookinfo.py cache-check` fails if the build had to execute any chapter again.
test: $(STAMP) browser-deps
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-chapters
	$(MAKE) --no-print-directory book-cached
	$(MAKE) --no-print-directory browser-test

test-fast: $(STAMP)
	$(MAKE) --no-print-directory lint
	NUMBA_NUM_THREADS=$(UNIT_THREADS) $(BIN)/python -m pytest tests/ mdlib/ --doctest-modules -m "not slow" -n $(FAST_JOBS) -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check mdlib scripts tests benchmarks

test-unit: $(STAMP)
	NUMBA_NUM_THREADS=$(UNIT_THREADS) $(BIN)/python -m pytest tests/ mdlib/ --doctest-modules -n $(UNIT_JOBS) -p no:cacheprovider

test-chapters: $(STAMP)
	@chapters="$(CHAPTERS)"; \
	if [ -z "$$chapters" ]; then echo "no chapter notebooks in _toc.yml"; exit 0; fi; \
	rm -rf $(CACHE); \
	echo "$(BIN)/python -m pytest $(NBVAL_FLAGS) $$chapters"; \
	PYTHONPATH=scripts $(BIN)/python -m pytest $(NBVAL_FLAGS) $$chapters

test-nbval: test-chapters

# The site from the executions of test-chapters (no chapter runs again).
book-cached: $(STAMP)
	$(JB) build . --all $(BUILD_FLAGS)
	$(BIN)/python scripts/bookinfo.py cache-check $(CACHE)

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

claims: $(STAMP)
	$(BIN)/python scripts/make_claims_table.py
	$(BIN)/python scripts/make_errata_page.py

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
