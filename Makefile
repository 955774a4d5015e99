# The two Quick-start targets. Both set everything up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup demo test bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[test,index,ray,demo]"
	touch $@

# Main job: index a folder of sample videos and search it by text.
demo: setup
	$(VENV)/bin/vtzoo demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/bench.py --op clip4clip
