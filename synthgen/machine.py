"""This machine, read once: its CPU (name, flags, vector ISA), its cores, and the store of what was measured
on it (SYNTHGEN_HOME/roofline.json: each dtype's ceiling from `benchmarks/roofline.py`, the dtype the engine
runs), keyed by CPU, threads and model. A leaf: the engine and the run both read it, it reads neither."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
from pathlib import Path


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's block of /proc/cpuinfo ({} where there is none: macOS, a sandbox)."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    if info:
                        break
                    continue
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_name() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine() or "unknown CPU"


def cpu_flags() -> set[str]:
    return set(_cpuinfo().get("flags", "").split())


def isa(flags: set[str]) -> str:
    """The vector ISA that decides dtype and kernels, in a few words ("AVX512-BF16 + VNNI")."""
    names = [n for flag, n in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512_vnni", "VNNI"))
             if flag in flags]
    return " + ".join(names) if names else ("AVX2 only" if "avx2" in flags else "no AVX2")


def cores() -> list[int]:
    """The ids of the CPUs this process may run on (its affinity, not the host's)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def threads() -> int:
    """How many CPUs this process may run on (its affinity, not the host's count)."""
    return len(cores())


def machine() -> dict:
    return {"cpu": cpu_name(), "threads": threads()}


def describe() -> str:
    """One line for a results file: "AMD EPYC 9R14, 2 cores (AVX512-BF16 + VNNI), 24 GiB RAM"."""
    try:
        mem = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        mem = ""
    return f"{cpu_name()}, {threads()} cores ({isa(cpu_flags())}){mem}"


def _file() -> Path:
    from .models import synthgen_home

    return synthgen_home() / "roofline.json"


def _key(model: str, name: str) -> str:
    m = machine()
    return f"{m['cpu']}|{m['threads']}|{Path(model).name}|{name}"


def _read() -> dict:
    try:
        doc = json.loads(_file().read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def save_entry(model: str, name: str, value: dict) -> Path:
    """Store `value` under this machine, model and `name` (a dtype's ceiling, or "dtype"): atomic update."""
    from .atomic import write_json_atomic

    path = _file()
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = _read()
    doc[_key(model, name)] = value
    write_json_atomic(path, doc)
    return path


def load_entry(model: str, name: str) -> dict | None:
    got = _read().get(_key(model, name))
    return got if isinstance(got, dict) else None


@contextlib.contextmanager
def locked():
    """Exclusive among processes sharing SYNTHGEN_HOME (a measurement must not run beside another)."""
    from .models import file_lock

    with file_lock(_file().with_suffix(".lock")):
        yield
