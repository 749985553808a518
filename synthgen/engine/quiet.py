"""Only synthgen's lines on the terminal: what vLLM, Triton, torch and HF print while an engine
starts (import notices, FutureWarnings, NUMA notes, "Loading safetensors checkpoint shards" bars)
goes to a log file instead. `SYNTHGEN_VERBOSE=1` (the CLI's --verbose) shows it all."""

from __future__ import annotations

import contextlib
import logging
import os
import re
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


RAY_CPP_LINE = re.compile(rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [DIWEF] \d+ \d+\] ")


@contextlib.contextmanager
def cpp_log_lines_to_log(pattern: re.Pattern = RAY_CPP_LINE):
    """Inside: lines written to fd 2 that match `pattern` (Ray's C++ core logs its own notices to the
    driver's stderr, e.g. "[2026-… E 123 123] core_worker.cc:…") go to the engine log; everything
    else (our progress bars, errors) passes through at once. No-op when verbose."""
    if verbose():
        yield
        return
    import threading

    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        held = b""  # the start of a line that may be a C++ log line: decided at its newline
        with open(path, "ab") as log:
            while chunk := os.read(read_end, 65536):
                lines = (held + chunk).split(b"\n")
                held = b""
                for line in lines[:-1]:
                    if pattern.match(line):
                        log.write(line + b"\n")
                        log.flush()
                    else:
                        os.write(saved, line + b"\n")
                tail = lines[-1]  # no newline yet: progress bars redraw without one, pass them on
                if tail.startswith(b"[") and len(tail) < 4096:
                    held = tail
                elif tail:
                    os.write(saved, tail)
            if held:
                os.write(saved, held)
        os.close(read_end)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump drains and stops
        thread.join(timeout=5)
        os.close(saved)
