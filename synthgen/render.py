"""What the CLI shows: rich tables, progress bars and summaries (the library returns data, this draws it).

Off a terminal (a pipe, a CI log) tables get a wide fixed width instead of rich's 80 columns."""

from __future__ import annotations

import math
import sys
import time


def terminal(stderr: bool = False):
    """A rich console; when the stream is not a terminal (a pipe, a CI log) tables get a wide fixed
    width instead of rich's 80 columns, so no column is cut ("KL→tar…")."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self):  # `synthgen report X | head`: the reader has what it wanted (rich: exit 1)
            raise BrokenPipeError  # the CLI ends quietly with exit 0 (errors.OneLineErrors)

    stream = sys.stderr if stderr else sys.stdout
    return _Console(stderr=stderr, width=None if stream.isatty() else 200)


def progress(total: int, label: str):
    """A rich progress bar on stderr; returns (context manager, callback)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=terminal(stderr=True), transient=True)
    task = bar.add_task(label, total=total)
    return bar, lambda k: bar.advance(task, k)


def render_sample(result, top: int) -> None:
    from rich.table import Table

    table = Table(title=f"{result.n} answers to: {result.prompt!r}")
    table.add_column("answer")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    table.add_column("ended", justify="center")
    table.add_column("")
    for answer, count in result.counts.most_common(top):
        share = count / result.n
        ended = "✓" if answer in result.finished else "[dim]cut[/]"
        table.add_row(repr(answer) if answer else "(empty)", str(count), f"{share:.1%}", ended,
                      "█" * max(1, round(40 * share)))
    if result.distinct > top:
        table.add_row(f"… {result.distinct - top} more", "", "", "")
    console = terminal()
    console.print(table)
    console.print(f"distinct answers: [bold]{result.distinct}[/] of {result.n}   "
                  f"top answer share: [bold]{result.top_share:.1%}[/]   entropy: {result.entropy_bits:.2f} bits")
    console.print(f"ended with end-of-turn: [bold]{result.n - result.unfinished}[/] of {result.n}, "
                  f"[bold]{result.distinct_finished}[/] distinct   (cut at --max-tokens: {result.unfinished}; "
                  "cut-off rambling is not diversity)")


def render_card(card, out):

    console = terminal()
    console.print(f"[bold]{out}[/]: {card.steps} steps in {card.train_seconds:.0f}s"
                  + (" (stopped early)" if card.stopped_early else ""))
    rows = [(x["name"], x["base"], x["adapter"]) for x in card.lists]
    audit_table(console, rows)
    distortion_table(console, rows)  # what generation samples: Q, the objective's own figures


def audit_table(console, rows):
    from rich.table import Table

    table = Table(title="exact audit (mean over prompts): base -> adapter")
    for col in ("list", "targets", "mass on valid", "entropy bits (max)", "KL(p*||p) bits", "E[distinct] in 500",
                "coverage in 500"):
        table.add_column(col, justify="right" if col != "list" else "left")
    for name, base, ad in rows:
        fmt = lambda key, f: f"{f(base[key])} -> {f(ad[key])}" if ad else f(base[key])  # noqa: E731
        table.add_row(name, str(base["n_targets"]), fmt("mass", lambda v: f"{v:.3f}"),
                      fmt("entropy_bits", lambda v: f"{v:.2f}") + f" ({base['max_entropy_bits']:.2f})",
                      fmt("kl_bits", lambda v: f"{v:.2f}"),
                      fmt("expected_distinct", lambda v: f"{v[500]:.0f}"),
                      fmt("expected_distinct", lambda v: f"{v[500] / base['n_targets']:.1%}"))
    console.print(table)


def distortion_table(console, rows):
    from rich.table import Table

    table = Table(title="constrained decoding: Q (masked to the list, renormalised per step) vs P(·|valid)")
    for col in ("list", "model", "mass on valid", "H(P|valid) bits", "H(Q) bits", "KL(Q‖P|valid) nats",
                "KL(Q‖p*) bits", "E[distinct] in 500 under Q"):
        table.add_column(col, justify="left" if col in ("list", "model") else "right")
    for name, base, ad in rows:
        for label, r in (("base", base), ("adapter", ad)):
            if r and r.get("q_expected_distinct"):
                table.add_row(name, label, f"{r['mass']:.3f}", f"{r['entropy_bits']:.2f}", f"{r['q_entropy_bits']:.2f}",
                              f"{r['kl_q_valid_nats']:.4f}", f"{r['kl_q_target_bits']:.2f}",
                              f"{r['q_expected_distinct'][500]:.0f}")
    console.print(table)


