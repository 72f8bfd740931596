PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-torch-floor lint docs bench bench-cockpit clean

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

# The oldest torch pyproject.toml admits (its `torch>=`; tests/test_torch_floor.py checks that
# the two agree). `make test-torch-floor` builds $(FLOOR_VENV) from scratch with that torch
# (PyPI's CUDA build, about 5 GB installed with its nvidia-* packages; runs on the CPU), the
# other pins of constraints.txt and those of constraints-torch-floor.txt (none on 2.6),
# installs every extra, and runs the whole suite there. No extra's tests are skipped. Not in
# .ci/run: every run would download several GB. Measured here with TORCH_FLOOR 2.6.0 (2 busy
# cores, -n 2): build about 3 min, suite 25-36 min with the load; see README, Quick start.
TORCH_FLOOR := 2.6.0
FLOOR_PYTHON ?= python3.11
FLOOR_VENV := .venv-floor
FLOOR_PYTEST_ARGS ?= -n 2 --dist loadgroup
$(FLOOR_VENV)/.installed: pyproject.toml constraints.txt constraints-torch-floor.txt Makefile
	rm -rf $(FLOOR_VENV)
	$(FLOOR_PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/pip install -q --upgrade pip
	{ grep -v '^torch==' constraints.txt; cat constraints-torch-floor.txt; \
		echo "torch==$(TORCH_FLOOR)"; } > $(FLOOR_VENV)/constraints.txt
	$(FLOOR_VENV)/bin/pip install -q -c $(FLOOR_VENV)/constraints.txt -e ".[dev]"
	$(FLOOR_VENV)/bin/python -c "import torch, sys; v = torch.__version__.split('+')[0]; \
		sys.exit(None if v == '$(TORCH_FLOOR)' else f'torch {v} is not $(TORCH_FLOOR)')"
	touch $(FLOOR_VENV)/.installed

test-torch-floor: $(FLOOR_VENV)/.installed
	$(FLOOR_VENV)/bin/python -c "import torch; print('torch', torch.__version__)"
	$(FLOOR_VENV)/bin/python -m pytest $(FLOOR_PYTEST_ARGS) -q

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
	rm -rf $(VENV) $(BENCH_VENV) $(FLOOR_VENV) trainlab-runs .pytest_cache build/site
