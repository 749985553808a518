"""The engine's OpenMP wait policy, chosen from the machine's load at start (engine/threads.py)."""

import subprocess
import sys
import time

from synthgen.engine import threads as T


def test_policy_sleeps_only_beside_other_work():
    assert T.wait_policy(0.0) is None and T.wait_policy(T.BUSY_CORES - 0.01) is None
    assert T.wait_policy(T.BUSY_CORES) == "PASSIVE" and T.wait_policy(1.9) == "PASSIVE"


def test_a_busy_loop_is_seen_as_a_busy_core():
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert T.busy_cores(0.5) >= 0.7
    finally:
        burner.kill()


def test_configure_sets_the_policy_once_and_a_users_setting_wins(monkeypatch):
    lines = []
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setattr(T, "busy_cores", lambda seconds=0.25: 1.0)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert T.configure(say=lines.append) == "PASSIVE"
    assert T.os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and "1.0 cores busy" in lines[0]
    assert T.configure() is None  # already set (by us or the user): left alone
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setattr(T, "busy_cores", lambda seconds=0.25: 0.1)
    assert T.configure() is None and "OMP_WAIT_POLICY" not in T.os.environ  # idle: libgomp's spin
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    monkeypatch.setattr(T, "busy_cores", lambda seconds=0.25: 2.0)
    assert T.configure() is None and "OMP_WAIT_POLICY" not in T.os.environ
