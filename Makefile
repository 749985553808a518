# The two commands a fresh machine needs: `make demo` and `make test`. Both set up first.
VENV ?= .venv
BIN := $(VENV)/bin
export SYNTHGEN_HOME ?= $(HOME)/.cache/synthgen

.PHONY: setup demo test test-fast bench adapters clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/synthgen models
	@echo "== the base model: mode collapse =="
	$(BIN)/synthgen sample "Pick a random number between 1 and 100. Answer with the number only." --n 300 --max-tokens 8
	@echo "== the same prompt through the shipped diffuse adapter =="
	$(BIN)/synthgen sample "Pick a random number between 1 and 100. Answer with the number only." --n 300 --max-tokens 8 --adapter adapters/numbers_1_100
	$(BIN)/synthgen audit adapters/numbers_1_100.yaml --adapter adapters/numbers_1_100

test: setup
	$(BIN)/python -m pytest -v --durations=15

test-fast: setup
	$(BIN)/python -m pytest -m "not integration"

bench: setup
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_train.py

# Rebuild the default adapters shipped in adapters/ (about 20 minutes on a 2-core CPU)
adapters: setup
	bash scripts/build_adapters.sh

clean:
	rm -rf $(VENV) build *.egg-info
