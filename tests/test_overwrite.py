"""--overwrite never loses the old output before the new run has records to replace it with, and
swaps (metadata, Parquet/HF conversion) leave either the old or the new file, never neither."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from synthgen.engine import FakeEngine
from synthgen.errors import EngineError, InputError
from synthgen.generate import run
from synthgen.output import plan_run
from synthgen.output import replace_files, resize, write_json_atomic
from synthgen.template import load_template

from .test_generate import TINY, responder, write


class FailingEngine(FakeEngine):
    """Answers `ok` requests, then raises `error` (a dead server, Ctrl-C)."""

    def __init__(self, ok: int, error: BaseException):
        super().__init__(responder=responder, per_step=3)
        self.ok, self.error = ok, error

    def _answer(self, req):
        if len(self.history) >= self.ok:
            raise self.error
        return super()._answer(req)


def _old_run(tmp_path, fmt="jsonl", name="o.jsonl"):
    t = load_template(write(tmp_path, TINY))
    out = tmp_path / name
    run(t, FakeEngine(responder=responder, per_step=3), plan_run(t, out, 10, 1, fmt=fmt), 10, 1, block_size=4)
    files = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p.name.startswith(name)}
    return t, out, files


def _unchanged(tmp_path, files, name="o.jsonl"):
    now = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p.name.startswith(name)}
    return now == files


@pytest.mark.parametrize("error", [EngineError("server gone"), KeyboardInterrupt()])
def test_an_overwrite_that_fails_before_its_first_record_leaves_the_old_files_byte_identical(tmp_path, error):
    t, out, files = _old_run(tmp_path)
    with pytest.raises(type(error)):
        run(t, FailingEngine(0, error), plan_run(t, out, 10, 2, existing="overwrite"), 10, 2, block_size=4)
    assert _unchanged(tmp_path, files)


def test_an_overwrite_that_fails_later_leaves_the_new_runs_records_resumable(tmp_path):
    t, out, files = _old_run(tmp_path)
    ref = tmp_path / "ref.jsonl"
    run(t, FakeEngine(responder=responder, per_step=3), plan_run(t, ref, 10, 2), 10, 2, block_size=4)
    with pytest.raises(EngineError):
        run(t, FailingEngine(15, EngineError("server gone")), plan_run(t, out, 10, 2, existing="overwrite"), 10, 2,
            block_size=4)
    assert 0 < len(out.read_bytes().splitlines()) < 10  # the new run's first records replaced the old file
    assert json.loads(out.with_name("o.jsonl.meta.json").read_text())["identity"]["seed"] == 2
    run(t, FakeEngine(responder=responder, per_step=3), plan_run(t, out, 10, 2, existing="resume"), 10, 2, block_size=4)
    assert out.read_bytes() == ref.read_bytes()
    assert not [p for p in tmp_path.iterdir() if ".old-" in p.name or p.name.endswith(".tmp")]


def test_a_successful_overwrite_equals_a_fresh_run(tmp_path):
    t, out, _ = _old_run(tmp_path)
    ref = tmp_path / "ref.jsonl"
    run(t, FakeEngine(responder=responder, per_step=3), plan_run(t, ref, 10, 2), 10, 2, block_size=4)
    run(t, FakeEngine(responder=responder, per_step=3), plan_run(t, out, 10, 2, existing="overwrite"), 10, 2, block_size=4)
    assert out.read_bytes() == ref.read_bytes()
    assert not [p for p in tmp_path.iterdir() if ".old-" in p.name or p.name.endswith(".tmp")]


@pytest.mark.parametrize("fmt,name", [("parquet", "o.parquet"), ("hf", "o_hf")])
def test_a_converted_output_stays_until_the_new_conversion_replaces_it(tmp_path, fmt, name):
    t, out, _ = _old_run(tmp_path, fmt=fmt, name=name)
    old = sorted((p.relative_to(out).as_posix() if out.is_dir() else "", p.read_bytes())
                 for p in ([out] if out.is_file() else out.rglob("*")) if p.is_file())
    with pytest.raises(EngineError):
        run(t, FailingEngine(15, EngineError("server gone")), plan_run(t, out, 10, 2, fmt=fmt, existing="overwrite"), 10, 2,
            block_size=4)
    now = sorted((p.relative_to(out).as_posix() if out.is_dir() else "", p.read_bytes())
                 for p in ([out] if out.is_file() else out.rglob("*")) if p.is_file())
    assert now == old  # the old dataset is still readable while the new run is incomplete
    run(t, FakeEngine(responder=responder, per_step=3), plan_run(t, out, 10, 2, fmt=fmt, existing="resume"), 10, 2,
        block_size=4)
    assert out.exists() and not [p for p in tmp_path.iterdir() if ".old-" in p.name or ".tmp" in p.name]


def test_replace_files_puts_the_old_ones_back_when_writing_the_new_fails(tmp_path):
    a, d = tmp_path / "a.txt", tmp_path / "d"
    a.write_text("old a")
    d.mkdir()
    (d / "x").write_text("old x")

    def half_written():
        a.write_text("new a")
        raise OSError("disk full")

    with pytest.raises(OSError):
        replace_files([a, d], half_written)
    assert a.read_text() == "old a" and (d / "x").read_text() == "old x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "d"]
    replace_files([a, d], lambda: (a.write_text("new a"), d.mkdir()))
    assert a.read_text() == "new a" and list(d.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "d"]


def test_write_json_atomic_leaves_no_temp_file_and_keeps_the_old_on_failure(tmp_path):
    p = tmp_path / "m.json"
    write_json_atomic(p, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(p, {"a": object()})
    assert json.loads(p.read_text()) == {"a": 1} and [x.name for x in tmp_path.iterdir()] == ["m.json"]


def test_overwrite_against_a_dead_server_keeps_the_old_output_through_the_cli(tmp_path):
    from click.testing import CliRunner

    from synthgen.cli import cli

    t, out, files = _old_run(tmp_path)
    r = CliRunner().invoke(cli, ["generate", str(tmp_path / "t.yaml"), "--n", "10", "--out", str(out), "--overwrite",
                                 "--engine", "openai", "--endpoint", "http://127.0.0.1:9"])
    assert r.exit_code == 1 and "cannot reach" in r.output
    assert _unchanged(tmp_path, files)


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_or_killed_overwrite_on_the_real_engine_leaves_the_old_output(model_dir, tmp_path, sig):
    """Ctrl-C (SIGINT to its own session) or kill -9 while the engine starts: the old file stays."""
    t, out, files = _old_run(tmp_path)
    cmd = [sys.executable, "-m", "synthgen", "generate", str(tmp_path / "t.yaml"), "--n", "10", "--out", str(out),
           "--overwrite", "--model", model_dir]
    # SIGINT's default action in the child: a suite started in the background (nohup, CI) ignores
    # SIGINT, children inherit that, and Python then installs no KeyboardInterrupt handler
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=True,
                         env={**os.environ, "SYNTHGEN_DTYPE": "float32"},
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    line = ""
    while "starting engine" not in line and time.time() < deadline:
        line = p.stderr.readline()
        assert line or p.poll() is None, "the run ended before its engine started"
    time.sleep(0.5)  # inside vLLM's start (seconds even when warm); 10 records would finish soon after
    os.killpg(p.pid, sig)
    p.wait(timeout=60)
    assert p.returncode != 0
    assert _unchanged(tmp_path, files)


KILLED_SWAP = """
import os, signal, sys
from pathlib import Path
from synthgen.output import replace_files
p = Path(sys.argv[1])
new = p.with_name("new")
def write_new():  # the old copy is aside now: die before the new one is in place
    os.kill(os.getpid(), signal.SIGKILL)
