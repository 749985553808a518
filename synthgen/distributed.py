"""Generation on a Ray cluster: whole blocks as shards on an actor pool, one synthgen engine per actor.

    pool = RayPool("local", model=None, engine_kwargs={"max_loras": 4}, actors=2, cpus_per_actor=1)
    summary = generate.run(template, pool, plan, n, seed, block_size=256)   # the same call as a local run

A shard is a generation block (`--block-size`): its batches do not depend on timing, and each
block starts with an empty prefix cache, so a block made on an actor equals the local run's block
when the actor runs the same engine (model, dtype, max_num_seqs, threads). Ray Data runs the
blocks (`map_batches` over an actor pool; a lost actor is restarted and its shard retried, Ray
Data's default); each actor streams its finished records back in index order, CHUNK at a time
(the same chunks on a retry, as Ray expects of a retried generator), and the driver
writes them in index order with the local run's writer (output.OrderedWriter): a record a retried
shard makes twice is written once, a killed driver leaves a file that `--resume` finishes.

Why not `ray.data.llm`'s vLLM processor: it sends rows as independent requests to vLLM's async
engine, which batches them by arrival time (not deterministic on CPU), while a synthgen record is
a chain of dependent requests, each field with its own LoRA adapter and decode trie.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Iterator

from .errors import EngineError, InputError
from .template import Template

CHUNK = 8  # an actor sends its finished records in index order, this many at a time (and a block's last ones)
ENV_PREFIXES = ("SYNTHGEN_", "VLLM_", "HF_")  # the driver's settings that actors need (home, dtype, cache)


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'synthgen[ray]' (or `make setup`)") from None
    return ray


def ship(template: Template) -> dict:
    """What an actor needs to rebuild the driver's template: small (Ray keeps big constructor
    arguments in its object store, where a restarted actor may not find them)."""
    return {"path": template.path, "digest": template.digest, "decodes": template.decodes(),
            "adapters": {f.name: f.adapter_path for f in template.fields}}


def load_shipped(shipped: dict) -> Template:
    from .template import load_template

    t = load_template(shipped["path"], use_adapters=False)  # adapter paths: the driver's (auto ones built there)
    if t.digest != shipped["digest"]:
        raise EngineError(f"the template {shipped['path']!r} on this worker differs from the driver's: "
                          "give every node the same file")
    return t.with_changes({f.name: {"decode": shipped["decodes"][f.name], "adapter_path": shipped["adapters"][f.name]}
                           for f in t.fields})


class BlockFiller:
    """A Ray Data actor: one synthgen engine; each input row is a block [start, stop) whose records
    it yields in index order as they finish, CHUNK records (one row) at a time."""

    def __init__(self, template: dict, model: str | None, engine_kwargs: dict, seed: int, fill, env: dict,
                 engine=None):
        """`fill`: the driver's generate.Fill without its callbacks and tries (Fill.shippable)."""
        os.environ.update(env)
        template = load_shipped(template)
        if engine is None:
            from .engine import start_engine

            engine, _ = start_engine("vllm", model, **engine_kwargs)
        from dataclasses import replace

        from .generate import DEFAULT_WINDOW, compile_tries

        self.engine, self.template, self.seed = engine, template, seed
        constrained = "constrained" in template.decodes().values()
        self.fill = replace(fill, tries=compile_tries(template, engine.tokenizer) if constrained else {},
                            window=fill.window or engine.max_num_seqs or DEFAULT_WINDOW)
        self.settings = json.dumps({"dtype": engine.dtype, "window": self.fill.window})

    def __call__(self, batch: dict) -> Iterator[dict]:
        from .generate import local_fill_blocks

        blocks = [range(int(a), int(b)) for a, b in zip(batch["start"], batch["stop"])]
        order = [i for b in blocks for i in b]
        from .generate import Stats

        stats, sent = Stats(), Stats()
        done: dict[int, dict] = {}
        nxt = 0  # position in `order` of the next record to send
        for rec in local_fill_blocks(self.engine, self.template, blocks, self.seed, self.fill, stats):
            done[rec["index"]] = rec
            # whole chunks of CHUNK records in index order: the same chunks on a retry (Ray matches a
            # retried task's outputs to the first attempt's by position), whatever the timing
            while nxt + CHUNK <= len(order) and all(i in done for i in order[nxt:nxt + CHUNK]):
                yield self._chunk([done.pop(i) for i in order[nxt:nxt + CHUNK]], stats, sent)
                nxt += CHUNK
        if nxt < len(order):
            yield self._chunk([done.pop(i) for i in order[nxt:]], stats, sent)

    def _chunk(self, chunk: list[dict], stats, sent) -> dict:
        """One row: the chunk's records, the stats since the last chunk (`sent` catches up), this engine's settings."""
        delta = stats.minus(sent)
        sent.add(delta)
        return {"records": [json.dumps(chunk, ensure_ascii=False)], "stats": [json.dumps(delta)], "settings": [self.settings]}


