# The two commands a fresh machine needs: `make demo` and `make test`. Both set up first.
VENV ?= .venv
BIN := $(VENV)/bin
export SYNTHGEN_HOME ?= $(HOME)/.cache/synthgen

.PHONY: setup demo test test-fast bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/synthgen models
	$(BIN)/synthgen sample "Pick a random number between 1 and 10. Answer with the number only." --n 300

test: setup
	$(BIN)/python -m pytest -v --durations=15

test-fast: setup
	$(BIN)/python -m pytest -m "not integration"

bench: setup
	$(BIN)/python benchmarks/bench_engine.py

clean:
	rm -rf $(VENV) build *.egg-info