replace_files([p], write_new)
"""


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_sigkill_inside_a_swap_leaves_the_old_copy_which_recover_puts_back(tmp_path, kind):
    from synthgen.output import recover

    p = tmp_path / "thing"
    if kind == "dir":
        p.mkdir()
        (p / "adapter_config.json").write_text("old")
    else:
        p.write_text("old")
    r = subprocess.run([sys.executable, "-c", KILLED_SWAP, str(p)])
    assert r.returncode == -signal.SIGKILL and not p.exists()
    assert [x.name.split("-")[0] for x in tmp_path.iterdir()] == ["thing.old"]  # kept, aside
    recover(p)
    assert (p / "adapter_config.json" if kind == "dir" else p).read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["thing"]


def test_train_and_plan_run_recover_a_swap_that_a_kill_interrupted(tmp_path):
    """The adapter, its checkpoint and an HF output are swapped with replace_files; the next
    build-adapter or run finds the old copy back in place."""
    from synthgen.errors import InputError
    from synthgen.train import train
    from synthgen.train_config import TrainConfig

    adapter = tmp_path / "ad"
    (tmp_path / "ad.old-1-abc").mkdir()
    (tmp_path / "ad.old-1-abc" / "adapter_config.json").write_text("{}")
    (tmp_path / "ad.partial.old-1-abc").mkdir()
    with pytest.raises(InputError, match="already exists"):
        train("unused", [], adapter, TrainConfig())
    assert (adapter / "adapter_config.json").is_file()
    assert (tmp_path / "ad.partial").is_dir()  # then: "holds an interrupted run: pass --resume"
    t = load_template(write(tmp_path, TINY))
    hf = tmp_path / "o_hf"
    (tmp_path / "o_hf.old-1-abc").mkdir()
    with pytest.raises(InputError, match="exists: add --resume"):
        plan_run(t, hf, 10, 1, fmt="hf")
    assert hf.is_dir()


@pytest.mark.parametrize("error", [EngineError("The model 'birth_dates' does not exist"), KeyboardInterrupt()])
def test_a_fresh_run_that_fails_before_its_first_record_leaves_no_file(tmp_path, error):
    """A missing adapter on a server, a dead endpoint or Ctrl-C before the first record: nothing on disk, so the
    same command runs again as a fresh run (it used to stop with "exists: add --resume or --overwrite")."""
    t = load_template(write(tmp_path, TINY))
    before = set(tmp_path.iterdir())
    with pytest.raises(type(error)):
        run(t, FailingEngine(0, error), plan_run(t, tmp_path / "f.jsonl", 10, 2), 10, 2, block_size=4)
    assert set(tmp_path.iterdir()) == before
    run(t, FakeEngine(responder=responder, per_step=3), plan_run(t, tmp_path / "f.jsonl", 10, 2), 10, 2, block_size=4)
    assert len((tmp_path / "f.jsonl").read_bytes().splitlines()) == 10


class NeighbourEngine(FakeEngine):
    """Like vLLM on a CPU: an answer depends on the batch it ran in (here: the story says how many
    requests were still waiting), so a block's last records differ when the run ends inside it."""

    def __init__(self):
        super().__init__(responder=responder, per_step=3)

    def step(self):
        batch, self._waiting = self._waiting[:3], self._waiting[3:]
        out = []
        for t, r in batch:
            c = self._answer(r)
            if r.prompt.startswith("Write about"):
                c = type(c)(text=f"A thing beside {len(self._waiting)} waiting was seen.", finish_reason="stop", n_tokens=6)
            out.append((t, c))
        return out


