"""Command-line interface: parse, call the library, render with rich. Heavy imports stay lazy."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager

import click

from .engine.quiet import engine_output
from .errors import SynthgenError


class _Group(click.Group):
    """Turns SynthgenError into one line on stderr and exit 1: users never see a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SynthgenError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


def _console(stderr: bool = False):
    """A rich console; when the stream is not a terminal (a pipe, a CI log) tables get a wide fixed
    width instead of rich's 80 columns, so no column is cut ("KL→tar…")."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="synthgen")
@click.option("--verbose", "-v", is_flag=True,
              help="Show what vLLM, torch and HF print while an engine starts (default: kept in SYNTHGEN_HOME/logs/engine.log).")
def cli(verbose):
    """synthgen: diverse synthetic datasets from language models.

    Instruction-tuned models collapse onto a few answers ("7", "Emily"). synthgen trains diffuse
    LoRA adapters, generates structured records on vLLM and audits the result's diversity.

    \b
    Examples:
      synthgen models
      synthgen sample "Pick a random number between 1 and 10. Answer with the number only." --n 1000
    """
    if verbose:
        os.environ["SYNTHGEN_VERBOSE"] = "1"


_model_option = click.option("--model", "-m", default=None, metavar="NAME|DIR",
                             help="Embedded model name (default smollm2-135m), a local HF model directory or a hub id.")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def models(as_json):
    """List the embedded models and where their converted copies are cached.

    \b
    Example:
      synthgen models
    """
    from .models import list_models

    rows = list_models()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(title="synthgen models")
    for col in ("name", "description", "package", "cache"):
        table.add_column(col)
    for r in rows:
        name = r["name"] + (" (default)" if r["default"] else "")
        pkg = "[green]installed[/]" if r["installed"] else "[red]missing[/] (make setup)"
        cache = ("[green]converted[/] " if r["cached"] else "[yellow]not yet converted[/] ") + r["path"]
        table.add_row(name, r["description"], pkg, cache)
    _console().print(table)
    click.echo("Any local Hugging Face model directory also works: --model PATH")


@contextmanager
def _quiet_stdout(enabled: bool = True):
    """Send fd 1 to stderr while engines run (vLLM and its worker processes print to stdout), so
    that `--json` output on stdout stays machine-readable. Yields a writer to the real stdout."""
    if not enabled:
        yield click.echo
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    real = os.fdopen(os.dup(saved), "w")
    try:
        yield lambda text: (real.write(text + "\n"), real.flush())
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        real.close()


def _progress(total: int, label: str):
    """A rich progress bar on stderr; returns (context manager, callback)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=_console(stderr=True), transient=True)
    task = bar.add_task(label, total=total)
    return bar, lambda k: bar.advance(task, k)


@cli.command()
@click.argument("prompt")
@click.option("--n", "n", default=100, show_default=True, help="How many answers to sample.")
@_model_option
@click.option("--adapter", "-a", default=None, metavar="DIR", help="Sample through this LoRA adapter (peft directory).")
@click.option("--seed", default=0, show_default=True, help="Run seed: the same seed gives the same answers.")
@click.option("--temperature", "-t", default=1.0, show_default=True, help="Sampling temperature (0 = greedy).")
@click.option("--max-tokens", default=16, show_default=True, help="Longest answer, in tokens.")
@click.option("--top", default=20, show_default=True, help="Rows in the frequency table.")
@click.option("--engine", type=click.Choice(["vllm", "openai"]), default="vllm", show_default=True,
              help="vllm: in-process; openai: running vLLM OpenAI servers (--endpoint).")
