PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs bench bench-cockpit clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/trainlab run

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

# the API reference and the registry pages (generated from the docstrings and registries by
# mkdocs.yml and docs/hooks.py) in build/site; strict: any warning fails the build
docs: $(STAMP)
	PYTHONPATH=src $(BIN)/python -m mkdocs build --strict

# every benchmark script, one thread each; writes docs/performance.md (machine, torch, date,
# each figure as a ratio to its in-process reference). BENCH_ARGS=--quick for a smoke run.
bench: $(STAMP)
	$(BIN)/python benchmarks/collect.py $(BENCH_ARGS)

# Cockpit/BackPACK pull torchvision and their own torch range: a separate environment, never
# the test one (torch stays pinned by constraints.txt; torchvision 0.28 pairs with torch 2.13).
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q -c constraints.txt -e . torchvision==0.28.0 \
		backpack-for-pytorch cockpit-for-pytorch "setuptools<81"
	touch $(BENCH_VENV)/.installed

bench-cockpit: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/cockpit_overhead.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) trainlab-runs .pytest_cache build/site
