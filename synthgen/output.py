"""Where a run writes: the plan (output, stream, metadata; made before any engine starts), the
run's files from first write to last (RunFiles: safe overwrite, resume, the ordered writer), the
append-only JSONL stream and its resume scan, atomic metadata writes, and the typed conversion to
Parquet or a Hugging Face `datasets` directory.

Every output of a template has one schema (`Template.features()`, kept in `OUT.meta.json`):
Parquet and HF outputs are written with it, and `features(OUT)` gives it to
`datasets.load_dataset("json", ..., features=...)`, so outputs of the same template always load
together, even when a field is null in every record of one of them.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .atomic import write_json_atomic
from .errors import InputError
from .template import Template

FORMATS = ("jsonl", "parquet", "hf")


@dataclass
class Plan:
    """Where the run writes and where it starts; made before any engine starts (fast errors)."""

    out: Path
    fmt: str
    stream: Path  # the append-only JSONL
    meta_path: Path
    identity: dict
    start: int = 0
    valid_bytes: int = 0  # resume: the stream's complete-line prefix
    overwrite: bool = False
    previous: dict | None = None  # resume: the existing run's settings (run_settings)
    previous_n: int | None = None  # resume: the --n the existing run was made with
    rewrite_from: int | None = None  # resume with a larger --n: the stream is cut here at the first new record (resize)


def run_identity(template: Template, seed: int, model: str | None, use_adapters: bool) -> dict:
    return {"template": template.name, "template_digest": template.digest, "seed": seed, "model": model,
            "adapters": {f.name: (f.adapter if use_adapters else None) for f in template.fields},
            "decode": template.decodes()}


EXISTING = ("refuse", "resume", "overwrite")  # what a run does with an output that exists


def plan_run(template: Template, out: str | Path, n: int, seed: int, *, fmt: str = "jsonl", model: str | None = None,
             use_adapters: bool = True, existing: str = "refuse") -> Plan:
    """`existing`: refuse an output that exists, resume it (--resume) or replace it (--overwrite)."""
    if not isinstance(n, int) or n < 1:
        raise InputError(f"--n must be >= 1, got {n}")
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    if existing not in EXISTING:
        raise InputError(f"existing={existing!r}: use one of {', '.join(EXISTING)}")
    resume, overwrite = existing == "resume", existing == "overwrite"
    out = Path(out)
    stream = out if fmt == "jsonl" else Path(f"{out}.stream.jsonl")
    meta_path = Path(f"{out}.meta.json")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise InputError(f"cannot write {str(out)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write {str(out)!r}: directory {str(parent)!r} is not writable")
    recover(out)  # a kill while an HF directory was swapped: the old one back in place
    if out.is_dir() and fmt != "hf":
        raise InputError(f"{str(out)!r} is a directory: give a file path")
    _check_writable(stream)
    plan = Plan(out=out, fmt=fmt, stream=stream, meta_path=meta_path,
                identity=run_identity(template, seed, model, use_adapters), overwrite=overwrite)
    exists = [p for p in (out, stream, meta_path) if p.exists()]
    if not resume:
        if exists and not overwrite:
            raise InputError(f"{str(exists[0])!r} exists: add --resume to continue that run or --overwrite to replace it")
        return plan
    if not exists:
        return plan  # --resume on a fresh path: start from 0 (idempotent re-runs)
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        raise InputError(f"cannot resume {str(out)!r}: its run metadata {str(meta_path)!r} is missing or corrupt; "
                         "use --overwrite to start again") from None
    if meta.get("format") != fmt:
        raise InputError(f"cannot resume {str(out)!r}: it was written as --format {meta.get('format')}, not {fmt}")
    theirs = meta.get("identity", {})
    for key in ("template", "template_digest", "seed", "adapters", "decode"):
        if theirs.get(key) != plan.identity[key]:
            what = {"template_digest": "template file", "decode": "decode mode (--decode)"}.get(key, key)
            raise InputError(f"cannot resume {str(out)!r}: it was made with a different {what} "
                             f"({theirs.get(key)!r}, this run: {plan.identity[key]!r}); "
                             "use the same settings, another --out, or --overwrite")
    if model is not None and theirs.get("model") not in (None, model):
        raise InputError(f"cannot resume {str(out)!r}: it was made with model {theirs.get('model')!r}, not {model!r}")
    plan.previous, plan.previous_n = meta.get("settings"), meta.get("n")
    if fmt != "jsonl" and out.exists() and meta.get("complete"):
        # already converted: read records back from the stream if it is still there, else nothing to do
        if not stream.exists():
            plan.start = int(meta.get("records", 0))
            return plan
    plan.start, plan.valid_bytes = _scan(stream)
    return plan


def resize(plan: Plan, n: int, block_size: int) -> str | None:
    """A resume with another --n than its run's, made to give the file a fresh run of n gives, or refused.

    A block's last records are computed beside fewer neighbours when the run ends inside the block
    (the batches thin out), so a run of 200 records and one of 300 differ near record 200 when a block
    spans it. Extending (a larger n): the old run's last block, where it ended early, is truncated and
    computed again as a run of n computes it (at most one block); the notice says so. A smaller n
    is refused unless it ends on a block boundary the file has not passed. Returns the notice, or None."""
    old = plan.previous_n
    if not plan.start or old is None or n == old:
        return None
    last = old // block_size * block_size  # where the old run's last block starts
    if n < old:
        if n % block_size or plan.start > n:
            raise InputError(f"cannot resume {str(plan.out)!r} with --n {n:,}: it is a {old:,}-record run with "
                             f"{plan.start:,} written, and a smaller --n gives other records near its end (a block's "
                             f"last records are computed beside the records after them); resume with --n {old:,}, "
                             "or start again with --overwrite")
        return None
    if old % block_size == 0 or plan.start <= last:
        return None  # every block written so far is the same in a run of n
    written = plan.start
    plan.start, plan.rewrite_from = last, _offset(plan.stream, last)  # cut when the first new record is written
    return (f"extending a {old:,}-record run to {n:,}: records {last:,}-{written - 1:,} (its last block, which ended "
            f"early at record {old:,}) are computed again as a {n:,}-record run computes them and written over, so "
            f"the file is the one a fresh --n {n:,} run writes")


def _offset(stream: Path, index: int) -> int:
    """Byte offset where record `index` starts in a stream of records 0.. in order."""
    pos = 0
    with open(stream, "rb") as fh:
        for _ in range(index):
            pos += len(fh.readline())
    return pos


def _check_writable(path: Path) -> None:
    """Really open it (a directory's permission bits do not tell: /proc, a read-only mount), before
    any engine starts; a file made only to try is removed."""
    try:
        if path.exists():
            with open(path, "ab"):
                pass
        else:
            with open(path, "xb"):
                pass
            path.unlink()
    except OSError as e:
        raise InputError(f"cannot write {str(path)!r}: {e.strerror or e}") from None


def _scan(stream: Path) -> tuple[int, int]:
    """Complete records in an append-only JSONL and the byte length of that prefix (a torn last
    line from a kill is dropped). Records must be 0..k-1 in order."""
    if not stream.exists():
        return 0, 0
    data = stream.read_bytes()
    end = data.rfind(b"\n") + 1
    count = 0
    pos = 0
    while pos < end:
        nl = data.index(b"\n", pos)
        line = data[pos:nl]
        try:
            rec = json.loads(line)
            ok = isinstance(rec, dict) and rec.get("index") == count
        except ValueError:
            ok = False
        if not ok:
            raise InputError(f"cannot resume {str(stream)!r}: line {count + 1} is not record {count} "
                             "(the file was edited?); use --overwrite to start again")
        count += 1
        pos = nl + 1
    return count, end


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def recover(path: Path) -> None:
    """After a kill inside `replace_files`: the old copy renamed aside goes back where the new one
    never arrived; aside copies beside a path that is in place are deleted."""
    aside = sorted(path.parent.glob(glob.escape(path.name) + ".old-*")) if path.parent.is_dir() else []
    if not aside:
        return
    if not (path.exists() or path.is_symlink()):
        os.rename(aside.pop(), path)
    for q in aside:
        _remove(q)


def replace_files(paths: list[Path], write_new: Callable[[], None]) -> None:
    """Replace files or directories without a moment where neither old nor new exists: each existing
    path is renamed aside (a unique name beside it), `write_new()` writes the new ones, then the old
    ones are deleted. If `write_new` fails, what it wrote is removed and the old ones go back."""
    tag = f".old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    aside = []
    for p in paths:
        if p.exists() or p.is_symlink():
            q = p.with_name(p.name + tag)
            os.rename(p, q)
            aside.append((p, q))
    try:
        write_new()
    except BaseException:
        for p, q in aside:
            _remove(p)
            os.rename(q, p)
        raise
    for _, q in aside:
        _remove(q)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def arrow_schema(features: dict):
    """Template.features() -> a pyarrow schema (nested dicts are structs)."""
    import pyarrow as pa

    def typ(t):
        return pa.struct([(k, typ(v)) for k, v in t.items()]) if isinstance(t, dict) else {"int64": pa.int64(), "string": pa.string()}[t]

    return pa.schema([(k, typ(v)) for k, v in features.items()])


def features(out: str | Path):
    """The `datasets.Features` of a synthgen output (from its OUT.meta.json), for
    `load_dataset("json", data_files=[...], features=features(OUT))`."""
    import datasets

    meta_path = Path(f"{out}.meta.json")
    try:
        spec = json.loads(meta_path.read_text())["features"]
    except (OSError, ValueError, KeyError):
        raise InputError(f"{str(meta_path)!r} is missing or has no features: was {str(out)!r} made by synthgen?") from None

    def typ(t):
        return {k: typ(v) for k, v in t.items()} if isinstance(t, dict) else datasets.Value(t)

    return datasets.Features({k: typ(v) for k, v in spec.items()})


def convert(plan: Plan, features: dict) -> None:
    """JSONL stream -> Parquet file or HF datasets directory with the template's schema, atomically (temp + rename)."""
    import pyarrow as pa

    rows = read_jsonl(plan.stream)
    table = pa.Table.from_pylist(rows, schema=arrow_schema(features))
    tmp = plan.out.with_name(plan.out.name + ".tmp")
    if tmp.is_dir():
        shutil.rmtree(tmp)
    if plan.fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, tmp)
    else:
        try:
            import datasets
        except ImportError:
            raise InputError("--format hf needs the `datasets` package: pip install datasets") from None
        datasets.Dataset(table).save_to_disk(str(tmp))
    if plan.out.is_dir():  # an old HF directory is renamed aside, and deleted once the new one is in place
        replace_files([plan.out], lambda: os.rename(tmp, plan.out))
    else:
        os.replace(tmp, plan.out)
    plan.stream.unlink()


