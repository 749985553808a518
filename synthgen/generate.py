"""Fill a template's records field by field on an engine, stream them to JSONL, resume after a crash.

Records are pipelined: each walks its fields in order and its next request goes to the engine as
soon as the previous one is done, so the engine's batch stays full (no barrier per field or per
retry). Choice and date fields decode inside their list's token trie by default (`decode:
constrained`: valid by construction, see engine/trie_processor.py); for free fields an invalid
answer is retried at once with a new seed, then stored as null with the reason. A finished record
is appended to the JSONL as soon as every record before it is done (fsync every 2 s), so `kill -9`
loses only the records in flight.

Same seed => same file. Every request's seed comes from (run seed, record index, field, attempt).
On CPU the float results also depend on the batch a request ran in, so the batches must not depend
on timing: records go in blocks (default 1024); a block starts with an empty prefix cache, admits
its records in index order and ends when all are done, and with vLLM's engine core in this process
its batches are a function of the calls alone. `--resume` recomputes the interrupted block from its
start, writes the records that are missing and checks the others against the file.

Run identity (template digest, seed, model, adapters, decode modes) and the settings that change
records (retries, block size, dtype, records in flight) live in a sidecar `OUT.meta.json`; a resume
with others is refused.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

from .engine.base import BlockEngine, Engine, Request, derive_seed, stepper
from .errors import InputError
from .output import OrderedWriter, Plan, RunFiles, read_jsonl, resize
from .template import Template

__all__ = ["Fill", "Stats", "Summary", "check_settings", "compile_tries", "fill_records", "iter_records", "local_fill_blocks",
           "run", "run_settings"]


@dataclass
class Stats:
    """What filling records cost, counted per request (iter_records); Ray actors send deltas of it."""

    requests: int = 0
    tokens: int = 0  # decoded
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0  # prefix-cache hits: prompt tokens not computed
    attempted: dict[str, int] = field(default_factory=dict)  # field -> records that asked it (first attempts)
    first_valid: dict[str, int] = field(default_factory=dict)  # field -> ... valid at the first attempt
    rejected: dict[str, int] = field(default_factory=dict)  # "field: why" -> answers rejected (retried or null)

    def count(self, out, field_name: str, attempt: int, valid: bool, reason: str | None = None) -> None:
        if reason:
            key = f"{field_name}: {reason_kind(reason)}"
            self.rejected[key] = self.rejected.get(key, 0) + 1
        self.requests += 1
        self.tokens += out.n_tokens
        self.prompt_tokens += out.prompt_tokens
        self.cached_prompt_tokens += out.cached_tokens
        if attempt == 0:
            self.attempted[field_name] = self.attempted.get(field_name, 0) + 1
            self.first_valid[field_name] = self.first_valid.get(field_name, 0) + valid

    def add(self, delta: dict) -> None:
        """Add `delta` (minus's output, e.g. from an actor)."""
        for k, v in delta.items():
            if isinstance(v, dict):
                mine = getattr(self, k)
                for f, c in v.items():
                    mine[f] = mine.get(f, 0) + c
            else:
                setattr(self, k, getattr(self, k) + v)

    def minus(self, before: "Stats") -> dict:
        """self - before, as a JSON-ready dict (zero entries of the per-field counts left out)."""
        out: dict = {}
        for k, v in asdict(self).items():
            if isinstance(v, dict):
                theirs = getattr(before, k)
                out[k] = {f: c - theirs.get(f, 0) for f, c in v.items() if c != theirs.get(f, 0)}
            else:
                out[k] = v - getattr(before, k)
        return out

    @property
    def computed_prompt_tokens(self) -> int:
        return self.prompt_tokens - self.cached_prompt_tokens


def reason_kind(reason: str) -> str:
    """What kind of rejection a parse reason is: a text check's name ("pronouns: 'his' in a female
    record" -> "pronouns"), else the reason without its detail ("matches reject pattern '...'")."""
    head = reason.split(":", 1)[0]
    return head.split(" '", 1)[0].split(' "', 1)[0]


@dataclass
class Summary:
    records: int  # complete records in the output
    new_records: int  # made by this run
    seconds: float
    valid: dict[str, float]  # field -> share of all records in the output with a valid value
    first_try_valid: dict[str, float]  # field -> share valid at the first attempt, of this run's records that asked it
    requests: int
    tokens: int  # decoded
    peak_rss_gib: float
    out: str
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0  # prefix-cache hits: prompt tokens not computed
    engine_start_seconds: float | None = None  # set by the caller that started the engine
    recomputed: int = 0  # resume: records of the interrupted block computed again (not written)
    recomputed_mismatch: int = 0  # ... that differ from the copy on disk (0 unless determinism broke)
    skipped: dict[str, int] | None = None  # field -> records not asked: a field its prompt uses ended null
    utilisation: float | None = None  # time of the computed tokens at the machine's ceiling / seconds (roofline.py)
    duplicates: int = 0  # records made twice (a Ray shard retried after a lost worker), written once
    rejected: dict[str, int] | None = None  # "field: why" -> answers rejected (each retried, or the field left null)

    @property
    def computed_tokens(self) -> int:
        """Prompt tokens computed (not cached) + decoded tokens: what the matmuls paid for."""
        return self.prompt_tokens - self.cached_prompt_tokens + self.tokens

    @property
    def records_per_s(self) -> float:
        return self.new_records / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return asdict(self) | {"records_per_s": round(self.records_per_s, 3), "tokens_per_s": round(self.tokens_per_s, 2),
                               "computed_tokens": self.computed_tokens,
                               "computed_tokens_per_s": round(self.computed_tokens / self.seconds, 2) if self.seconds else 0.0}


def run_settings(template: Template, retries: int | None, block_size: int, dtype: str | None,
                 window: int | None = None) -> dict:
    """The run options that change records, beside the identity: each free field's retries, the
    block size and the records in flight (they decide the batches, and a request's float results
    depend on its batch) and the engine's dtype (None: not known here, e.g. a remote server)."""
    return {"retries": {f.name: template.retries_for(f) if retries is None else retries
                        for f in template.fields if f.decode == "free"},
            "block_size": block_size, "dtype": dtype, "window": window}


def check_settings(plan: Plan, settings: dict) -> None:
    """--resume with options that would make different records: a one-line error."""
    theirs = plan.previous or {}
    flags = {"retries": "--retries", "block_size": "--block-size", "dtype": "dtype (SYNTHGEN_DTYPE)",
             "window": "number of records in flight (the engine's max_num_seqs)"}
    for key, flag in flags.items():
        if key in theirs and theirs[key] is not None and settings[key] is not None and theirs[key] != settings[key]:
            raise InputError(f"cannot resume {str(plan.out)!r}: it was made with a different {flag} "
                             f"({theirs[key]!r}, this run: {settings[key]!r}); its records would not match: "
                             "use the same settings, another --out, or --overwrite")


def compile_tries(template: Template, tokenizer) -> dict[str, str | dict[str, str]]:
    """Decode-trie files of the constrained fields (cached under SYNTHGEN_HOME/tries by digest):
    field -> file, or field -> {condition key: file} for a list that depends on earlier fields.

    Runs before any engine work: an item longer than its field's max_tokens is a one-line error."""
    from .models import synthgen_home
    from .targets import decode_trie_file, encode_targets

    def one(f, items):
        path, trie = decode_trie_file(tokenizer, items, synthgen_home() / "tries")
        if trie.max_len > f.max_tokens:
            lens = [len(ids) for ids in encode_targets(tokenizer, items)]
            longest = max(range(len(items)), key=lens.__getitem__)
            raise InputError(f"field {f.name!r}: the item {items[longest]!r} is {lens[longest]} tokens with "
                             f"end-of-turn, more than max_tokens {f.max_tokens}: raise max_tokens to {lens[longest]}")
        return path

    tries: dict = {}
    for f in template.fields:
        if f.decode != "constrained":
            continue
        if f.given:
            tries[f.name] = {key: one(f, sorted(set(lookup.values()))) for key, lookup in f.lookups.items()}
        else:
            tries[f.name] = one(f, f.items())
    return tries


def trie_for(tries: dict, f, record: dict) -> str | None:
    """The decode-trie file for this field and record (its condition's list)."""
    t = tries.get(f.name)
    return t[f.condition(record)] if isinstance(t, dict) else t


class PeakRSS:
    """Peak resident memory of this process and its children (vLLM runs its engine in a child)."""

    def __init__(self, interval: float = 0.5):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def sample(self) -> None:
        try:
            import psutil

            me = psutil.Process()
            total = me.memory_info().rss
            for c in me.children(recursive=True):
                try:
                    total += c.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
        except Exception:  # psutil missing or a process vanished: memory is informational
            pass

    def _run(self, interval):
        while not self._stop.wait(interval):
            self.sample()

    def __enter__(self):
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()


FieldProgress = Callable[[str, int], None]  # (field name, records newly finished for it)


@dataclass(frozen=True)
class Fill:
    """How records are filled (besides which and with what seed): the options iter_records, the
    block fillers and `run` share.

    `tries` (compile_tries): field -> decode-trie file; those fields are sampled inside their list.
    `window`: records in flight (None: the engine's max_num_seqs, else DEFAULT_WINDOW).
    `fallback(index)` (benchmarks): values that later prompts use where an earlier field is invalid,
    so each field is judged on its own; the record still stores the invalid field as null.
    `on_field(field, k)`: k more records finished that field, counted only for records with index >=
    `count_from` (a resume recomputes a few records it does not write). `on_block(new records)`
    (`run`): a block was written."""

    use_adapters: bool = True
    retries: int | None = None  # None: each field's own
    tries: dict | None = None
    window: int | None = None
    fallback: Callable[[int], dict] | None = None
    on_field: FieldProgress | None = None
    on_block: Callable[[int], None] | None = None
    count_from: int = 0

    def shippable(self) -> "Fill":
        """What a worker on another process needs: no callbacks, tries compiled there."""
        return replace(self, tries=None, on_field=None, on_block=None)


def fill_records(template: Template, engine: Engine, indices: list[int], seed: int, fill: Fill | None = None, *,
                 stats: Stats | None = None, on_record: Callable[[dict], None] | None = None) -> list[dict]:
    """Records for `indices` in index order (iter_records); `on_record(record)` as each finishes."""
    records = []
    for rec in iter_records(template, engine, indices, seed, fill, stats):
        records.append(rec)
        if on_record:
            on_record(rec)
    return sorted(records, key=lambda r: r["index"])


def iter_records(template: Template, engine: Engine, indices: list[int], seed: int, fill: Fill | None = None,
                 stats: Stats | None = None) -> Iterator[dict]:
    """Records for `indices`, yielded as each finishes (any order), pipelined: each record walks its
    fields in order, and its next request goes to the engine as soon as the previous one is done (a
    retry at once, with the next attempt's seed), so the batch never waits for a field or a retry
    tail. At most `fill.window` records are in flight, admitted in index order. The engine's stream
    form (`submit`/`step`) is used; with an in-process engine the batches, and so the records,
    depend only on these calls, not on timing. `stats` collects the request and token counts."""
    pipe = _Pipeline(template, engine, indices, seed, fill or Fill(), stats if stats is not None else Stats())
    yield from pipe.records()


class _Pipeline:
    """iter_records' state: per record the field it is at and that field's attempt."""

    def __init__(self, template: Template, engine: Engine, indices: list[int], seed: int, fill: Fill, stats: Stats):
        self.template, self.fields, self.indices, self.fill, self.stats = template, template.fields, indices, fill, stats
        self.max_retries = [template.retries_for(f) if fill.retries is None else fill.retries for f in self.fields]
        self.eng = stepper(engine)
        self.tries = fill.tries or {}
        self.recs = [{"index": i, "seed": derive_seed(seed, i)} for i in indices]
        self.errors: list[dict] = [{} for _ in indices]
        self.attempts: list[dict] = [{} for _ in indices]
        self.given = [fill.fallback(i) for i in indices] if fill.fallback else None
        self.pos = [0] * len(indices)  # the field each record is at
        self.attempt = [0] * len(indices)  # attempt number at that field
        self.inflight: dict[int, int] = {}  # ticket -> record
        self.finished: list[dict] = []
        self.active = 0

    def records(self) -> Iterator[dict]:
        n, window = len(self.indices), self.fill.window or DEFAULT_WINDOW
        if self.fill.on_field:
            for f in self.fields:
                self.fill.on_field(f.name, 0)  # the fields start (progress bars time their rate from here)
        admitted = 0
        while admitted < n or self.active:
            while admitted < n and self.active < window:
                self.active += 1
                admitted += 1
                self.advance(admitted - 1)
            yield from self.flush()
            if self.inflight:
                for ticket, out in sorted(self.eng.step(), key=lambda t: t[0]):
                    self.receive(self.inflight.pop(ticket), out)
                yield from self.flush()

    def flush(self) -> list[dict]:
        done, self.finished = self.finished, []
        return done

    def context(self, k: int) -> dict:  # the values this record's prompts see
        rec = self.recs[k]
        return rec if self.given is None else {**self.given[k], **{n: v for n, v in rec.items() if v is not None}}

    def counted(self, k: int, name: str) -> None:
        if self.fill.on_field and self.indices[k] >= self.fill.count_from:
            self.fill.on_field(name, 1)

    def advance(self, k: int) -> None:
        """Submit record k's next request, or finish the record."""
        while self.pos[k] < len(self.fields):
            f = self.fields[self.pos[k]]
            ctx = self.context(k)
            missing = [d for d in f.requires if ctx.get(d) is None]
            if not missing:
                req = Request(prompt=f.render(ctx), max_tokens=f.max_tokens, temperature=f.temperature, top_p=f.top_p,
                              min_p=f.min_p, prefill=f.opening(ctx), seed=derive_seed(self.recs[k]["seed"], f.name, self.attempt[k]),
                              adapter=f.adapter_path if self.fill.use_adapters else None, system=self.template.system,
                              trie=trie_for(self.tries, f, ctx))
                self.inflight[self.eng.submit(req)] = k
                return
            self.recs[k][f.name] = None
            self.errors[k][f.name] = f"needs {missing[0]}, which is invalid"
            self.attempts[k][f.name] = 0
            self.counted(k, f.name)
            self.pos[k] += 1
        rec = self.recs[k]
        rec["errors"] = {f.name: self.errors[k].get(f.name) for f in self.fields}
        rec["attempts"] = {f.name: self.attempts[k].get(f.name, 0) for f in self.fields}
        self.active -= 1
        self.finished.append(rec)

    def receive(self, k: int, o) -> None:
        """Record k's answer: parse it, retry or store it, and move on."""
        f, attempt = self.fields[self.pos[k]], self.attempt[k]
        value, reason = f.parse(o.text, o.finish_reason, self.context(k))
        self.stats.count(o, f.name, attempt, value is not None, reason)
        self.attempts[k][f.name] = attempt + 1
        if value is None and attempt < self.max_retries[self.pos[k]]:
            self.attempt[k] += 1
        else:
            self.recs[k][f.name] = value
            self.errors[k][f.name] = None if value is not None else f"{reason}: {o.text.strip()[:120]!r}"
            self.counted(k, f.name)
            self.pos[k] += 1
            self.attempt[k] = 0
        self.advance(k)


def run(template: Template, engine: Engine, plan: Plan, n: int, seed: int, fill: Fill | None = None, *,
        block_size: int = 1024, engine_start_seconds: float | None = None) -> Summary:
    """Generate records plan.start..n-1 into plan.stream (append-only, output.RunFiles), then convert if needed.

    `fill.tries`: from compile_tries (the CLI compiles them before the engine starts); else compiled
    here with the engine's tokenizer."""
    fill = fill or Fill()
    if block_size < 1:
        raise InputError(f"block size must be >= 1, got {block_size}")
    unbuilt = [f.name for f in template.fields if fill.use_adapters and f.adapter == "auto" and not f.adapter_path]
    if unbuilt:
        raise InputError(f"field(s) {', '.join(unbuilt)} have adapter: auto: build them first with "
                         "synthgen.auto.ensure_auto_adapters(template, model_dir)")
    # an engine with its own fill_blocks (distributed.RayPool) compiles tries and knows its window and
    # dtype only on its workers: they reach `settings` with its first records, checked before any is written
    blocks_engine = isinstance(engine, BlockEngine)
    fill_blocks = engine.fill_blocks if blocks_engine else partial(local_fill_blocks, engine)
    if fill.tries is None and not blocks_engine and "constrained" in template.decodes().values():
        fill = replace(fill, tries=compile_tries(template, engine.tokenizer))
    resize(plan, n, block_size)  # a resume with another --n (done already where the runner prepared the run)
    fill = replace(fill, window=fill.window or engine.max_num_seqs or (None if blocks_engine else DEFAULT_WINDOW),
                   count_from=plan.start)
    settings = run_settings(template, fill.retries, block_size, engine.dtype, fill.window)
    check_settings(plan, settings)
    t0 = time.perf_counter()
    meta = {"identity": plan.identity | {"model": plan.identity.get("model") or engine.model}, "format": plan.fmt,
            "template": template.describe(), "features": template.features(), "settings": settings, "retries": fill.retries,
            "n": n, "complete": False}
    files = RunFiles(plan, meta, block_size)
    stats = Stats()
    with PeakRSS() as rss:
        if plan.start < n:
            # a resume recomputes its block from the start (same batches as the uninterrupted run)
            blocks = [range(b, min(n, b + block_size)) for b in range(plan.start // block_size * block_size, n, block_size)]
            try:
                for rec in fill_blocks(template, blocks, seed, fill, stats):
                    if settings["dtype"] is None and engine.dtype is not None:
                        settings.update(dtype=engine.dtype, window=engine.max_num_seqs)  # known from its first records
                        check_settings(plan, settings)
                        files.save_meta()
                    before = files.writer.next
                    files.add(rec)
                    if fill.on_block and files.writer.next // block_size > before // block_size:
                        fill.on_block(files.writer.new)
            finally:
                files.close()
        valid, skipped = _valid_shares(plan.stream, template) if plan.stream.exists() else ({}, {})
        files.convert()
    summary = _summary(template, engine, stats, files.writer, time.perf_counter() - t0,
                       records=max(n, plan.start), valid=valid, skipped=skipped, peak_rss_gib=rss.peak / 2**30,
                       out=str(plan.out), engine_start_seconds=engine_start_seconds)
    files.finish(summary.to_dict())
    return summary


def _summary(template: Template, engine: Engine, stats: Stats, writer: OrderedWriter, seconds: float, **known) -> Summary:
    """The run's Summary from its counters, with utilisation against the ceiling of the engine's dtype."""
    from .roofline import load_ceiling, seconds_at_ceiling

    first = {f.name: stats.first_valid.get(f.name, 0) / stats.attempted[f.name]
             for f in template.fields if stats.attempted.get(f.name)}
    summary = Summary(new_records=writer.new, seconds=seconds, first_try_valid=first, requests=stats.requests,
                      tokens=stats.tokens, prompt_tokens=stats.prompt_tokens,
                      cached_prompt_tokens=stats.cached_prompt_tokens, recomputed=writer.recomputed,
                      rejected=dict(sorted(stats.rejected.items(), key=lambda kv: -kv[1])) or None,
                      recomputed_mismatch=writer.mismatch, duplicates=writer.duplicates, **known)
    ceiling = load_ceiling(engine.model, engine.dtype)
    if ceiling is not None and seconds > 0:
        summary.utilisation = round(seconds_at_ceiling(ceiling, summary.prompt_tokens - summary.cached_prompt_tokens,
                                                       summary.tokens) / seconds, 4)
    return summary


DEFAULT_WINDOW = 256  # records in flight when the engine does not say (vLLM: its max_num_seqs)


def local_fill_blocks(engine: Engine, template: Template, blocks: list[range], seed: int, fill: Fill | None = None,
                      stats: Stats | None = None) -> Iterator[dict]:
    """Records of each block in turn on `engine`, yielded as they finish (iter_records).

    The engine's prefix cache is emptied first, so a block's batches (and float results) are the
    same whether the run started there (resume), earlier, or on another machine (distributed.py)."""
    for block in blocks:
        engine.reset_prefix_cache()
        yield from iter_records(template, engine, list(block), seed, fill, stats)


def _valid_shares(stream: Path, template: Template) -> tuple[dict[str, float], dict[str, int]]:
    """Per field: the share of all records with a valid value, and how many records never asked it
    because a field its prompt uses ended null ("needs X, which is invalid")."""
    rows = read_jsonl(stream)
    if not rows:
        return {}, {}
    valid = {f.name: sum(r.get(f.name) is not None for r in rows) / len(rows) for f in template.fields}
    skipped = {f.name: sum(str((r.get("errors") or {}).get(f.name) or "").startswith("needs ") for r in rows)
               for f in template.fields}
    return valid, skipped
