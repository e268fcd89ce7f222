# One place for the project's commands. VENV can point elsewhere (CI keeps one between runs).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test lint demo benchmark clean

$(PYTHON):
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip

# Installs ig_plugin (editable) with CPU TensorFlow and the dev tools; quick when already there.
install: $(PYTHON)
	$(PYTHON) -m pip install -q -e ".[cpu,dev]"

test: install
	$(PYTHON) -m pytest

lint: install
	$(PYTHON) -m ruff check ig_plugin tests examples benchmarks
	$(PYTHON) -m ruff format --check ig_plugin tests examples benchmarks
	$(PYTHON) -m mypy

demo: install
	$(PYTHON) examples/image_digits.py

benchmark: install
	$(PYTHON) benchmarks/core_overhead.py

clean:
	rm -rf $(VENV) build dist *.egg-info examples/output .pytest_cache .mypy_cache .ruff_cache