def test_resuming_with_a_larger_n_writes_what_a_fresh_run_of_that_n_writes(tmp_path):
    """A 6-record run (blocks of 4: its last block ends early), resumed with --n 10, equals a fresh 10-record
    run byte for byte: the last block is computed again as the longer run computes it."""
    t = load_template(write(tmp_path, TINY))
    ref, out = tmp_path / "ref.jsonl", tmp_path / "out.jsonl"
    run(t, NeighbourEngine(), plan_run(t, ref, 10, 3), 10, 3, block_size=4)
    run(t, NeighbourEngine(), plan_run(t, out, 6, 3), 6, 3, block_size=4)
    short = out.read_bytes()
    assert short.splitlines()[:4] == ref.read_bytes().splitlines()[:4]  # the full first block: the same
    assert short.splitlines()[4:6] != ref.read_bytes().splitlines()[4:6]  # the block that ended early: not
    plan = plan_run(t, out, 10, 3, existing="resume")
    assert "records 4-5 (its last block, which ended early at record 6)" in resize(plan, 10, 4)
    run(t, NeighbourEngine(), plan, 10, 3, block_size=4)
    assert out.read_bytes() == ref.read_bytes()


def test_resuming_with_a_smaller_n_inside_a_block_is_refused_in_one_line(tmp_path):
    t = load_template(write(tmp_path, TINY))
    out = tmp_path / "out.jsonl"
    run(t, NeighbourEngine(), plan_run(t, out, 6, 3), 6, 3, block_size=4)
    with pytest.raises(InputError, match="with --n 5: it is a 6-record run with 6 written") as e:
        resize(plan_run(t, out, 5, 3, existing="resume"), 5, 4)
    assert "\n" not in str(e.value)
    assert resize(plan_run(t, out, 6, 3, existing="resume"), 6, 4) is None  # the same n: nothing to do

