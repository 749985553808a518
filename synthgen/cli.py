"""Command-line interface: parse, call the library, render with rich. Heavy imports stay lazy."""

from __future__ import annotations

import json
import os
import sys

import click

from .errors import OneLineErrors
from .render import terminal
from . import train_config
from .serve import serve


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="synthgen")
@click.option("--verbose", "-v", is_flag=True, help="Show what vLLM, torch and HF print at engine start (default: SYNTHGEN_HOME/logs/engine.log).")
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
    from .render import render_models

    rows = list_models()
    if as_json:
        return click.echo(json.dumps(rows, indent=2))
    render_models(rows)
    click.echo("Any local Hugging Face model directory also works: --model PATH")


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
    from .engine import check_adapter
    from .models import resolve_model
    from .sample import check_sample_args, sample as run_sample
    from .card import free_decoding_warning

    check_sample_args(prompt, n, temperature, max_tokens)  # fail before the engine starts
    if adapter:
        check_adapter(adapter)
        if warning := free_decoding_warning(adapter):  # sample decodes free
            click.secho(f"warning: {warning}", fg="yellow", err=True)
    if engine == "vllm":
        model = resolve_model(model)
        if adapter:
            check_adapter(adapter, model)  # refuses an adapter trained for another base model
    from .engine import start_engine
    from .engine.quiet import stdout_to_stderr
    from .render import progress, render_sample

    with stdout_to_stderr(as_json) as emit:
        eng, _ = start_engine(engine, model, endpoint)
        try:
            bar, advance = progress(n, "sampling")
            with bar:
                result = run_sample(eng, prompt, n, seed=seed, adapter=adapter, temperature=temperature,
                                    max_tokens=max_tokens, progress=advance)
        finally:
            eng.close()
        if as_json:
            return emit(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    render_sample(result, top)


_specs_argument = click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))


@cli.command("check-targets")
@_specs_argument
@_model_option
def check_targets_cmd(specs, model):
    """Check that each list SPEC tokenises to a prefix-free target set.

    Every target is tokenised as training sees it (answer + end-of-turn). Reports empty targets, duplicates after
    normalisation and prefix collisions; exits 1 if any set is not prefix-free.

    \b
    Examples:
      synthgen check-targets adapters/first_names.yaml
      synthgen check-targets adapters/*.yaml adapters/tasks/*.yaml
    """
    from .lists import load_spec
    from .models import load_tokenizer, resolve_model
    from .render import render_check
    from .targets import check_lists

    loaded = [load_spec(s) for s in specs]  # bad YAML fails before the model loads
    checks = check_lists(loaded, load_tokenizer(resolve_model(model)))
    render_check(checks)
    if failed := [f"{c.path}: {c.problems.summary()}" for c in checks if not c.problems.ok]:
        raise click.ClickException("not prefix-free: " + " | ".join(failed))


