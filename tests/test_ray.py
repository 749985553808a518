"""`--ray` on a local Ray cluster with the embedded model: the same file as a plain run, after a lost
actor (Ray restarts it and retries its shard) and after a killed driver (`--resume`)."""

import json
import os
import re
import signal
import subprocess
import time

import psutil
import pytest

from .conftest import MINI_N, mini_cmd

pytestmark = pytest.mark.integration
pytest.importorskip("ray")


def _env():
    return os.environ | {"SYNTHGEN_HOME": os.environ["SYNTHGEN_HOME"]}


def _wait_for_records(proc, out, timeout=400):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and (not out.exists() or out.stat().st_size == 0):
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1][-3000:]


def _actors():
    return [p for p in psutil.process_iter(["cmdline"]) if "MapWorker" in " ".join(p.info["cmdline"] or [])]


def test_two_actors_one_killed_mid_run_give_the_plain_runs_file(mini_reference, tmp_path):
    out = tmp_path / "ray.jsonl"
    proc = subprocess.Popen(mini_cmd(mini_reference.template, out, "--ray", "--actors", "2", "--cpus-per-actor", "1", "--json"), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for_records(proc, out)
        actors = _actors()
        assert len(actors) == 2, [a.info["cmdline"] for a in actors]
        actors[0].kill()  # a lost worker: Ray Data restarts the actor and retries its shard
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout)
    assert summary["records"] == MINI_N and summary["new_records"] == MINI_N
    assert out.read_bytes() == mini_reference.data  # nothing lost, duplicated or changed
    # only our own output: no traceback, no Ray warning, none of Ray's C++ log lines ("[2026-… E 1 1] core_worker.cc")
    assert "Traceback" not in stderr and "WARNING" not in stderr and not re.search(r"^\[\d{4}-", stderr, re.M), stderr[-3000:]


def test_driver_killed_then_resume_on_ray_gives_the_plain_runs_file(mini_reference, tmp_path):
    out = tmp_path / "ray.jsonl"
    cmd = mini_cmd(mini_reference.template, out, "--ray")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_for_records(proc, out)
        proc.send_signal(signal.SIGKILL)  # the driver only; its local Ray goes with its process group below
        proc.wait()
    finally:
        time.sleep(2)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    kept = len(out.read_bytes().splitlines())
    assert 0 < kept < MINI_N
    r = subprocess.run(cmd + ["--resume", "--json"], env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout)
    assert summary["records"] == MINI_N and summary["new_records"] == MINI_N - kept and summary["recomputed_mismatch"] == 0
    assert out.read_bytes() == mini_reference.data
