# The two commands a fresh machine needs: `make demo` and `make test`. Both set up first.
VENV ?= .venv
BIN := $(VENV)/bin
export SYNTHGEN_HOME ?= $(HOME)/.cache/synthgen

.PHONY: setup demo test test-fast bench results adapters clean

setup:
	@bash scripts/setup.sh

DEMO_N ?= 64
demo: setup
	$(BIN)/synthgen models
	@mkdir -p out/demo
	@echo "== $(DEMO_N) biographies, every attribute through its diffuse adapter =="
	$(BIN)/synthgen biographies --n $(DEMO_N) --out out/demo/bios.jsonl --overwrite
	@echo "== the same template on the base model (no adapters) =="
	$(BIN)/synthgen biographies --n $(DEMO_N) --out out/demo/base.jsonl --overwrite --no-adapters
	@echo "== diversity report: diffuse vs base =="
	$(BIN)/synthgen report out/demo/bios.jsonl --compare out/demo/base.jsonl --out out/demo/report
	@echo "open out/demo/report/report.html"

# pytest-xdist: two workers, each on its own half of the cores (tests/conftest.py pins them); one core or a
# CUDA box (one GPU for every engine): a single process. TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= $(shell if command -v nvidia-smi >/dev/null 2>&1 || [ "$$(nproc)" -lt 2 ]; then echo 0; else echo 2; fi)
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test: setup
	$(PYTEST) -v --durations=15

test-fast: setup
	$(PYTEST) -m "not integration"

bench: setup
	$(BIN)/python benchmarks/roofline.py
	$(BIN)/python benchmarks/throughput.py --n 1000

# The paper's task suite, then docs/results.md's Results section (about 45 min on a 2-core CPU)
results: setup
	$(BIN)/python benchmarks/paper_tasks.py --steps 40 --prompts-per-step 1 --samples 200
	$(BIN)/python scripts/results_section.py

# Rebuild the default adapters shipped in adapters/ (about 20 min on a 2-core CPU: docs/adapters.md, "Shipped adapters";
# OUT=DIR builds elsewhere, KEEP=1 skips stages already built, LANES=1 runs one call at a time)
adapters: setup
	bash scripts/build_adapters.sh

clean:
	rm -rf $(VENV) build *.egg-info out