@cli.command("build-adapter")
@_specs_argument
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Adapter directory to write.")
@_model_option
@train_config.click_options  # --steps, --lr, --rank, ...: TrainConfig's settings, each declared once there
@click.option("--threads", default=None, type=int, help="torch threads (default: all cores).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its checkpoint (OUT.partial).")
@click.option("--overwrite", is_flag=True, help="Replace an existing adapter at OUT.")
def build_adapter(specs, out, model, threads, resume, overwrite, **settings):  # settings: TrainConfig's
    """Train a diffuse LoRA adapter on one or more list SPECs.

    Minimises -Σ p*(t)·log Q(t) (--objective q: Q is what trie-constrained decoding samples; paper: P(t + end-of-turn | prompt))
    over each list's targets, for prompts drawn from its paraphrases, the prompt and the trie of all targets packed into one
    sequence. Ctrl-C saves a checkpoint; --resume continues it. The card (synthgen_adapter.json) records settings and metrics.

    \b
    Examples:
      synthgen build-adapter adapters/numbers_1_100.yaml --out adapters/numbers_1_100
      synthgen build-adapter adapters/tasks/*.yaml --out out/paper_tasks --steps 100
      synthgen build-adapter adapters/first_names.yaml --out adapters/first_names --resume
    """
    from .lists import load_spec
    from .models import DEFAULT_MODEL, EMBEDDED, resolve_model, set_torch_threads
    from .render import render_card, train_progress
    from .card import capability_line
    from .train import check_trainable, train

    cfg = train_config.TrainConfig(**settings)
    loaded = [load_spec(s) for s in specs]
    check_trainable(loaded)  # the lists load (and fail) before the model does
    model_dir = resolve_model(model)
    set_torch_threads(threads)
    bar, on_step = train_progress(cfg.steps)
    try:
        with bar:
            card = train(model_dir, loaded, out, cfg, resume=resume, overwrite=overwrite, on_step=on_step,
                         base_name=name if (name := model or DEFAULT_MODEL) in EMBEDDED else None)
    except KeyboardInterrupt:
        click.echo("interrupted: checkpoint saved; continue with the same command and --resume", err=True)
        sys.exit(130)
    render_card(card, out)
    click.secho(capability_line(card), fg="red" if card.degraded else None, err=card.degraded)
    if card.degraded:
        click.secho("WARNING: general capability degraded: consider a lower --lr or fewer --steps", fg="red", err=True)


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
    from .audit import audit_specs
    from .lists import load_spec
    from .models import resolve_model
    from .render import render_audit

    loaded = [load_spec(s) for s in specs]
    rows = audit_specs(loaded, resolve_model(model), adapter, list(prompts) or None)
    if as_json:
        return click.echo(json.dumps([{"list": n, "base": b, "adapter": a} for n, b, a in rows], indent=2))
    render_audit(rows)


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
        click.option("--retries", default=None, type=int, help="Retries of an invalid answer, each field (default: its own, else 3)."),
        click.option("--resume", is_flag=True, help="Continue an interrupted run of the same command (no record lost, duplicated or changed)."),
        click.option("--overwrite", is_flag=True, help="Replace an existing output."),
        click.option("--block-size", default=1024, show_default=True,
                     help="Records per block: the unit of scheduling (a block's batches do not depend on timing) and what --resume recomputes."),
        _model_option,
        click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default=None,
                     help="The engine's dtype (default: SYNTHGEN_DTYPE, else bf16 on GPU, else the faster one measured on this CPU)."),
        click.option("--engine", type=click.Choice(["vllm", "openai"]), default="vllm", show_default=True,
                     help="vllm: in-process; openai: running vLLM OpenAI servers (--endpoint), adapters served with --lora-modules NAME=DIR."),
        click.option("--endpoint", multiple=True, metavar="URL", help="vLLM OpenAI server URL (repeatable; requests are sharded across them)."),
        click.option("--ray", "ray", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
                     help="Run the blocks on Ray actors, one engine each (pip install 'synthgen[ray]'): --ray alone starts a "
                          "local Ray for the run; --ray auto joins this machine's cluster; or ray://HEAD:10001. Same records as a local run."),
        click.option("--actors", type=int, default=None, help="--ray: actors (default: as many as the cluster fits)."),
        click.option("--cpus-per-actor", type=float, default=None, help="--ray: CPUs per actor (default: this machine's cores, or 1 with GPUs)."),
        click.option("--gpus-per-actor", type=float, default=None, help="--ray: GPUs per actor (default: 1 where the cluster has GPUs)."),
        click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def _run_generate(template_ref: str, kw: dict) -> None:
    """`generate`/`biographies`: their click options (named as RunOptions' fields, plus as_json) run."""
    from .engine import quiet, threads
    from .render import field_progress, render_summary, train_progress
    from .runner import RunOptions, build_auto, execute, prepare

    as_json, n, out, engine, ray = kw["as_json"], kw["n"], kw["out"], kw["engine"], kw["ray"]
    notices: list[str] = []  # said after validation, so that a bad input's error is the first line
    policy = threads.configure(say=notices.append)  # before torch loads: its OpenMP reads it once
    prep = prepare(RunOptions.from_options(template_ref, kw))
    for line in notices:
        click.echo(line, err=True)
    if prep.todo == 0:
        return click.echo(f"{out}: already has {prep.plan.start} records (>= --n {n}); nothing to do", err=True)
    console = terminal(stderr=True)
    for warning in prep.warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False)
    if prep.needs_auto:
        from .auto import auto_config

        bar, on_step = train_progress(auto_config().steps, "adapter: auto", transient=True)
        with bar:
            build_auto(prep, on_step=on_step, on_note=console.print)
    # a run that spins by our choice looks at the load as it goes (threads.LoadWatch)
    watch = (threads.LoadWatch(written=prep.plan.stream) if engine == "vllm" and not ray and threads.may_redecide(policy)
             else None)
    try:
        with quiet.stdout_to_stderr(as_json) as emit:
            if prep.plan.start:
                console.print(f"resuming {out} at record {prep.plan.start}")
            console.print(f"starting engine ({engine}{', on Ray' if ray else ''}) ...")
            bar, on_field = field_progress(prep.template, n, prep.plan.start)
            with bar:
                summary = execute(prep, on_field=on_field if watch is None else _watched(on_field, watch))
            if as_json:
                return emit(json.dumps(summary.to_dict(), indent=2))
    except threads.Redecide as e:  # the engine is closed and every finished record written: carry on elsewhere
        console.print(f"synthgen: {e} now: the run goes on in a fresh process whose engine threads sleep when "
                      "idle (OMP_WAIT_POLICY=PASSIVE), as --resume would; the block in progress is computed again")
        threads.resume_sleeping(sys.argv[1:])
    render_summary(summary, prep.template)


def _watched(on_field, watch):
    def on(name, k):
        on_field(name, k)
        watch.tick()
    return on