FSYNC_SECONDS = 2.0  # finished records reach the disk at once (write + flush), and are fsynced at least this often


class RunFiles:
    """One run's files from its first write to its last: the metadata, the append-only stream and
    the conversion. Nothing is written before the run has its first record: a fresh run that fails
    before that leaves no file, and with `--overwrite` the old stream and metadata stay
    byte-identical (a failed, interrupted or killed run before that leaves them as they were); a
    Parquet or HF output stays until the conversion replaces it. A resume first drops the torn line
    a kill left behind; the records of its recomputed block that are already on disk
    are compared, not written (`OrderedWriter`); its metadata (its --n, its settings) replaces the
    old one with its first new record, so a resume that fails before that leaves the metadata as it was."""

    def __init__(self, plan: Plan, meta: dict, block_size: int):
        self.plan, self.meta = plan, meta
        # a run from record 0 (fresh, or --overwrite) writes nothing until its first record: one that fails or is
        # stopped before it leaves no file behind (and an overwritten run's files as they were)
        self.pending = plan.start == 0
        if plan.start and plan.stream.exists() and plan.stream.stat().st_size != plan.valid_bytes:
            with open(plan.stream, "r+b") as fh:
                fh.truncate(plan.valid_bytes)
        block0 = plan.start // block_size * block_size
        on_disk = {r["index"]: r for r in read_jsonl(plan.stream)[block0:]} if plan.start > block0 else {}
        self.writer = OrderedWriter(self._open, plan.start, on_disk)

    def _open(self):
        if self.pending:
            replace_files([self.plan.stream, self.plan.meta_path], lambda: write_json_atomic(self.plan.meta_path, self.meta))
            self.plan.stream.touch()
        else:  # a resume: its metadata (its --n, settings) replaces the old one with its first new record
            write_json_atomic(self.plan.meta_path, self.meta)
            if self.plan.rewrite_from is not None:  # an extended run's last block, computed again: written over
                with open(self.plan.stream, "r+b") as fh:
                    fh.truncate(self.plan.rewrite_from)
        return open(self.plan.stream, "ab")

    def add(self, rec: dict) -> None:
        self.writer.add(rec)

    def save_meta(self) -> None:
        """The metadata changed before the run ended (settings learnt from an engine's first records)."""
        if self.writer.fh is not None:  # else the first record writes it (a run that fails before leaves the old one)
            write_json_atomic(self.plan.meta_path, self.meta)

    def close(self) -> None:
        self.writer.close()

    def convert(self) -> None:
        """The finished stream to Parquet or HF, where the run asked for it."""
        if self.plan.fmt != "jsonl" and self.plan.stream.exists():
            convert(self.plan, self.meta["features"])

    def finish(self, summary: dict) -> None:
        self.meta.update(complete=True, records=summary["records"], summary=summary)
        write_json_atomic(self.plan.meta_path, self.meta)