class RayPool:
    """An engine stand-in for `generate.run`: `fill_blocks` runs the blocks on Ray actors.

    address: "local" (a Ray started for this run and stopped after), "auto" (the cluster this
    machine is in), or a cluster address (`ray://head:10001`, `head:6379`). actors default: the
    cluster's CPUs (GPUs) divided by each actor's share. cpus_per_actor default: this machine's
    cores (one vLLM per CPU node: it uses all of them) or 1 with a GPU; gpus_per_actor default: 1
    where the cluster has GPUs."""

    dtype: str | None = None  # what the actors' engines run with: known from their first records
    max_num_seqs: int | None = None

    def __init__(self, address: str = "local", *, model: str | None = None, engine_kwargs: dict | None = None,
                 actors: int | None = None, cpus_per_actor: float | None = None, gpus_per_actor: float | None = None):
        ray = import_ray()
        self.ray = ray
        self.env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            except Exception as e:  # ConnectionError, ValueError ...: the user needs one line
                raise EngineError(f"could not start or reach Ray at {address!r}: {e.__class__.__name__}: {e}") from None
            self._started = True
        else:
            self._started = False
        # Ray's C++ core prints notices about its own internals on this process's stderr: to the engine log
        from .engine.quiet import cpp_log_lines_to_log

        self._quiet = contextlib.ExitStack()
        self._quiet.enter_context(cpp_log_lines_to_log())
        try:
            self._configure(model, engine_kwargs, actors, cpus_per_actor, gpus_per_actor)
        except Exception:
            self.close()
            raise

    def _configure(self, model, engine_kwargs, actors, cpus_per_actor, gpus_per_actor) -> None:
        ray = self.ray
        from ray.data import DataContext

        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False  # the driver shows its own
        ctx.print_on_execution_start = False
        ctx.issue_detectors_config.detectors = []  # its advice (memory= per actor) is for big pipelines
        for name in ("ray", "ray.data"):  # Ray Data logs each execution at INFO on the driver
            logging.getLogger(name).setLevel(logging.ERROR)
        total = ray.cluster_resources()
        gpus = gpus_per_actor if gpus_per_actor is not None else (1 if total.get("GPU", 0) >= 1 else 0)
        cpus = cpus_per_actor if cpus_per_actor is not None else (1 if gpus else min(os.cpu_count() or 1, total.get("CPU", 1)))
        if cpus <= 0 or gpus < 0:
            raise InputError(f"--cpus-per-actor must be > 0 and --gpus-per-actor >= 0, got {cpus} and {gpus}")
        fit = int(min(total.get("CPU", 0) // cpus, total.get("GPU", 0) // gpus if gpus else float("inf")))
        self.actors = actors if actors is not None else max(1, fit)
        if self.actors < 1:
            raise InputError(f"--actors must be >= 1, got {self.actors}")
        if self.actors > fit:
            raise InputError(f"{self.actors} actors of {cpus:g} CPUs{f' + {gpus:g} GPUs' if gpus else ''} do not fit in the "
                             f"cluster ({total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs): lower --actors or the per-actor share")
        self.cpus, self.gpus = cpus, gpus
        self.model, self.engine_kwargs = model, engine_kwargs or {}

    def fill_blocks(self, template: Template, blocks: list[range], seed: int, fill, stats) -> Iterator[dict]:
        """Records of `blocks` from the actors as they finish (any order); stats merged into `stats`;
        `fill.on_field` counted per record on the driver; tries are compiled on each actor instead."""
        on_field, count_from = fill.on_field, fill.count_from
        if on_field:
            for f in template.fields:
                on_field(f.name, 0)  # the fields start (progress bars time their rate from here)
        seen: set[str] = set()
        try:
            for batch in self._batches(template, blocks, seed, fill.shippable()):
                for records, delta, settings in zip(batch["records"], batch["stats"], batch["settings"]):
                    stats.add(json.loads(delta))
                    if settings not in seen:
                        self._settings(settings, seen)
                    for rec in json.loads(records):
                        if on_field and rec["index"] >= count_from:
                            for f in template.fields:
                                on_field(f.name, 1)
                        yield rec
        except (InputError, EngineError):
            raise
        except Exception as e:  # a Ray error that its retries did not mend: one line, the cause's last line
            cause = str(e).strip().splitlines()[-1] if str(e).strip() else e.__class__.__name__
            raise EngineError(f"the Ray run failed: {cause}") from None

    def _batches(self, template: Template, blocks: list[range], seed: int, fill) -> Iterator[dict]:
        """The actors' output chunks (BlockFiller), as Ray Data streams them to the driver."""
        import ray.data

        # each chunk its own output block, sent to the driver at once (Ray Data otherwise gathers a
        # task's output into blocks of up to 128 MiB: a shard's records would arrive when it ends)
        ctx = ray.data.DataContext.get_current()
        shaping, ctx.target_max_block_size = ctx.target_max_block_size, 1  # a dataset copies the context
        try:
            rows = [{"start": b.start, "stop": b.stop} for b in blocks]
            ds = ray.data.from_items(rows, override_num_blocks=len(rows))
            # one block per call (a shard), one engine per actor, records streamed back as they finish
            out = ds.map_batches(BlockFiller, batch_size=1, compute=ray.data.ActorPoolStrategy(size=self.actors),
                                 num_cpus=self.cpus, num_gpus=self.gpus or None, batch_format="numpy",
                                 fn_constructor_kwargs=dict(template=ship(template), model=self.model,
                                                            engine_kwargs=self.engine_kwargs, seed=seed, fill=fill,
                                                            env=self.env))
        finally:
            ctx.target_max_block_size = shaping
        yield from out.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0)

    def _settings(self, settings: str, seen: set) -> None:
        s = json.loads(settings)
        if seen:
            raise EngineError(f"Ray actors run different engines ({sorted(seen)} vs {settings}): their records would "
                              "not match a local run; give every actor the same hardware and SYNTHGEN_DTYPE")
        seen.add(settings)
        self.dtype, self.max_num_seqs = s["dtype"], s["window"]

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
        self._quiet.close()