@cli.command()
@click.argument("template")
@_generate_options
def generate(template, **kw):
    """Fill N records of TEMPLATE (a YAML path or a name in templates/), field by field.

    Records are pipelined on the engine: each walks its fields in order (each through its adapter), its next field queued as
    soon as the last is done. Choice and date fields are sampled inside their list's token trie (valid by construction); free
    fields are parsed, invalid ones retried with a new seed, then stored as null with the reason. Records stream to OUT (one
    JSON object per line, with its index and seed); kill it at any moment and run the same command with --resume.

    \b
    Examples:
      synthgen generate customer_profile --n 1000 --out customers.parquet --seed 7
      synthgen generate biography --n 10000 --out bios.jsonl --resume
      synthgen generate biography --n 500 --out free.jsonl --decode free      # the old sample-parse-retry
      synthgen generate biography --n 1000 --out bios.jsonl --engine openai --endpoint http://gpu1:8000
      synthgen generate biography --n 100000 --out bios.jsonl --ray auto --block-size 1024   # on a Ray cluster
    """
    _run_generate(template, kw)


@cli.command()
@_generate_options
def biographies(**kw):
    """Fictional biographies (templates/biography.yaml), each attribute through its diffuse adapter.

    Gender, birth date, a first name of that sex and decade, last name, birth place, career and a
    one-sentence achievements text conditioned on them. --no-adapters makes the base-model comparison.

    \b
    Examples:
      synthgen biographies --n 10000 --out bios.jsonl
      synthgen biographies --n 10000 --out base.jsonl --no-adapters
      synthgen biographies --n 200 --out bios.parquet --seed 3
      synthgen biographies --n 2000 --out bios.jsonl --ray --actors 2 --cpus-per-actor 1 --block-size 256
    """
    _run_generate("biography", kw)


@cli.command()
@click.argument("dataset", type=click.Path())
@click.option("--compare", "compare_with", default=None, type=click.Path(),
              help="A second dataset (e.g. the --no-adapters run): side by side with ratios.")
@click.option("--out", "-o", default=None, type=click.Path(file_okay=False),
              help="Directory for report.html (self-contained), report.json and the PNGs.")
@click.option("--fields", default=None, help="Comma-separated fields to report (default: the template's, else all).")
@click.option("--target", "--list", "lists", multiple=True, metavar="FIELD=LIST", help="FIELD's list and target: a builtin "
              "list (its real weights, else uniform) or a list spec YAML (repeatable), e.g. first_name=first_names: valid %, KL.")
@click.option("--joint", "joints", multiple=True, metavar="GIVEN:FIELD", help="Judge FIELD against the shipped real joint "
              "with GIVEN (repeatable): gender:first_name, birth_date:first_name (SSA), gender:career (BLS CPS).")
@click.option("--geo", multiple=True, metavar="FIELD", help="Geocode FIELD as City, Country "
              "(default: template place fields, or names like *place*/*city*).")
@click.option("--checks", multiple=True, metavar="FIELD=CHECKS", help="What text FIELD must agree with in its record, "
              "as a template's checks: (YAML, repeatable), e.g. 'bio={mentions: [name], pronouns: sex}'.")
@click.option("--split", default=None, help="The split of a saved Hugging Face DatasetDict folder (e.g. train).")
@click.option("--template", default=None, help="Read the file(s) as if made with this template (lists, targets, real joints, text checks).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def report(dataset, compare_with, out, fields, lists, joints, geo, checks, split, template, as_json):
    """Audit the diversity of DATASET: JSONL, JSON, CSV/TSV, Parquet or a saved HF dataset folder.

    Categorical fields: valid %, unique values, entropy, coverage, KL to the target, top 10,
    rarefaction. Free text: distinct-n, duplicates, n-gram and semantic Vendi, non-English words,
    top 3-grams, and per check (the template's `checks:`, or --checks; a --compare file gets the
    same) the share of texts that fit their record. Mutual information; places on a world map.

    \b
    Examples:
      synthgen report bios.jsonl
      synthgen report bios.jsonl --compare base.jsonl --out report/
      synthgen report bios.jsonl --json
      synthgen report faker.csv --fields name,city --target name=first_names --geo city
      synthgen report faker.csv --target first_name=first_names --joint gender:first_name --joint birth_date:first_name
      synthgen report faker.jsonl --template biography        # another tool's file, read as ours
      synthgen report other.jsonl --checks 'bio={mentions: [name], pronouns: sex, profanity: true}'
    """
    from .render import render_report
    from .report import analyse_pair, document, write_outputs

    options = {"fields": fields, "lists": lists, "geo": geo, "checks": checks, "split": split, "template": template,
               "joints": joints}
    main, other = analyse_pair(dataset, compare_with, options)
    written = write_outputs(main, out, other) if out else []
    if as_json:
        return click.echo(json.dumps(document(main, other), indent=2, ensure_ascii=False))
    render_report(main.summary, other.summary if other else None)
    for w in written:
        click.echo(f"wrote {w}")


cli.add_command(serve)