@click.option("--endpoint", multiple=True, metavar="URL", help="vLLM OpenAI server URL (repeatable; --engine openai).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def sample(prompt, n, model, adapter, seed, temperature, max_tokens, top, engine, endpoint, as_json):
    """Ask PROMPT N times and show how often each answer comes back.

    The fastest way to see mode collapse: a table of answers, the number of distinct answers and
    the share of the top one.

    \b
    Examples:
      synthgen sample "Pick a random number between 1 and 10. Answer with the number only." --n 1000
      synthgen sample "Pick a random first name. Answer with the name only." --adapter adapters/first_names
      synthgen sample "Name a fruit." --json --seed 3
    """
    from .engine import check_adapter, create_engine
    from .models import resolve_model
    from .sample import check_sample_args, sample as run_sample

    check_sample_args(prompt, n, temperature, max_tokens)  # fail before the engine starts
    if adapter:
        check_adapter(adapter)
    if engine == "vllm":
        model = resolve_model(model)
        if adapter:
            check_adapter(adapter, model)  # refuses an adapter trained for another base model
    kwargs = {"endpoints": endpoint} if engine == "openai" else {}
    with _quiet_stdout(as_json) as emit:
        with engine_output():
            eng = create_engine(engine, model, **kwargs)
        try:
            bar, advance = _progress(n, "sampling")
            with bar:
                result = run_sample(eng, prompt, n, seed=seed, adapter=adapter, temperature=temperature,
                                    max_tokens=max_tokens, progress=advance)
        finally:
            eng.close()
        if as_json:
            emit(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
            return
    _render_sample(result, top)


def _render_sample(result, top: int) -> None:
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
    console = _console()
    console.print(table)
    console.print(f"distinct answers: [bold]{result.distinct}[/] of {result.n}   "
                  f"top answer share: [bold]{result.top_share:.1%}[/]   entropy: {result.entropy_bits:.2f} bits")
    console.print(f"ended with end-of-turn: [bold]{result.n - result.unfinished}[/] of {result.n}, "
                  f"[bold]{result.distinct_finished}[/] distinct   (cut at --max-tokens: {result.unfinished}; "
                  "cut-off rambling is not diversity)")


_specs_argument = click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))


@cli.command("check-targets")
@_specs_argument
@_model_option
def check_targets_cmd(specs, model):
    """Check that each list SPEC tokenises to a prefix-free target set.

    Every target is tokenised as training sees it (answer + end-of-turn). Reports empty
    targets, duplicates after normalisation and prefix collisions; exits 1 if any set is not
    prefix-free.

    \b
    Examples:
      synthgen check-targets adapters/first_names.yaml
      synthgen check-targets adapters/*.yaml adapters/tasks/*.yaml
    """
    from rich.table import Table

    from . import targets as T
    from .lists import load_spec, load_targets
    from .models import resolve_model

    loaded = [load_spec(s) for s in specs]  # bad YAML fails before the model loads
    tok = _tokenizer(resolve_model(model))
    table = Table(title="target sets")
    for col in ("list", "targets", "trie tokens", "max tokens", "status"):
        table.add_column(col)
    failed = []
    for spec in loaded:
        texts, _ = load_targets(spec)
        ids = T.encode_targets(tok, texts)
        problems = T.check_targets(texts, ids)
        status = "[green]prefix-free[/]" if problems.ok else f"[red]{problems.summary()}[/]"
        table.add_row(spec.name, str(len(texts)), str(T.build_trie(ids).n_nodes), str(max(map(len, ids))), status)
        if not problems.ok:
            failed.append(f"{spec.path}: {problems.summary()}")
    _console().print(table)
    if failed:
        raise click.ClickException("not prefix-free: " + " | ".join(failed))


def _tokenizer(model_dir):
    from transformers import AutoTokenizer

    from .errors import ModelError

    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except Exception as e:  # offline hub ids, broken directories: one line, not chained tracebacks
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise ModelError(f"cannot load the tokenizer of {model_dir!r} ({first[:160]}): --model takes a local "
                         "Hugging Face model directory (no model hub here); `synthgen models` lists the embedded one") from None


