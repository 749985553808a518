"""Ray runs without Ray workers: the driver's sharding, merge order, retried shards and settings
checks, with the actors' code (BlockFiller) on FakeEngine. The real cluster runs: test_ray.py."""

import json
import random
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from synthgen.cli import cli
from synthgen.distributed import BlockFiller, RayPool, ship
from synthgen.engine import FakeEngine
from synthgen.errors import EngineError, InputError
from synthgen.generate import Fill, run
from synthgen.output import plan_run
from synthgen.template import load_template

from .test_generate import TINY, responder, write


class LocalPool(RayPool):
    """RayPool's driver with its actors' code run here: blocks in a shuffled order, split over
    `actors` FakeEngines, and the first block's first chunk delivered a second time (what a shard
    retried after a lost actor sends)."""

    def __init__(self, actors=2, order_seed=0, dtype="float32", dtypes=None):
        self.actors, self.order_seed, self.dtypes = actors, order_seed, dtypes or [dtype] * actors
        self.model, self.dtype, self.max_num_seqs = "fake", None, None
        self.blocks_seen = []

    def _batches(self, template, blocks, seed, fill):
        fillers = []
        for a in range(self.actors):
            eng = FakeEngine(responder=responder, per_step=3)
            eng.dtype, eng.max_num_seqs = self.dtypes[a], 6
            fillers.append(BlockFiller(ship(template), None, {}, seed, fill, {}, engine=eng))
        order = list(blocks)
        random.Random(self.order_seed).shuffle(order)
        for k, b in enumerate(order):
            self.blocks_seen.append((b.start, b.stop))
            chunks = list(fillers[k % self.actors]({"start": [b.start], "stop": [b.stop]}))
            yield from chunks
            if k == 0:
                yield chunks[0]  # the retried shard's output arrives again


def test_shards_merge_into_the_local_runs_file_in_record_order(tmp_path, monkeypatch):
    monkeypatch.setattr("synthgen.distributed.CHUNK", 3)  # blocks of 8: chunks of 3, 3, 2
    t = load_template(write(tmp_path, TINY))
    local = tmp_path / "local.jsonl"
    s_local = run(t, FakeEngine(responder=responder, per_step=3), plan_run(t, local, 40, 7), 40, 7, Fill(window=6), block_size=8)
    pool = LocalPool(actors=3, order_seed=1)
    out = tmp_path / "ray.jsonl"
    fields = {}
    s = run(t, pool, plan_run(t, out, 40, 7), 40, 7, Fill(on_field=lambda name, k: fields.__setitem__(name, fields.get(name, 0) + k)), block_size=8)
    assert out.read_bytes() == local.read_bytes()
    assert [b[0] for b in pool.blocks_seen] != sorted(b[0] for b in pool.blocks_seen)  # arrived out of order
    assert s.duplicates > 0 and s.new_records == 40
    assert fields == {f.name: 40 + s.duplicates for f in t.fields}  # progress counts what arrived
    assert s.tokens > s_local.tokens  # the repeated chunk's tokens were computed twice: counted
    meta = json.loads(out.with_name("ray.jsonl.meta.json").read_text())
    assert meta["settings"]["dtype"] == "float32" and meta["settings"]["window"] == 6 and meta["complete"]


def test_resume_of_a_ray_run_recomputes_the_interrupted_block_and_matches(tmp_path):
    t = load_template(write(tmp_path, TINY))
    ref, out = tmp_path / "ref.jsonl", tmp_path / "out.jsonl"
    run(t, LocalPool(), plan_run(t, ref, 30, 2), 30, 2, block_size=8)
    run(t, LocalPool(), plan_run(t, out, 30, 2), 30, 2, block_size=8)
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:13]) + lines[13][:9])  # a killed driver: 13 records and a torn line
    s = run(t, LocalPool(order_seed=5), plan_run(t, out, 30, 2, existing="resume"), 30, 2, block_size=8)
    assert out.read_bytes() == ref.read_bytes()
    assert s.new_records == 17 and s.recomputed >= 5 and s.recomputed_mismatch == 0  # 8..12 (+ a repeated chunk)


