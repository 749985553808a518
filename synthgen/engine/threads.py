"""How the engine's OpenMP threads wait, chosen by what else runs on the machine at start.

Measured on 2 cores (benchmarks/levers.py, retired after commit fb4044b, 128 biographies, bf16; docs/engines.md "Sharing the machine"): a
spinning OpenMP thread that shares its core with a CPU-bound process loses its time slices, and
every parallel region waits for it: 0.07x the alone speed beside one busy loop. Threads that
sleep when idle (OMP_WAIT_POLICY=PASSIVE) keep 0.60x beside it, but cost 40 % alone. So: where
other processes keep at least BUSY_CORES busy when synthgen starts, idle threads sleep; on an idle
machine they spin (the fastest alone). The records do not depend on it (the same digest in every
setting measured). A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.

torch's libgomp reads these variables once, when torch is first imported: `configure()` must run
before that (the CLI calls it for the commands that start an engine). A run that started on an idle
machine looks again every WINDOW seconds while it runs (`LoadWatch`): where other processes have
kept BUSY_CORES busy over the last window, the CLI resumes the run in a fresh process whose threads
sleep (`resume_argv`), as `--resume` after a kill would: the records written are kept, the
interrupted block is computed again, and the file is the one an uninterrupted run writes.
"""

from __future__ import annotations

import os
import sys
import time

REDECIDED = "SYNTHGEN_WAIT_REDECIDED"  # set in the resumed process: it sleeps and decides no more

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


class Redecide(Exception):
    """Other processes now keep `busy` cores busy: resume the run with sleeping threads."""

    def __init__(self, busy: float):
        super().__init__(f"other processes keep {busy:.1f} cores busy")
        self.busy = busy


# seconds between looks (SYNTHGEN_LOAD_WINDOW: the tests' shorter one): a busy loop beside spinning threads
# slows a run several times over, a restart costs the engine's start and the block in progress
WINDOW = 30.0


class LoadWatch:
    """Every `window` seconds of the run, the cores other processes used since the last look (busy time
    on this process's CPUs less its own CPU time, over the wall time): `tick` raises Redecide where that
    reached BUSY_CORES while the threads spin."""

    def __init__(self, window: float | None = None, clock=time.monotonic, written=None):
        """`written`: the run's output stream; no look before this run has written to it (a run with
        --overwrite keeps the old file until its first record: resuming before that would resume the old)."""
        import psutil

        self.window = window if window is not None else float(os.environ.get("SYNTHGEN_LOAD_WINDOW", WINDOW))
        self.clock, self.me, self.written, self.since = clock, psutil.Process(), written, time.time()
        self.mine = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        self.last = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        import psutil

        cpus = [t for i, t in enumerate(psutil.cpu_times(percpu=True)) if self.mine is None or i in self.mine]
        busy = sum(sum(t) - t.idle - getattr(t, "iowait", 0.0) for t in cpus)
        own = sum(self.me.cpu_times()[:2])
        return self.clock(), busy, own

    def others(self) -> float:
        """Cores' worth of CPU time other processes used since the last call."""
        (t0, busy0, own0), now = self.last, self._sample()
        self.last = now
        wall = now[0] - t0
        return max(0.0, ((now[1] - busy0) - (now[2] - own0)) / wall) if wall > 0 else 0.0

    def writing(self) -> bool:
        """Whether this run has written records (its stream changed since the watch began)."""
        try:
            return self.written is None or os.stat(self.written).st_mtime >= self.since
        except OSError:
            return False

    def tick(self) -> None:
        """Called as records progress: a look once `window` seconds have passed since the last."""
        if self.clock() - self.last[0] >= self.window and self.writing() and (busy := self.others()) >= BUSY_CORES:
            raise Redecide(busy)


def may_redecide(policy: str | None) -> bool:
    """Whether this run may switch to sleeping threads later: it spins by our choice (not the user's
    setting, not a resumed re-decision) and it is the `synthgen` command itself (a fresh process can
    carry on its arguments)."""
    user = "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ
    command = os.path.basename(sys.argv[0]) in ("synthgen", "__main__.py")
    return policy is None and not user and REDECIDED not in os.environ and command


def resume_argv(argv: list[str]) -> list[str]:
    """The command that carries on this run in a fresh process: the same arguments, `--resume` rather
    than `--overwrite` (the records written so far are kept, the interrupted block computed again)."""
    args = [a for a in argv if a != "--overwrite"]
    return [sys.executable, "-m", "synthgen", *args, *([] if "--resume" in args else ["--resume"])]


def resume_sleeping(argv: list[str]) -> None:
    """Replace this process by the run resumed with sleeping threads (never returns)."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", REDECIDED: "1"}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, resume_argv(argv), env)
