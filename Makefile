# testmon-watch developer tasks. Every target builds what it needs from a fresh clone.

PYTHON    ?= python3
# The first interpreter that really is 3.12: `python3.12` on PATH, else a pyenv install
# (pyenv's shim fails when 3.12 is installed but not selected).
PYTHON312 ?= $(shell for c in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12; do \
	"$$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { echo "$$c"; break; }; done)
VENV      := .venv
VENV312   := .venv312
STAMP     := $(VENV)/.installed
STAMP312  := $(VENV312)/.installed
DEMO_DIR  := .demo

.DEFAULT_GOAL := help

.PHONY: help venv venv312 test check lint typecheck demo demo-plugin bench clean screenshots

help:
	@echo "make venv      create .venv ($(PYTHON)) with the package and test tools"
	@echo "make venv312   create .venv312 (Python 3.12) the same way"
	@echo "make test      run the test suite on both interpreters"
	@echo "make check     what CI runs: test, ruff, mypy"
	@echo "make demo      open the testmon-watch app on a copy of examples/shop (edit files in .demo/shop)"
	@echo "make demo-plugin  run pytest --testmon twice on examples/shop, editing one function between"
	@echo "make bench     run the benchmarks (bench/run.py)"
	@echo "make screenshots  regenerate screenshots/*.svg from the real app on examples/shop"
	@echo "make clean     remove virtualenvs, caches and demo/bench scratch"

venv: $(STAMP)
venv312: $(STAMP312)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $@

$(STAMP312): pyproject.toml
	@test -n "$(PYTHON312)" || { echo "make: no Python 3.12 found (set PYTHON312=/path/to/python3.12)" >&2; exit 1; }
	test -x $(VENV312)/bin/python || $(PYTHON312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install -q -e '.[test]'
	touch $@

test: $(STAMP) $(STAMP312)
	@echo "=== pytest on $$($(VENV)/bin/python -V)"
	$(VENV)/bin/pytest -q
	@echo "=== pytest on $$($(VENV312)/bin/python -V)"
	$(VENV312)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check testmon_watch tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy testmon_watch

check: test lint typecheck

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

# The app headless on a scratch copy of examples/shop, driven through its main states.
screenshots: $(STAMP)
	$(VENV)/bin/python scripts/make_screenshots.py

clean:
	rm -rf $(VENV) $(VENV312) $(DEMO_DIR) bench/.work build dist *.egg-info
	rm -rf .pytest_cache .mypy_cache .ruff_cache .testmondata* .coverage .coverage.*
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