def test_resume_on_actors_with_another_dtype_is_refused_before_writing(tmp_path):
    t = load_template(write(tmp_path, TINY))
    out = tmp_path / "o.jsonl"
    run(t, LocalPool(), plan_run(t, out, 6, 1), 6, 1, block_size=4)
    before, meta = out.read_bytes(), Path(f"{out}.meta.json").read_bytes()
    with pytest.raises(InputError, match="different dtype"):
        run(t, LocalPool(dtype="bfloat16"), plan_run(t, out, 12, 1, existing="resume"), 12, 1, block_size=4)
    assert out.read_bytes() == before and Path(f"{out}.meta.json").read_bytes() == meta  # still a 6-record run


def test_actors_running_different_engines_fail_the_run(tmp_path):
    t = load_template(write(tmp_path, TINY))
    with pytest.raises(EngineError, match="different engines"):
        run(t, LocalPool(actors=2, dtypes=["float32", "bfloat16"]), plan_run(t, tmp_path / "o.jsonl", 16, 1), 16, 1,
            block_size=4)


def test_the_actor_rebuilds_the_drivers_template(tmp_path):
    t = load_template(write(tmp_path, TINY)).with_decode("constrained")
    t = t.with_changes({t.fields[0].name: {"adapter_path": "/adapters/colors"}})  # e.g. an adapter: auto the driver built
    filler = BlockFiller(ship(t), None, {}, 0, Fill(), {}, engine=FakeEngine(responder=lambda r: "red"))
    assert filler.template.decodes() == t.decodes() and filler.template.fields[0].adapter_path == "/adapters/colors"
    assert set(filler.fill.tries) == {"color", "day"}  # compiled on the actor, with its engine's tokenizer
    assert len(json.dumps(ship(t))) < 2000  # small: Ray passes it inline, a restarted actor always finds it


def test_ray_option_errors_are_one_line(tmp_path, monkeypatch):
    r = CliRunner().invoke(cli, ["biographies", "--n", "2", "--out", str(tmp_path / "o.jsonl"), "--ray",
                                 "--engine", "openai", "--endpoint", "http://localhost:1"])
    assert r.exit_code != 0 and "does not combine with --engine openai" in r.output and "Traceback" not in r.output
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    r = CliRunner().invoke(cli, ["biographies", "--n", "2", "--out", str(tmp_path / "o.jsonl"), "--ray"])
    assert r.exit_code != 0 and "pip install 'synthgen[ray]'" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o.jsonl").exists()


def test_a_ray_run_converts_to_parquet_in_record_order(tmp_path):
    t = load_template(write(tmp_path, TINY))
    out = tmp_path / "o.parquet"
    run(t, LocalPool(), plan_run(t, out, 10, 3, fmt="parquet"), 10, 3, block_size=4)
    import pyarrow.parquet as pq

    assert pq.read_table(out).column("index").to_pylist() == list(range(10))


def test_an_actor_sends_the_same_chunks_whatever_order_records_finish_in(tmp_path):
    """Ray matches a retried generator's outputs to the first attempt's by position: the chunks
    must not depend on timing. Records finish in another order with another engine step size."""
    t = load_template(write(tmp_path, TINY))

    def chunks(per_step):
        eng = FakeEngine(responder=responder, per_step=per_step)
        filler = BlockFiller(ship(t), None, {}, 4, Fill(window=5), {}, engine=eng)
        return [[r["index"] for r in json.loads(c["records"][0])] for c in filler({"start": [3], "stop": [22]})]

    assert chunks(1) == chunks(None) == [list(range(3 + 8 * k, min(22, 11 + 8 * k))) for k in range(3)]