@cli.command("build-adapter")
@_specs_argument
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Adapter directory to write.")
@_model_option
@click.option("--steps", default=60, show_default=True, help="Maximum optimiser steps.")
@click.option("--lr", default=5e-4, show_default=True, help="AdamW learning rate.")
@click.option("--rank", default=8, show_default=True, help="LoRA rank.")
@click.option("--prompts-per-step", default=2, show_default=True, help="Packed prompt passes per step.")
@click.option("--max-targets", default=1000, show_default=True, help="Targets per pass; bigger lists are subsampled.")
@click.option("--gamma", default=0.02, show_default=True, help="Stop early when loss <= (1+gamma)·H(p*).")
@click.option("--seed", default=0, show_default=True, help="Seeds LoRA init and prompt/target sampling.")
@click.option("--threads", default=None, type=int, help="torch threads (default: all cores).")
@click.option("--audit-prompts", default=None, type=int, help="Card audit on the first N prompts of each spec (default all; big lists are slow to score).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its checkpoint (OUT.partial).")
@click.option("--overwrite", is_flag=True, help="Replace an existing adapter at OUT.")
def build_adapter(specs, out, model, steps, lr, rank, prompts_per_step, max_targets, gamma, seed, threads, audit_prompts,
                  resume, overwrite):
    """Train a diffuse LoRA adapter on one or more list SPECs.

    Minimises -Σ p*(t)·log P(t + end-of-turn | prompt) over each list's targets, for prompts
    drawn from its paraphrases, with the prompt and the trie of all targets packed into one
    sequence. Ctrl-C saves a checkpoint; --resume continues it. The adapter card
    (synthgen_adapter.json) records settings, time and exact before/after metrics.

    \b
    Examples:
      synthgen build-adapter adapters/numbers_1_100.yaml --out adapters/numbers_1_100
      synthgen build-adapter adapters/tasks/*.yaml --out out/paper_tasks --steps 100
      synthgen build-adapter adapters/first_names.yaml --out adapters/first_names --resume
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .lists import load_spec, load_targets
    from .models import DEFAULT_MODEL, EMBEDDED, resolve_model
    from .train import TrainConfig, train

    cfg = TrainConfig(steps=steps, lr=lr, rank=rank, alpha=2 * rank, prompts_per_step=prompts_per_step,
                      max_targets=max_targets, gamma=gamma, seed=seed, audit_prompts=audit_prompts)
    loaded = [load_spec(s) for s in specs]
    for spec in loaded:  # the lists load (and fail) before the model does
        items, _ = load_targets(spec)
        if len(items) < 2:
            raise click.ClickException(f"{spec.path}: the list has {len(items)} item(s): a diffuse adapter needs at "
                                       "least 2 answers to spread over")
    model_dir = resolve_model(model)
    bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[info]}"), console=_console(stderr=True))
    task_id = bar.add_task("train", total=steps, info="loading model")

    def on_step(log, ema, tasks):
        parts = []
        for t in tasks:
            if t.spec.name in ema:
                parts.append(f"{t.spec.name}: loss {ema[t.spec.name]:.3f}/H {t.entropy:.3f} "
                             f"mass {log.mass.get(t.spec.name, float('nan')):.2f}")
        bar.update(task_id, completed=log.step, info=" | ".join(parts) + f" | {log.seconds:.1f}s/step")

    try:
        with bar:
            card = train(model_dir, loaded, out, cfg, resume=resume, overwrite=overwrite, threads=threads,
                         on_step=on_step, base_name=name if (name := model or DEFAULT_MODEL) in EMBEDDED else None)
    except KeyboardInterrupt:
        click.echo("interrupted: checkpoint saved; continue with the same command and --resume", err=True)
        sys.exit(130)
    _render_card(card, out)
    if card["capability"]["degraded"]:
        cap = card["capability"]
        click.secho(f"WARNING: general capability degraded: perplexity x{cap['perplexity_ratio']} "
                    f"(threshold x{cap['threshold']}); consider a lower --lr or fewer --steps", fg="red", err=True)


def _render_card(card, out):

    console = _console()
    console.print(f"[bold]{out}[/]: {card['steps']} steps in {card['train_seconds']:.0f}s"
                  + (" (stopped early)" if card["stopped_early"] else ""))
    _audit_table(console, [(x["name"], x["base"], x["adapter"]) for x in card["lists"]])


def _audit_table(console, rows):
    from rich.table import Table

    table = Table(title="exact audit (mean over prompts): base -> adapter")
    for col in ("list", "targets", "mass on valid", "entropy bits (max)", "KL(p*||p) bits", "E[distinct] in 500"):
        table.add_column(col, justify="right" if col != "list" else "left")
    for name, base, ad in rows:
        fmt = lambda key, f: f"{f(base[key])} -> {f(ad[key])}" if ad else f(base[key])  # noqa: E731
        table.add_row(name, str(base["n_targets"]), fmt("mass", lambda v: f"{v:.3f}"),
                      fmt("entropy_bits", lambda v: f"{v:.2f}") + f" ({base['max_entropy_bits']:.2f})",
                      fmt("kl_bits", lambda v: f"{v:.2f}"),
                      fmt("expected_distinct", lambda v: f"{v[500]:.0f}"))
    console.print(table)


def _distortion_table(console, rows):
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


@cli.command()
@_specs_argument
@_model_option
@click.option("--adapter", "-a", default=None, metavar="DIR", help="Audit this adapter next to the base model.")
@click.option("--prompt", "prompts", multiple=True, help="Score these prompts instead of the spec's (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def audit(specs, model, adapter, prompts, as_json):
    """Exact distribution of a model (and adapter) over each list SPEC, without sampling.

    Mass on the valid set, entropy vs its maximum, KL(p*‖p), expected distinct answers in N
    draws (Σ 1-(1-p_i)^N) and the top 10, base and adapter side by side. A second table shows
    what constrained decoding samples: Q, the model masked to the list's token trie and
    renormalised at every step, next to P(·|valid): their entropies, the distortion
    KL(Q‖P(·|valid)) in nats, KL(Q‖p*) and expected distinct answers under Q.

    \b
    Examples:
      synthgen audit adapters/numbers_1_100.yaml
      synthgen audit adapters/first_names.yaml --adapter adapters/first_names --json
      synthgen audit adapters/tasks/fruits.yaml --adapter out/paper_tasks --prompt "Name a fruit."
    """
    from .audit import audit as run_audit
    from .engine import check_adapter
    from .lists import load_spec
    from .models import resolve_model
    from .train import load_base

    loaded = [load_spec(s) for s in specs]
    model_dir = resolve_model(model)
    if adapter:
        check_adapter(adapter, model_dir)
    tok, base = load_base(model_dir)
    if adapter:
        from peft import PeftModel

        base = PeftModel.from_pretrained(base, adapter)
    base.eval()
    rows = []
    for spec in loaded:
        b = run_audit(base, tok, spec, prompts=list(prompts) or None, adapter_off=bool(adapter)).to_dict()
        a = run_audit(base, tok, spec, prompts=list(prompts) or None).to_dict() if adapter else None
        rows.append((spec.name, b, a))
    if as_json:
        click.echo(json.dumps([{"list": n, "base": b, "adapter": a} for n, b, a in rows], indent=2))
        return

    console = _console()
    _audit_table(console, rows)
    _distortion_table(console, rows)
    for name, b, a in rows:
        top = (a or b)["top"]
        console.print(f"{name} top 10{' (adapter)' if a else ''}: " + ", ".join(f"{t} {p:.1%}" for t, p, _ in top))


def _generate_options(f):
    options = [
        click.option("--n", "n", default=100, show_default=True, help="Number of records."),
        click.option("--out", "-o", required=True, type=click.Path(), help="Output file (.jsonl, .parquet) or directory (--format hf)."),
        click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet", "hf"]), default=None,
                     help="Output format (default: from the --out suffix, else jsonl). parquet/hf stream to OUT.stream.jsonl, then convert."),
        click.option("--seed", default=0, show_default=True, help="Run seed: the same seed gives the identical file."),
        click.option("--no-adapters", is_flag=True, help="Every field on the base model (the comparison run)."),
        click.option("--decode", type=click.Choice(["constrained", "free"]), default=None,
                     help="Every choice/date field: constrained = sampled inside its list's token trie (valid by construction; "
                          "the default for those fields), free = sampled freely, parsed, retried if invalid. Default: each field's `decode`."),
        click.option("--retries", default=None, type=int, help="Retries of an invalid answer, new seed each, for every field (default: the template's per field, else 3)."),
        click.option("--resume", is_flag=True, help="Continue an interrupted run of the same command (no record lost, duplicated or changed)."),
        click.option("--overwrite", is_flag=True, help="Replace an existing output."),
        click.option("--block-size", default=1024, show_default=True, help="Records per block: the unit of scheduling (a block's batches do not depend on timing) and what --resume recomputes."),
        _model_option,
        click.option("--engine", type=click.Choice(["vllm", "openai"]), default="vllm", show_default=True,
                     help="vllm: in-process; openai: running vLLM OpenAI servers (--endpoint), adapters served with --lora-modules NAME=DIR."),
        click.option("--endpoint", multiple=True, metavar="URL", help="vLLM OpenAI server URL (repeatable; requests are sharded across them)."),
        click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def _run_generate(template_ref, n, out, fmt, seed, no_adapters, decode, retries, resume, overwrite, block_size, model,
                  engine, endpoint, as_json):
    from .engine import check_adapter, create_engine
    from .generate import compile_tries, plan_run, run
    from .models import resolve_model
    from .template import load_template

    if fmt is None:
        fmt = "parquet" if str(out).endswith(".parquet") else "jsonl"
    if retries is not None and retries < 0:
        raise click.ClickException(f"--retries must be >= 0, got {retries}")
    if block_size < 1:
        raise click.ClickException(f"--block-size must be >= 1, got {block_size}")
    template = load_template(template_ref, use_adapters=not no_adapters).with_decode(decode)
    model_id, tries = None, None
    auto = [f.name for f in template.fields if f.adapter == "auto"] if not no_adapters else []
    if auto and engine != "vllm":
        raise click.ClickException(f"adapter: auto ({', '.join(auto)}) trains on this machine and needs --engine vllm; "
                                   "with servers, build the adapter with `synthgen build-adapter` and serve it")
    if engine == "vllm":
        model_id = model = resolve_model(model)
        for path in template.adapters().values():
            check_adapter(path, model)  # refuses adapters trained for another base model, before vLLM starts
        tries = compile_tries(template, _tokenizer(model))  # lists too long for max_tokens fail here
    plan = plan_run(template, out, n, seed, fmt=fmt, model=model_id, use_adapters=not no_adapters, resume=resume,
                    overwrite=overwrite)
    if plan.start:  # a resume with options that change records fails here, before the engine starts
        from .engine.vllm_engine import default_dtype
        from .generate import check_settings, run_settings

        check_settings(plan, run_settings(template, retries, block_size, default_dtype() if engine == "vllm" else None))
    if auto and plan.start < n:
        _build_auto_adapters(template, model)
    if plan.start >= n:
        click.echo(f"{out}: already has {plan.start} records (>= --n {n}); nothing to do", err=True)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    kwargs = {"endpoints": endpoint} if engine == "openai" else {}
    if engine == "vllm":
        # every field's adapter resident at once: pipelined records ask for all fields together, and
        # vLLM puts no more than max_loras adapters in one batch
        kwargs["max_loras"] = max(1, len(set(template.adapters().values())))
    console = _console(stderr=True)
    with _quiet_stdout(as_json) as emit:
        if plan.start:
            console.print(f"resuming {out} at record {plan.start}")
        console.print(f"starting engine ({engine}) ...")
        t_start = time.perf_counter()
        with engine_output():
            eng = create_engine(engine, model, **kwargs)
        started_in = time.perf_counter() - t_start
        try:
            if tries is None:
                tries = compile_tries(template, eng.tokenizer)
            bar = Progress(TextColumn("{task.description:>14}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=console)
            tasks = {f.name: bar.add_task(f.name, total=n, completed=plan.start, rate="") for f in template.fields}
            started = {}

            def on_field(name, k):
                t = bar.tasks[tasks[name]]
                started.setdefault(name, (time.perf_counter(), t.completed))
                t0, c0 = started[name]
                bar.advance(tasks[name], k)
                dt = time.perf_counter() - t0
                if dt > 0:
                    bar.update(tasks[name], rate=f"{(t.completed - c0) / dt:.1f} rec/s")

            with bar:
                summary = run(template, eng, plan, n, seed, use_adapters=not no_adapters, retries=retries,
                              block_size=block_size, on_field=on_field, tries=tries,
                              engine_start_seconds=round(started_in, 1))
        finally:
            eng.close()
        if as_json:
            emit(json.dumps(summary.to_dict(), indent=2))
            return
    _render_summary(summary, template)


def _build_auto_adapters(template, model_dir):
    """adapter: auto fields: train what is not cached yet, with a progress bar; one line per field."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .auto import auto_config, ensure_auto_adapters

    console = _console(stderr=True)
    bar = Progress(TextColumn("adapter: auto"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[info]}"), console=console, transient=True)
    task = bar.add_task("auto", total=auto_config().steps, info="")

    def on_step(log, ema, tasks):
        bar.update(task, completed=log.step, info=" ".join(f"mass {m:.2f}" for m in log.mass.values()))

    with bar:
        ensure_auto_adapters(template, model_dir, on_step=on_step, on_note=console.print)


def _render_summary(s, template):
    from rich.table import Table

    console = _console()
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
    if s.recomputed:
        same = s.recomputed - s.recomputed_mismatch
        console.print(f"resume: recomputed {s.recomputed} records of the interrupted block, {same} identical to the file"
                      + ("" if not s.recomputed_mismatch else
                         f"; {s.recomputed_mismatch} DIFFER (same seed no longer gives the same records here)"))


@cli.command()
@click.argument("template")
@_generate_options
def generate(template, **kw):
    """Fill N records of TEMPLATE (a YAML path or a name in templates/), field by field.

    Records are pipelined on the engine: each walks its fields in order (each through its
    adapter), its next field queued as soon as the last is done. Choice and date fields are sampled inside their list's token trie (valid by
    construction); free fields are parsed and validated, invalid ones retried with a new seed,
    then stored as null with the reason. Records stream to OUT (one JSON object per line, with its index and
    seed); kill it at any moment and run the same command with --resume.

    \b
    Examples:
      synthgen generate templates/biography.yaml --n 500 --out x.jsonl --seed 7
      synthgen generate customer_profile --n 1000 --out customers.parquet
      synthgen generate biography --n 10000 --out bios.jsonl --resume
      synthgen generate biography --n 500 --out free.jsonl --decode free      # the old sample-parse-retry
      synthgen generate biography --n 1000 --out bios.jsonl --engine openai --endpoint http://gpu1:8000
    """
    _run_generate(template, **kw)


@cli.command()
@_generate_options
def biographies(**kw):
    """Fictional biographies (templates/biography.yaml), each attribute through its diffuse adapter.

    Gender, first name, last name, birth date, birth place, career and a one-sentence
    achievements text conditioned on them. --no-adapters makes the base-model comparison.

    \b
    Examples:
      synthgen biographies --n 10000 --out bios.jsonl
      synthgen biographies --n 10000 --out base.jsonl --no-adapters
      synthgen biographies --n 200 --out bios.parquet --seed 3
    """
    _run_generate("biography", **kw)


@cli.command()
@click.argument("dataset", type=click.Path(dir_okay=False))
@click.option("--compare", "compare_with", default=None, type=click.Path(dir_okay=False),
              help="A second dataset (e.g. the --no-adapters run): side by side with ratios.")
@click.option("--out", "-o", default=None, type=click.Path(file_okay=False),
              help="Directory for report.html (self-contained), report.json and the PNGs.")
@click.option("--fields", default=None, help="Comma-separated fields to report (default: the template's, else all).")
@click.option("--list", "lists", multiple=True, metavar="FIELD=LIST",
              help="Validate FIELD against a builtin list or a list spec YAML (repeatable), e.g. first_name=first_names.")
@click.option("--geo", multiple=True, metavar="FIELD", help="Geocode FIELD as City, Country (default: template place fields, or names like *place*/*city*).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def report(dataset, compare_with, out, fields, lists, geo, as_json):
    """Audit the diversity of DATASET (JSONL or Parquet, ours or anyone's).

    Per categorical field: valid %, unique valid values (an off-format answer is invalid, not a
    new value), unique ratio, entropy, coverage of its list, KL to the target distribution, top
    10, rarefaction curve. Free text: distinct-1/2/3, compression ratio, exact and near
    duplicates, n-gram Vendi score. Mutual information between fields, and birth places geocoded
    offline (GeoNames) with a world map.

    \b
    Examples:
      synthgen report bios.jsonl
      synthgen report bios.jsonl --compare base.jsonl --out report/
      synthgen report bios.jsonl --json
      synthgen report other.jsonl --fields name,city --list name=first_names --geo city
    """
    from .report import analyse, compare_table, public, write_outputs

    field_list = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    list_map = {}
    for item in lists:
        if "=" not in item:
            raise click.ClickException(f"--list {item!r}: use FIELD=LIST (a builtin list name or a spec YAML)")
        k, v = item.split("=", 1)
        list_map[k.strip()] = v.strip()
    geo_list = list(geo) or None
    main = analyse(dataset, field_list, list_map, geo_list)
    other = analyse(compare_with, field_list, list_map, geo_list) if compare_with else None
    written = write_outputs(main, out, other) if out else []
    if as_json:
        doc = {"report": public(main)}
        if other:
            doc["compare"] = public(other)
            doc["comparison"] = public(compare_table(main, other))
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    _render_report(main, other)
    for w in written:
        click.echo(f"wrote {w}")


def _render_report(rep, other):
    from rich.table import Table

    from .report import compare_table

    console = _console()
    console.print(f"[bold]{rep['file']}[/]: {rep['records']} records"
                  + (f", [red]{rep['malformed_lines']} malformed line(s)[/] (first: line "
                     f"{rep['malformed_examples'][0]['line']}, {rep['malformed_examples'][0]['problem']})"
                     if rep["malformed_lines"] else "") + f"   ({rep['seconds']:.1f}s)")
    cats = [f for f in rep["fields"] if f["kind"] == "categorical"]
    if cats:
        t = Table(title="categorical fields (unique counts valid values only)")
        for col in ("field", "valid", "unique", "uniq/valid", "entropy", "norm H", "coverage", "KL→target"):
            t.add_column(col, justify="left" if col == "field" else "right")
        for f in cats:
            cov = f.get("target_coverage", f.get("coverage"))
            t.add_row(f["field"], f"{f['valid_share']:.1%}", str(f["unique"]), f"{f['unique_ratio']:.2f}",
                      f"{f['entropy_bits']:.2f}", f"{f['normalized_entropy']:.2f}", "-" if cov is None else f"{cov:.1%}",
                      "-" if f.get("kl_to_target_bits") is None else f"{f['kl_to_target_bits']:.2f}")
        console.print(t)
        for f in cats:
            console.print(f"  [bold]{f['field']}[/] top: " + ", ".join(f"{v} {s:.1%}" for v, _, s in f["top"][:5])
                          + ("   [dim]invalid: " + ", ".join(f"{k} {v}" for k, v in f["invalid_reasons"].items())
                             + "[/]" if f["invalid"] else ""))
    texts = [f for f in rep["fields"] if f["kind"] == "text"]
    if texts:
        t = Table(title="free text")
        for col in ("field", "valid", "distinct-1", "distinct-2", "distinct-3", "compression", "exact dups", "near dups", "n-gram Vendi"):
            t.add_column(col, justify="left" if col == "field" else "right")
        for f in texts:
            g = lambda k, fmt="{:.3f}": "-" if f.get(k) is None else fmt.format(f[k])  # noqa: E731
            t.add_row(f["field"], f"{f['valid_share']:.1%}", g("distinct_1"), g("distinct_2"), g("distinct_3"),
                      g("compression_ratio", "{:.2f}"), g("exact_duplicates", "{}"),
                      f"{f.get('near_duplicates', '-')}/{f.get('near_duplicate_sample', '-')}", g("ngram_vendi", "{:.1f}"))
        console.print(t)
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
                      f"{g['continents']} continents: " + ", ".join(f"{k} {v}" for k, v in g["by_continent"].items()))
    if other:
        t = Table(title=f"side by side: {rep['file']} vs {other['file']}")
        for col in ("field", "metric", "this", "compare", "ratio"):
            t.add_column(col, justify="left" if col in ("field", "metric") else "right")
        for r in compare_table(rep, other):
            f = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
            t.add_row(r["field"], r["metric"], f(r["value"]), f(r["compare"]), "-" if r["ratio"] is None else f"{r['ratio']:.2f}x")
        console.print(t)
