"""Command-line interface: parse, call the library, render with rich. Heavy imports stay lazy."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager

import click

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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="synthgen")
def cli():
    """synthgen: diverse synthetic datasets from language models.

    Instruction-tuned models collapse onto a few answers ("7", "Emily"). synthgen trains diffuse
    LoRA adapters, generates structured records on vLLM and audits the result's diversity.

    \b
    Examples:
      synthgen models
      synthgen sample "Pick a random number between 1 and 10. Answer with the number only." --n 1000
    """


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
    from rich.console import Console
    from rich.table import Table

    table = Table(title="synthgen models")
    for col in ("name", "description", "package", "cache"):
        table.add_column(col)
    for r in rows:
        name = r["name"] + (" (default)" if r["default"] else "")
        pkg = "[green]installed[/]" if r["installed"] else "[red]missing[/] (make setup)"
        cache = ("[green]converted[/] " if r["cached"] else "[yellow]not yet converted[/] ") + r["path"]
        table.add_row(name, r["description"], pkg, cache)
    Console().print(table)
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
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task(label, total=total)
    return bar, lambda k: bar.advance(task, k)


@cli.command()
@click.argument("prompt")
@click.option("--n", "n", default=100, show_default=True, help="How many answers to sample.")
@_model_option
@click.option("--adapter", "-a", default=None, metavar="DIR", help="Sample through this LoRA adapter (peft directory).")
@click.option("--seed", default=0, show_default=True, help="Run seed: the same seed gives the same answers.")
@click.option("--temperature", "-t", default=1.0, show_default=True)
@click.option("--max-tokens", default=16, show_default=True, help="Longest answer, in tokens.")
@click.option("--top", default=20, show_default=True, help="Rows in the frequency table.")
@click.option("--engine", type=click.Choice(["vllm", "openai"]), default="vllm", show_default=True)
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
    from .sample import check_sample_args, sample as run_sample

    check_sample_args(prompt, n, temperature, max_tokens)  # fail before the engine starts
    if adapter:
        check_adapter(adapter)
    kwargs = {"endpoints": endpoint} if engine == "openai" else {}
    with _quiet_stdout(as_json) as emit:
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
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.n} answers to: {result.prompt!r}")
    table.add_column("answer")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    table.add_column("")
    for answer, count in result.counts.most_common(top):
        share = count / result.n
        table.add_row(repr(answer) if answer else "(empty)", str(count), f"{share:.1%}", "█" * max(1, round(40 * share)))
    if result.distinct > top:
        table.add_row(f"… {result.distinct - top} more", "", "", "")
    console = Console()
    console.print(table)
    console.print(f"distinct answers: [bold]{result.distinct}[/] of {result.n}   "
                  f"top answer share: [bold]{result.top_share:.1%}[/]   "
                  f"entropy: {result.entropy_bits:.2f} bits   "
                  f"cut at --max-tokens: {result.unfinished}")