def render_summary(s, template):
    from rich.table import Table

    console = terminal()
    console.print(f"{s.out}: {s.records} records ({s.new_records} new)")
    table = Table()
    for col in ("field", "kind", "adapter", "valid", "valid at 1st try", "skipped"):
        table.add_column(col, justify="left" if col in ("field", "kind", "adapter") else "right")
    skipped = s.skipped or {}
    for f in template.fields:
        v, ft = s.valid.get(f.name), s.first_try_valid.get(f.name)
        table.add_row(f.name, f.kind, f.adapter if f.adapter_path else "-", "" if v is None else f"{v:.1%}",
                      "" if ft is None else f"{ft:.1%}", str(skipped.get(f.name, 0)))
    console.print(table)
    console.print("valid: of all records in the file; valid at 1st try: of this run's records that asked the field; "
                  "skipped: not asked, because a field its prompt uses ended null")
    if s.rejected:
        console.print("rejected answers (each retried with the next seed, or the field left null): "
                      + ", ".join(f"{k} {v}" for k, v in s.rejected.items()), markup=False, highlight=False)
    start = f" + engine start {s.engine_start_seconds:.0f}s" if s.engine_start_seconds is not None else ""
    per = max(s.new_records, 1)
    console.print(f"time {s.seconds:.1f}s{start}   {s.records_per_s:.2f} records/s   {s.requests} requests "
                  f"({s.requests / per:.1f} per record)   peak memory {s.peak_rss_gib:.2f} GiB")
    cached = f", {s.cached_prompt_tokens} of them prefix-cached" if s.prompt_tokens else ""
    console.print(f"tokens: {s.prompt_tokens} prompt{cached}, {s.tokens} decoded; computed "
                  f"{s.computed_tokens} ({s.computed_tokens / per:.0f} per record, "
                  f"{s.computed_tokens / s.seconds if s.seconds else 0:.0f}/s)")
    if s.utilisation is not None:
        console.print(f"utilisation: {s.utilisation:.0%} of this machine's ceiling for the model "
                      "(benchmarks/roofline.py)")
    else:
        console.print("utilisation: unknown: run benchmarks/roofline.py once to measure this machine's ceiling")
    if s.duplicates:
        console.print(f"ray: {s.duplicates} records arrived twice (a shard retried after a lost actor) and were written once")
    if s.recomputed:
        same = s.recomputed - s.recomputed_mismatch
        console.print(f"resume: recomputed {s.recomputed} records of the interrupted block, {same} identical to the file"
                      + ("" if not s.recomputed_mismatch else
                         f"; {s.recomputed_mismatch} DIFFER (same seed no longer gives the same records here)"))


def render_report(rep, other):
    from rich.table import Table

    from .report import compare_table
    from .report.metrics import COVERAGE_NOTE

    console = terminal()
    console.print(f"[bold]{rep['file']}[/]: {rep['records']} records"
                  + (f", [red]{rep['malformed_lines']} malformed line(s)[/] (first: line "
                     f"{rep['malformed_examples'][0]['line']}, {rep['malformed_examples'][0]['problem']})"
                     if rep["malformed_lines"] else "") + f"   ({rep['seconds']:.1f}s)")
    from .report.glance import lines
    from .report.joints import FLOOR_NOTE

    if first := lines(rep):
        console.print("[bold]at a glance[/] (each figure next to a perfect sampler of the target at this n)")
        for line in first:
            console.print("  " + line, markup=False, highlight=False)
        console.print(f"  [dim]{FLOOR_NOTE}[/]")
    cats = [f for f in rep["fields"] if f["kind"] == "categorical"]
    if cats:
        t = Table(title="categorical fields (unique counts valid values only)")
        for col in ("field", "valid", "unique", "uniq/valid", "entropy", "norm H", "list cov.", "target cov.", "KL→target", "floor"):
            t.add_column(col, justify="left" if col == "field" else "right")
        pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
        for f in cats:
            t.add_row(f["field"], f"{f['valid_share']:.1%}", str(f["unique"]), f"{f['unique_ratio']:.2f}",
                      f"{f['entropy_bits']:.2f}", f"{f['normalized_entropy']:.2f}", pct(f.get("coverage")),
                      pct(f.get("target_coverage")),
                      "-" if f.get("kl_to_target_bits") is None else f"{f['kl_to_target_bits']:.2f}",
                      "-" if f.get("kl_floor_bits") is None else f"{f['kl_floor_bits']:.2f}")
        console.print(t)
        console.print("list cov.: unique valid values / the validation list; target cov.: / the adapter's target list; "
                      + COVERAGE_NOTE)
        for f in cats:
            if f.get("target_note"):
                console.print(f"  [dim]{f['field']}: {f['target_note']}[/]")
        for f in cats:
            console.print(f"  [bold]{f['field']}[/] top: " + ", ".join(f"{v} {s:.1%}" for v, _, s in f["top"][:5])
                          + ("   [dim]invalid: " + ", ".join(f"{k} {v}" for k, v in f["invalid_reasons"].items())
                             + "[/]" if f["invalid"] else ""))
    _render_texts(console, [f for f in rep["fields"] if f["kind"] == "text"])
    if rep["mutual_information"]:
        t = Table(title="mutual information (bits; shuffled = same values re-paired at random)")
        for col in ("fields", "records", "MI", "shuffled", "excess", "normalized"):
            t.add_column(col, justify="left" if col == "fields" else "right")
        for m in rep["mutual_information"]:
            if m.get("mi_bits") is None:
                continue
            t.add_row(f"{m['a']} ↔ {m['b']}", str(m["n"]), f"{m['mi_bits']:.3f}", f"{m['shuffled_mi_bits']:.3f}",
                      f"{m['excess_mi_bits']:.3f}", f"{m['normalized_mi']:.3f}")
        console.print(t)
    for g in rep["geography"]:
        console.print(f"[bold]{g['field']}[/]: {g['resolved']} geocoded, {g['unresolved']} unresolved, "
                      f"{g['countries']} countries (entropy {g['country_entropy_bits']:.2f} bits), "
                      f"{g['continents']} continents: " + ", ".join(f"{k} {v}" for k, v in g["by_continent"].items())
                      + (f"; {g['us_states']} US states, top " + ", ".join(f"{k} {s:.1%}" for k, _, s in g["top_us_states"][:5])
                         if g.get("us_states") else ""))
    if other:
        t = Table(title=f"side by side: {rep['file']} vs {other['file']}")
        for col in ("field", "metric", "this", "compare", "ratio"):
            t.add_column(col, justify="left" if col in ("field", "metric") else "right")
        for r in compare_table(rep, other):
            f = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
            t.add_row(r["field"], r["metric"], f(r["value"]), f(r["compare"]), "-" if r["ratio"] is None else f"{r['ratio']:.2f}x")
        console.print(t)


