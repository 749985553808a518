"""How the engine's OpenMP threads wait, chosen by what else runs on the machine at start.

Measured on 2 cores (benchmarks/levers.py, retired after commit fb4044b, 128 biographies, bf16; docs/engines.md "Sharing the machine"): a
spinning OpenMP thread that shares its core with a CPU-bound process loses its time slices, and
every parallel region waits for it: 0.07x the alone speed beside one busy loop. Threads that
sleep when idle (OMP_WAIT_POLICY=PASSIVE) keep 0.60x beside it, but cost 40 % alone. So: where
other processes keep at least BUSY_CORES busy when synthgen starts, idle threads sleep; on an idle
machine they spin (the fastest alone). The records do not depend on it (the same digest in every
setting measured). A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.

torch's libgomp reads these variables once, when torch is first imported: `configure()` must run
before that (the CLI calls it for the commands that start an engine).
"""

from __future__ import annotations

import os
import sys
import time

BUSY_CORES = 0.5


def busy_cores(seconds: float = 0.25) -> float:
    """Cores' worth of CPU time other processes use right now on the cores this process may run on
    (its affinity; psutil's per-CPU times), while this one sleeps."""
    import psutil

    mine = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None

    def sample():
        cpus = [t for i, t in enumerate(psutil.cpu_times(percpu=True)) if mine is None or i in mine]
        return sum(sum(t) for t in cpus), sum(t.idle + getattr(t, "iowait", 0.0) for t in cpus)

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, RuntimeError):
        return 0.0
    total = total1 - total0
    if total <= 0:
        return 0.0
    cores = len(mine) if mine is not None else (os.cpu_count() or 1)
    return max(0.0, (total - (idle1 - idle0)) / total * cores)


def wait_policy(busy: float) -> str | None:
    """PASSIVE where other work holds at least BUSY_CORES; None (libgomp's default spin) otherwise."""
    return "PASSIVE" if busy >= BUSY_CORES else None


def configure(say=None) -> str | None:
    """Set OMP_WAIT_POLICY for this process (and its children) from the load now; returns the
    policy set, or None where it left things as they were."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ or "torch" in sys.modules:
        return None
    busy = busy_cores()
    policy = wait_policy(busy)
    if policy:
        os.environ["OMP_WAIT_POLICY"] = policy
        if say:
            say(f"synthgen: other processes keep {busy:.1f} cores busy: the engine's threads sleep when idle "
                "(OMP_WAIT_POLICY=PASSIVE; spinning threads run several times slower beside other work)")
    return policy