class OrderedWriter:
    """Appends records to `fh` in index order as they arrive in any order, from `start` on: each as
    soon as every record before it is written (write + flush: survives kill -9; fsync at least every
    FSYNC_SECONDS). Records before `start` (a resume's recomputed block) are compared with `on_disk`,
    not written; a record that arrives twice (a retried shard) is written once."""

    def __init__(self, fh, start: int, on_disk: dict[int, dict]):
        """`fh`: an open binary file, or a function that opens it when the first record is written."""
        self.opener = fh if callable(fh) else None
        self.fh = None if callable(fh) else fh
        self.start, self.on_disk, self.next = start, on_disk, start
        self.ready: dict[int, bytes] = {}
        self.new = self.recomputed = self.mismatch = self.duplicates = 0
        self.last_sync = time.monotonic()

    def add(self, rec: dict) -> None:
        i = rec["index"]
        if i < self.start:  # on disk already (resume): the recomputation should agree
            self.recomputed += 1
            self.mismatch += self.on_disk.get(i) != json.loads(json.dumps(rec, ensure_ascii=False))
            return
        if i < self.next or i in self.ready:
            self.duplicates += 1
            return
        self.ready[i] = json.dumps(rec, ensure_ascii=False).encode() + b"\n"
        lines = []
        while self.next in self.ready:
            lines.append(self.ready.pop(self.next))
            self.next += 1
        if lines:
            if self.fh is None:
                self.fh = self.opener()
            self.fh.write(b"".join(lines))
            self.fh.flush()  # in the OS now: survives kill -9
            self.new += len(lines)
            if time.monotonic() - self.last_sync >= FSYNC_SECONDS:
                os.fsync(self.fh.fileno())
                self.last_sync = time.monotonic()

    def close(self) -> None:
        if self.fh is not None:
            os.fsync(self.fh.fileno())
            if self.opener:
                self.fh.close()
