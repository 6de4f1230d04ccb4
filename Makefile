# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=77" wheel
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

EW   := $(VENV)/bin/edgewave

## The main job on the bundled example: train, convert, emit, build, simulate, results table.
demo: $(STAMP)
	$(EW) demo --out runs/demo

## The test suite (QEMU tests run when arm-none-eabi-gcc and qemu-system-arm are installed).
test: $(STAMP)
	$(PY) -m pytest -q -rs --hypothesis-show-statistics -p no:cacheprovider

## Measurements into benchmarks/results.json and RESULTS.md; the README's figures are rendered from them.
bench: $(STAMP)
	$(PY) benchmarks/run.py
	$(PY) benchmarks/readme.py

clean:
	rm -rf $(VENV) runs build *.egg-info .pytest_cache
