# testmon-watch developer tasks. Every target builds what it needs from a fresh clone.

# The first interpreter that really is Python $(1): `python$(1)` on PATH, then `python3`,
# else a pyenv install (pyenv's shims fail when a version is installed but not selected).
find_python = $(shell for c in python$(1) python3 $$(pyenv root 2>/dev/null)/versions/$(1).*/bin/python$(1); do \
	"$$c" -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(1)".split("."))))' \
	>/dev/null 2>&1 && { echo "$$c"; break; }; done)

# One virtualenv per supported interpreter; .venv (3.11) also runs lint, mypy, demo and bench.
PYTHON    ?= $(call find_python,3.11)
PYTHON310 ?= $(call find_python,3.10)
PYTHON312 ?= $(call find_python,3.12)
PYTHON313 ?= $(call find_python,3.13)
VENV      := .venv
VENV310   := .venv310
VENV312   := .venv312
VENV313   := .venv313
STAMP     := $(VENV)/.installed
STAMP310  := $(VENV310)/.installed
STAMP312  := $(VENV312)/.installed
STAMP313  := $(VENV313)/.installed
DEMO_DIR  := .demo

# pytest-xdist workers per interpreter (`make test XDIST=0` runs in one process). One more
# than the 2 cores of CI's machine: many tests wait on a pytest they started. Measured on
# a 207-test slice (3.13, the machine shared): -n 2 145 s, -n 3 105 s, -n 4 107 s.
XDIST     ?= 3
PYTEST    := pytest -q -n $(XDIST)

.DEFAULT_GOAL := help

.PHONY: help venv venv310 venv312 venv313 test test310 test311 test312 test313 \
	check lint typecheck pre-commit demo demo-plugin bench bench-real bench-floor bench-watch-floor bench-reparse clean screenshots

help:
	@echo "make venv      create .venv (Python 3.11) with the package and test tools"
	@echo "make venv310 / venv312 / venv313   the same for Python 3.10, 3.12, 3.13"
	@echo "make test      run the test suite on Python 3.10, 3.11, 3.12 and 3.13 (test311 etc.: one)"
	@echo "make lint      ruff check and ruff format --check"
	@echo "make typecheck mypy: --strict on testmon_watch/, tests/ with the overrides in pyproject.toml"
	@echo "make check     what CI runs (.ci/run): test, lint, typecheck"
	@echo "make pre-commit  install the git hooks: ruff check, ruff format --check, mypy"
	@echo "make demo      open the testmon-watch app on a copy of examples/shop (edit files in .demo/shop)"
	@echo "make demo-plugin  run pytest --testmon twice on examples/shop, editing one function between"
	@echo "make bench     run the benchmarks (bench/run.py)"
	@echo "make bench-real  ours vs pytest-testmon and pytest-watcher on real PyPI projects, 3.11 and 3.12"
	@echo "make bench-floor the first-run overhead floor on 3.11: coverage.py's tracer in our windows"
	@echo "make bench-watch-floor  the save-to-first-result floor on 3.11: warm untraced pytest, gated"
	@echo "make bench-reparse  a save's parse on the real projects: the whole file vs the changed body"
	@echo "make screenshots  regenerate screenshots/*.svg from the real app on examples/shop"
	@echo "make clean     remove virtualenvs, caches and demo/bench scratch"

venv: $(STAMP)
venv310: $(STAMP310)
venv312: $(STAMP312)
venv313: $(STAMP313)

# $(call venv_rules,DIR,INTERPRETER VARIABLE,VERSION,EXTRAS): DIR/.installed from nothing.
# .venv, the developer's, also gets the `dev` extra (pre-commit).
comma := ,
define venv_rules
$(1)/.installed: pyproject.toml
	@test -n "$$($(2))" || { echo "make: no Python $(3) found (set $(2)=/path/to/python$(3))" >&2; exit 1; }
	test -x $(1)/bin/python || $$($(2)) -m venv $(1)
	$(1)/bin/python -m pip install -q -e '.[$(4)]'
	touch $$@
endef
$(eval $(call venv_rules,$(VENV),PYTHON,3.11,test$(comma)dev))
$(eval $(call venv_rules,$(VENV310),PYTHON310,3.10,test))
$(eval $(call venv_rules,$(VENV312),PYTHON312,3.12,test))
$(eval $(call venv_rules,$(VENV313),PYTHON313,3.13,test))

# Every virtualenv first, so a missing interpreter stops the run before any test does.
# Then each interpreter in turn; one that fails does not stop the others, but fails
# `make test` at the end. pytest's exit code 5 (no tests collected) fails like any other.
test: $(STAMP310) $(STAMP) $(STAMP312) $(STAMP313)
	@$(MAKE) --no-print-directory --keep-going test310 test311 test312 test313

# $(call test_rule,TARGET,DIR): the whole suite on one interpreter, with its wall time.
define test_rule
$(1): $(2)/.installed
	@echo "=== pytest on $$$$($(2)/bin/python -V), -n $(XDIST)"
	@start=$$$$(date +%s); $(2)/bin/$(PYTEST); rc=$$$$?; \
	echo "=== $$$$($(2)/bin/python -V): $$$$(( $$$$(date +%s) - start )) s, pytest exit $$$$rc"; exit $$$$rc
endef
$(eval $(call test_rule,test310,$(VENV310)))
$(eval $(call test_rule,test311,$(VENV)))
$(eval $(call test_rule,test312,$(VENV312)))
$(eval $(call test_rule,test313,$(VENV313)))

lint: $(STAMP)
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check

# The files of [tool.mypy]: testmon_watch/ --strict, tests/ with its overrides.
typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Git hooks from .pre-commit-config.yaml (the fast part of `make check`).
pre-commit: $(STAMP)
	$(VENV)/bin/pre-commit install

# Exactly what CI runs: .ci/run is the one list (make test, then make lint typecheck).
check:
	bash .ci/run

# The demos work on a scratch copy so examples/shop stays pristine.
demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	mkdir -p $(DEMO_DIR)
	cp -R examples/shop $(DEMO_DIR)/shop
	@echo "testmon-watch on $(DEMO_DIR)/shop: edit a file there (e.g. shop/pricing.py) in another pane; q quits"
	cd $(DEMO_DIR)/shop && ../../$(VENV)/bin/testmon-watch

demo-plugin: $(STAMP)
	rm -rf $(DEMO_DIR)
	mkdir -p $(DEMO_DIR)
	cp -R examples/shop $(DEMO_DIR)/shop
	@echo
	@echo "================================================================"
	@echo " 1/3  first run: nothing recorded yet, every test runs"
	@echo "================================================================"
	cd $(DEMO_DIR)/shop && ../../$(VENV)/bin/pytest --testmon -v
	@echo
	@echo "================================================================"
	@echo " 2/3  edit one function body: bulk_price() in shop/pricing.py"
	@echo "================================================================"
	$(VENV)/bin/python -c "import pathlib, sys; \
	p = pathlib.Path('$(DEMO_DIR)/shop/shop/pricing.py'); \
	old = 'total = total * BULK_FACTOR'; new = 'total *= BULK_FACTOR'; \
	src = p.read_text(); \
	old in src or sys.exit('demo: edit target not found in ' + str(p)); \
	p.write_text(src.replace(old, new)); \
	print('  -', old); print('  +', new)"
	@echo
	@echo "================================================================"
	@echo " 3/3  second run: only the tests that executed bulk_price()"
	@echo "================================================================"
	cd $(DEMO_DIR)/shop && ../../$(VENV)/bin/pytest --testmon -v

# Both interpreters: on 3.12 ours traces with sys.monitoring (results-py312.md).
bench: $(STAMP)
	$(VENV)/bin/python bench/run.py
	@test -n "$(PYTHON312)" || { echo "make: no Python 3.12 found (set PYTHON312=/path/to/python3.12)" >&2; exit 1; }
	$(VENV)/bin/python bench/run.py --python $(PYTHON312)

# Pinned sdists from PyPI, fetched, verified and unpacked into bench/.work/real/ with their
# venvs; BENCH_REAL_ARGS="--quick" (toolz only) or "--project jinja2,packaging".
BENCH_REAL_ARGS ?=
bench-real: $(STAMP)
	$(VENV)/bin/python bench/real/run.py $(BENCH_REAL_ARGS)
	$(VENV)/bin/python bench/real/run.py --python $(PYTHON312) $(BENCH_REAL_ARGS)

# First-run overhead floor below 3.12: coverage.py's tracer alone (bench/real/trace_floor.py).
bench-floor: $(STAMP)
	$(VENV)/bin/python bench/real/trace_floor.py

bench-watch-floor: $(STAMP)
	$(VENV)/bin/python bench/real/watch_floor.py

# A save's parse on the real projects' edited files: the whole file vs the changed body.
bench-reparse: $(STAMP)
	$(VENV)/bin/python bench/real/reparse_bench.py

# The app headless on a scratch copy of examples/shop, driven through its main states.
screenshots: $(STAMP)
	$(VENV)/bin/python scripts/make_screenshots.py

clean:
	rm -rf $(VENV) $(VENV310) $(VENV312) $(VENV313) $(DEMO_DIR) bench/.work build dist *.egg-info
	rm -rf .pytest_cache .mypy_cache .ruff_cache .testmondata* .coverage .coverage.*
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