def test_ray_cpp_log_lines_go_to_the_log_and_ours_pass(tmp_path, monkeypatch, capfd):
    import os

    from synthgen.engine.quiet import cpp_log_lines_to_log, log_path

    monkeypatch.setenv("SYNTHGEN_HOME", str(tmp_path))
    with cpp_log_lines_to_log():
        os.write(2, b"[2026-12-01 16:48:57,658 E 19836 19836] core_worker.cc:2465: Actor with class name ...\n")
        os.write(2, b"our line\n\x1b[2K  gender 3/24")
    err = capfd.readouterr().err
    assert "our line" in err and "gender 3/24" in err and "core_worker" not in err
    assert "core_worker.cc:2465" in log_path().read_text()


@pytest.mark.parametrize("args, message", [
    (["--actors", "2"], "--actors sizes a Ray run: add --ray"),
    (["--ray", "--actors", "0"], "--actors must be >= 1, got 0"),
    (["--ray", "--cpus-per-actor", "0"], "--cpus-per-actor must be > 0, got 0"),
    (["--ray", "--gpus-per-actor", "-1"], "--gpus-per-actor must be >= 0, got -1"),
])
def test_bad_ray_shares_are_one_line_errors_before_anything_starts(tmp_path, args, message):
    r = CliRunner().invoke(cli, ["biographies", "--n", "2", "--out", str(tmp_path / "o.jsonl"), *args])
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o.jsonl").exists()


def test_configure_sizes_the_actor_pool_from_the_cluster_and_refuses_what_does_not_fit(monkeypatch):
    """RayPool._configure on a fake cluster: defaults (one actor per core share, or per GPU), explicit
    shares, and the one-line refusals."""
    pytest.importorskip("ray.data")
    from types import SimpleNamespace

    def pool(resources, actors=None, cpus=None, gpus=None):
        p = object.__new__(RayPool)
        p.ray = SimpleNamespace(cluster_resources=lambda: resources)
        p._configure("m", {"max_loras": 3}, actors, cpus, gpus)
        return p

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    p = pool({"CPU": 8.0})
    assert (p.actors, p.cpus, p.gpus, p.engine_kwargs) == (4, 2, 0, {"max_loras": 3})  # 8 CPUs / 2 per actor
    assert (pool({"CPU": 8.0}, cpus=1).actors, pool({"CPU": 8.0}, actors=2, cpus=3).actors) == (8, 2)
    p = pool({"CPU": 16.0, "GPU": 2.0})
    assert (p.actors, p.cpus, p.gpus) == (2, 1, 1)  # GPUs present: one per actor, 1 CPU each
    assert pool({"CPU": 16.0, "GPU": 2.0}, gpus=0.5).actors == 4
    with pytest.raises(InputError, match=r"3 actors of 4 CPUs do not fit in the cluster \(8 CPUs, 0 GPUs\)"):
        pool({"CPU": 8.0}, actors=3, cpus=4)
    with pytest.raises(InputError, match="--cpus-per-actor must be > 0"):
        pool({"CPU": 8.0}, cpus=0)
    with pytest.raises(InputError, match="--actors must be >= 1"):
        pool({"CPU": 8.0}, actors=0)


def test_stats_deltas_add_up_to_the_whole():
    """An actor sends `now.minus(sent)` per chunk; the driver adds them: the sum is the actor's total."""
    from synthgen.engine.base import Completion
    from synthgen.generate import Stats

    actor, sent, driver = Stats(), Stats(), Stats()
    outs = [Completion(text="x", finish_reason="stop", n_tokens=3, prompt_tokens=40, cached_tokens=32 * (k % 2)) for k in range(7)]
    for k, o in enumerate(outs):
        actor.count(o, "color" if k % 3 else "day", attempt=k % 2, valid=k % 4 != 0)
        if k in (2, 6):
            delta = actor.minus(sent)
            sent.add(delta)
            driver.add(json.loads(json.dumps(delta)))  # as it travels
    assert driver == actor
    assert (actor.requests, actor.tokens, actor.prompt_tokens, actor.cached_prompt_tokens) == (7, 21, 280, 96)
    assert actor.attempted == {"day": 2, "color": 2} and actor.first_valid == {"day": 1, "color": 1}
    assert actor.computed_prompt_tokens == 184
