"""Only synthgen's lines on the terminal: what vLLM, Triton, torch and HF print while an engine
starts (import notices, FutureWarnings, NUMA notes, "Loading safetensors checkpoint shards" bars)
goes to a log file instead. `SYNTHGEN_VERBOSE=1` (the CLI's --verbose) shows it all."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from pathlib import Path


def verbose() -> bool:
    return os.environ.get("SYNTHGEN_VERBOSE", "") not in ("", "0")


def log_path() -> Path:
    from ..models import synthgen_home

    return synthgen_home() / "logs" / "engine.log"


@contextlib.contextmanager
def engine_output():
    """Inside: file descriptors 1 and 2 (also child processes' and C++ code's) point at the engine
    log, appended; Python warnings from the libraries are filtered. Yields the log's path (None when
    verbose). An error raised inside names the log."""
    if verbose():
        yield None
        return
    for mod in ("vllm", "torch", "transformers", "triton"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=mod)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=mod)
        warnings.filterwarnings("ignore", category=UserWarning, module=mod)
    logging.getLogger("vllm").setLevel(logging.ERROR)
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}\n".encode())
        log.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield path
        except Exception as e:
            from ..errors import SynthgenError

            if isinstance(e, SynthgenError) and "engine log" not in str(e):
                e.args = (f"{e.args[0] if e.args else e} (engine log: {path})",) + tuple(e.args[1:])
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool = True):
    """Send fd 1 to stderr while engines run (vLLM and its worker processes print to stdout), so
    that `--json` output on stdout stays machine-readable. Yields a writer to the real stdout."""
    if not enabled:
        yield lambda text: (sys.stdout.write(text + "\n"), sys.stdout.flush())
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    real = os.fdopen(os.dup(saved), "w")
    try:
        yield lambda text: (real.write(text + "\n"), real.flush())
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        real.close()