def _render_texts(console, texts: list[dict]) -> None:
    """The report's free-text table, each field's checks and most repeated 3-grams under it."""
    from rich.table import Table

    if texts:
        t = Table(title="free text")
        for col in ("field", "valid", "distinct-1", "distinct-2", "distinct-3", "compression", "exact dups", "near dups", "n-gram Vendi",
                    "semantic Vendi", "non-words", "every check"):
            t.add_column(col, justify="left" if col == "field" else "right")
        for f in texts:
            g = lambda k, fmt="{:.3f}": "-" if f.get(k) is None else fmt.format(f[k])  # noqa: E731
            t.add_row(f["field"], f"{f['valid_share']:.1%}", g("distinct_1"), g("distinct_2"), g("distinct_3"),
                      g("compression_ratio", "{:.2f}"), g("exact_duplicates", "{}"),
                      f"{f.get('near_duplicates', '-')}/{f.get('near_duplicate_sample', '-')}", g("ngram_vendi", "{:.1f}"),
                      g("semantic_vendi", "{:.1f}"), g("nonword_share", "{:.2%}"), g("checks_all", "{:.1%}"))
        console.print(t)
        console.print("non-words: share of words not in an English word list (wordfreq), the record's own values left out; "
                      "semantic Vendi: the effective number of different meanings (all-MiniLM-L6-v2 embeddings)")
        for f in texts:
            if f.get("checks"):
                console.print(f"  [bold]{f['field']}[/] checks passed: " + ", ".join(f"{k} {v:.1%}" for k, v in f["checks"].items()))
            if f.get("top_3grams"):
                console.print(f"  [bold]{f['field']}[/] most repeated 3-grams (share of texts): "
                              + ", ".join(f"{g!r} {s:.1%}" for g, s in f["top_3grams"]), highlight=False)
            if f.get("semantic_vendi_note"):
                console.print(f"  [dim]{f['field']}: {f['semantic_vendi_note']}[/]")


