# The two Quick-start targets. Both set everything up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup demo test bench browser plots

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[test,index,ray,demo,serve,plots]"
	touch $@

# Main job: index a folder of sample videos and search it by text.
demo: setup
	$(VENV)/bin/vtzoo demo

test: setup browser
	$(PY) -m pytest -q

# The page's tests drive the system's headless Chromium (Debian's package), never a downloaded one.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core; } || \
	  { echo "install Chromium: sudo apt-get install chromium" >&2; exit 1; }

# Re-render the plots of docs/ from the committed results.
plots: setup
	$(PY) benchmarks/plot_benchmarks.py

bench: setup
	$(PY) benchmarks/bench.py --op clip4clip
