"""The engine's OpenMP wait policy, chosen from the machine's load at start (engine/threads.py)."""

import os
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


def test_a_spinning_run_sees_load_that_comes_later_and_only_then(monkeypatch):
    """LoadWatch: the other processes' cores over each window (busy time less this process's own), looked at
    once a window has passed: this process's own work is not another's; a busy loop beside it is."""
    import pytest

    samples = iter([(0.0, 0.0, 0.0), (30.0, 60.0, 58.0), (60.0, 120.0, 90.0)])  # (time, busy, own) seconds
    monkeypatch.setattr(T.LoadWatch, "_sample", lambda self: next(samples))
    now = [10.0]
    watch = T.LoadWatch(window=30, clock=lambda: now[0])
    watch.tick()  # 10 s in: no look before the window has passed
    now[0] = 30.0
    watch.tick()  # 0..30 s: 60 busy core-seconds, 58 of them its own: alone
    now[0] = 45.0
    watch.tick()
    now[0] = 60.0
    with pytest.raises(T.Redecide, match=r"other processes keep 0\.9 cores busy") as e:
        watch.tick()  # 30..60 s: busy 60, own 32: another process holds about a core
    assert e.value.busy == pytest.approx(28 / 30)

    monkeypatch.undo()
    watch = T.LoadWatch(window=0.3)  # the real counters, beside a busy loop
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.4)
        with pytest.raises(T.Redecide) as e:
            watch.tick()
        assert e.value.busy >= 0.7
    finally:
        burner.kill()


def test_only_the_command_that_spins_by_our_choice_may_switch(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.delenv(T.REDECIDED, raising=False)
    monkeypatch.setattr(sys, "argv", ["/venv/bin/synthgen", "biographies"])
    assert T.may_redecide(None)
    assert not T.may_redecide("PASSIVE")  # it sleeps already
    monkeypatch.setattr(sys, "argv", ["/x/synthgen/__main__.py", "biographies"])
    assert T.may_redecide(None)
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    assert not T.may_redecide(None)  # the user's setting wins
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setenv(T.REDECIDED, "1")
    assert not T.may_redecide(None)  # a resumed run decides no more
    monkeypatch.delenv(T.REDECIDED)
    monkeypatch.setattr(sys, "argv", ["/venv/bin/pytest", "tests"])
    assert not T.may_redecide(None)  # called in-process (a test's CliRunner): no process to replace


def test_the_resumed_command_keeps_the_records_written():
    """--overwrite would start the file again: the resumed command says --resume instead, once."""
    assert T.resume_argv(["biographies", "--n", "9", "--out", "o.jsonl", "--overwrite"])[1:] == \
        ["-m", "synthgen", "biographies", "--n", "9", "--out", "o.jsonl", "--resume"]
    assert T.resume_argv(["generate", "t.yaml", "--resume", "--json"])[3:] == ["generate", "t.yaml", "--resume", "--json"]


def test_no_look_before_the_run_has_written_to_its_output(tmp_path, monkeypatch):
    """With --overwrite the old file stays until the run's first record: a switch before that would resume the
    old file, so the watch waits until this run has written (its stream changed since the watch began)."""
    import pytest

    out = tmp_path / "o.jsonl"
    out.write_text("an old run\n")
    old = time.time() - 60
    os.utime(out, (old, old))
    samples = iter([(0.0, 0.0, 0.0), (40.0, 80.0, 40.0)])
    monkeypatch.setattr(T.LoadWatch, "_sample", lambda self: next(samples))
    watch = T.LoadWatch(window=30, clock=lambda: 40.0, written=out)
    assert not watch.writing()
    watch.tick()  # a core of others' load, but nothing of this run written yet: no look
    out.write_text("record 0\n")
    assert watch.writing()
    with pytest.raises(T.Redecide):
        watch.tick()
    monkeypatch.undo()
    assert not T.LoadWatch(written=tmp_path / "none.jsonl").writing()  # no stream yet