class LineProgress:
    """Off a terminal (nohup, a CI log, a pipe) rich draws no live bars: a plain line every `every`
    seconds instead ("progress: 1,024/10,000 records · 1.02 rec/s · ETA 2:26:40 · 16:44 elapsed"),
    and one at the end. A record counts when its last field is done; the rate runs from the first."""

    def __init__(self, fields, n: int, start: int, every: float = 60.0, echo=None, clock=time.monotonic):
        self.counts = dict.fromkeys(fields, 0)
        self.n, self.start, self.every, self.clock = n, start, every, clock
        self.echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
        self.t0 = self.last = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None and self.t0 is not None:
            self.echo(self.line())

    def done(self) -> int:
        return min(self.counts.values())

    def line(self) -> str:
        done, dt = self.done(), self.clock() - self.t0
        rate = done / dt if dt > 0 else 0.0
        eta = _clock((self.n - self.start - done) / rate) if rate > 0 else "?"
        return (f"progress: {self.start + done:,}/{self.n:,} records · {rate:.2f} rec/s · ETA {eta} · "
                f"{_clock(dt)} elapsed")

    def __call__(self, name, k):
        now = self.clock()
        if self.t0 is None:
            self.t0 = self.last = now
        self.counts[name] += k
        if now - self.last >= self.every:
            self.last = now
            self.echo(self.line())


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def field_progress(template, n: int, start: int):
    """A bar per field with its rate (records/s from its first record) and ETA; returns (bar, on_field).
    Off a terminal: a LineProgress (a plain line a minute), which is both."""
    if not sys.stderr.isatty():
        lines = LineProgress([f.name for f in template.fields], n, start)
        return lines, lines
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description:>14}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=terminal(stderr=True))
    tasks = {f.name: bar.add_task(f.name, total=n, completed=start, rate="") for f in template.fields}
    started = {}

    def on_field(name, k):
        t = bar.tasks[tasks[name]]
        started.setdefault(name, (time.perf_counter(), t.completed))
        t0, c0 = started[name]
        bar.advance(tasks[name], k)
        dt = time.perf_counter() - t0
        if dt > 0:
            bar.update(tasks[name], rate=f"{(t.completed - c0) / dt:.1f} rec/s")

    return bar, on_field


def train_info(log, ema, tasks) -> str:
    """One step's line: loss (EMA) vs its floor H(p*) per list, or a summary of many lists."""
    seen = [t for t in tasks if t.spec.name in ema]
    if len(tasks) > 3:  # a conditional spec: one list per value
        gaps = [(ema[t.spec.name] - t.entropy) / math.log(2) for t in seen]
        info = (f"{len(seen)}/{len(tasks)} lists seen: loss - H(p*) mean {sum(gaps) / len(gaps):.3f} bits, "
                f"worst {max(gaps):.3f}") if gaps else f"0/{len(tasks)} lists seen"
    else:
        info = " | ".join(f"{t.spec.name}: loss {ema[t.spec.name]:.3f}/H {t.entropy:.3f}"
                          + (f" mass {log.mass[t.spec.name]:.2f}" if t.spec.name in log.mass else "") for t in seen)
    keep = f" | keep KL {log.keep:.3f}" if log.keep is not None else ""  # --keep-weight: KL(base || adapter)
    return info + keep + f" | {log.seconds:.1f}s/step"


def train_progress(total: int, label: str = "training", transient: bool = False, every: float = 60.0):
    """A training bar with the per-list loss/entropy/mass line; returns (bar, on_step). Off a
    terminal: a plain line every `every` seconds and one at the last step."""
    if not sys.stderr.isatty():
        from contextlib import nullcontext

        last = [time.monotonic()]

        def on_line(log, ema, tasks):
            if time.monotonic() - last[0] >= every or log.step == total:
                last[0] = time.monotonic()
                print(f"{label}: step {log.step}/{total} · {train_info(log, ema, tasks)}", file=sys.stderr, flush=True)

        return nullcontext(), on_line
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[info]}"), console=terminal(stderr=True), transient=transient)
    task_id = bar.add_task("train", total=total, info="loading model")

    def on_step(log, ema, tasks):
        bar.update(task_id, completed=log.step, info=train_info(log, ema, tasks))

    return bar, on_step


def render_check(checks) -> None:
    from rich.table import Table

    table = Table(title="target sets")
    for col in ("list", "targets", "trie tokens", "max tokens", "status"):
        table.add_column(col)
    for c in checks:
        status = "[green]prefix-free[/]" if c.problems.ok else f"[red]{c.problems.summary()}[/]"
        table.add_row(c.name, str(c.targets), str(c.trie_tokens), str(c.max_tokens), status)
    terminal().print(table)


def render_audit(rows) -> None:
    console = terminal()
    audit_table(console, rows)
    distortion_table(console, rows)
    for name, b, a in rows:
        top = (a or b)["top"]
        console.print(f"{name} top 10{' (adapter)' if a else ''}: " + ", ".join(f"{t} {p:.1%}" for t, p, _ in top))


def render_models(rows) -> None:
    from rich.table import Table

    table = Table(title="synthgen models")
    for col in ("name", "description", "package", "cache"):
        table.add_column(col)
    for r in rows:
        name = r["name"] + (" (default)" if r["default"] else "")
        pkg = "[green]installed[/]" if r["installed"] else "[red]missing[/] (make setup)"
        cache = ("[green]converted[/] " if r["cached"] else "[yellow]not yet converted[/] ") + r["path"]
        table.add_row(name, r["description"], pkg, cache)
    terminal().print(table)
