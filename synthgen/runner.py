"""One generation run from options to summary: the path `synthgen generate` and `synthgen
biographies` share, and the library entry point for the same thing.

    opts = RunOptions("biography", n=100, out="bios.jsonl", seed=0)
    run = prepare(opts)                 # every input checked, nothing started yet (fast errors)
    build_auto(run)                     # adapter: auto fields trained where not cached
    summary = execute(run)              # engine started, records written, engine closed
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

from .errors import InputError
from .generate import FieldProgress, Fill, Summary, check_settings, compile_tries, run, run_settings
from .output import Plan, plan_run, resize
from .template import Template


@dataclass
class RunOptions:
    template: str  # a YAML path or a packaged template's name
    n: int
    out: str
    seed: int = 0
    fmt: str | None = None  # default: from the suffix of `out` (.parquet), else jsonl
    no_adapters: bool = False
    decode: str | None = None  # constrained | free for every choice/date field; None: each field's own
    retries: int | None = None
    resume: bool = False
    overwrite: bool = False
    block_size: int = 1024
    model: str | None = None
    engine: str = "vllm"
    endpoints: tuple[str, ...] = ()
    ray: str | None = None  # run on Ray: "local", "auto" or a cluster address (distributed.RayPool)
    actors: int | None = None
    cpus_per_actor: float | None = None
    gpus_per_actor: float | None = None
    dtype: str | None = None  # the engine's; None: SYNTHGEN_DTYPE, else bf16 on a GPU, else measured on this CPU

    @classmethod
    def from_options(cls, template: str, options: dict) -> "RunOptions":
        """From the CLI's options, named as the fields (--endpoint: repeatable; others are ignored)."""
        given = {f.name: options[f.name] for f in fields(cls) if f.name in options and f.name != "endpoints"}
        return cls(template, **given, endpoints=tuple(options.get("endpoint", ())))


@dataclass
class Prepared:
    opts: RunOptions
    template: Template
    plan: Plan
    model: str | None  # resolved (in-process vLLM) or as given (servers)
    tries: dict[str, str] | None  # decode tries, compiled before the engine when the tokenizer is local
    engine_kwargs: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # one line each, printed before the run starts

    @property
    def todo(self) -> int:
        return max(0, self.opts.n - self.plan.start)

    @property
    def needs_auto(self) -> bool:
        """`adapter: auto` fields to resolve (train, or find cached) before records can be made."""
        return not self.opts.no_adapters and self.todo > 0 and any(f.adapter == "auto" for f in self.template.fields)


def prepare(opts: RunOptions) -> Prepared:
    """Check everything a run needs before an engine starts: options, template, adapters (built for
    this base model), decode tries (lists too long for max_tokens), the output and, on --resume,
    that the run's settings match the file's."""
    from .engine import check_adapter
    from .models import load_tokenizer, resolve_model
    from .template import load_template

    fmt = opts.fmt or output_format(opts.out)
    if opts.resume and opts.overwrite:
        raise InputError("--resume and --overwrite contradict each other: pick one")
    if opts.retries is not None and opts.retries < 0:
        raise InputError(f"--retries must be >= 0, got {opts.retries}")
    if opts.block_size < 1:
        raise InputError(f"--block-size must be >= 1, got {opts.block_size}")
    shares = {"--actors": (opts.actors, lambda v: v >= 1, ">= 1"), "--cpus-per-actor": (opts.cpus_per_actor, lambda v: v > 0, "> 0"),
              "--gpus-per-actor": (opts.gpus_per_actor, lambda v: v >= 0, ">= 0")}
    for flag, (value, ok, rule) in shares.items():
        if value is not None and opts.ray is None:
            raise InputError(f"{flag} sizes a Ray run: add --ray")
        if value is not None and not ok(value):
            raise InputError(f"{flag} must be {rule}, got {value:g}")
    if opts.ray is not None:
        if opts.engine != "vllm":
            raise InputError("--ray runs in-process vLLM engines on its actors: it does not combine with --engine openai")
        from .distributed import import_ray

        import_ray()  # not installed: the one-line error now, before anything starts
    template = load_template(opts.template, use_adapters=not opts.no_adapters).with_decode(opts.decode)
    auto = [f.name for f in template.fields if f.adapter == "auto"] if not opts.no_adapters else []
    if auto and opts.engine != "vllm":
        raise InputError(f"adapter: auto ({', '.join(auto)}) trains on this machine and needs --engine vllm; "
                         "with servers, build the adapter with `synthgen build-adapter` and serve it")
    model, tries, kwargs, dtype = opts.model, None, {}, None
    if opts.engine == "vllm":
        model = resolve_model(opts.model)
    # a bad --out (no such directory, a directory, an existing file without --resume/--overwrite) fails here,
    # before the adapters' checks, the tries and a first run's dtype measurement (a minute on a fresh machine)
    plan = plan_run(template, opts.out, opts.n, opts.seed, fmt=fmt, model=model if opts.engine == "vllm" else None,
                    use_adapters=not opts.no_adapters, existing="resume" if opts.resume else "overwrite" if opts.overwrite else "refuse")
    if opts.engine == "vllm":
        for path in template.adapters().values():
            check_adapter(path, model)  # refuses adapters trained for another base model, before vLLM starts
        tries = compile_tries(template, load_tokenizer(model))  # lists too long for max_tokens fail here
        # every field's adapter resident at once: pipelined records ask for all fields together, and
        # vLLM puts no more than max_loras adapters in one batch
        kwargs["max_loras"] = max(1, len(set(template.adapters().values())))
        from .engine.dtype import default_dtype

        dtype = opts.dtype or default_dtype(model)  # measured here on a machine's first run, before any engine starts
        if opts.ray is None or opts.dtype:
            kwargs["dtype"] = dtype  # without --dtype, Ray actors choose on their own machines
    else:
        kwargs["endpoints"] = tuple(opts.endpoints)
    if plan.start:  # a resume with options that change records fails here, before the engine starts
        check_settings(plan, run_settings(template, opts.retries, opts.block_size, dtype))
    warnings = adapter_warnings(template)
    if (notice := resize(plan, opts.n, opts.block_size)):  # a resume with another --n: refused here, or its last block redone
        warnings.append(notice)
    if opts.resume and not (plan.stream.exists() or plan.meta_path.exists() or plan.out.exists()):
        warnings.append(f"--resume: {opts.out} does not exist yet: starting a new run at record 0")
    return Prepared(opts, template, plan, model, tries, kwargs, warnings)


SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def output_format(out: str) -> str:
    """The format an --out suffix names; another suffix (a .csv we would not write) is a one-line error."""
    from pathlib import Path

    suffix = Path(out).suffix.lower()
    if suffix and suffix not in SUFFIXES:
        raise InputError(f"--out {out!r}: synthgen writes .jsonl or .parquet (or a directory with --format hf), "
                         f"not {suffix}: change the suffix or pass --format")
    return SUFFIXES.get(suffix, "jsonl")


def adapter_warnings(template: Template) -> list[str]:
    """One line per field whose adapter will not sample what its card measured: decoded free through an
    adapter that puts little of P's mass on its list, or asked in words its card did not audit."""
    from pathlib import Path

    from .card import free_decoding_warning_from, read_card, unaudited_prompt_warning_from

    out = []
    for f in template.fields:
        card = read_card(f.adapter_path) if f.adapter_path else None
        if card is None:
            continue
        name = Path(f.adapter_path).name
        if f.decode == "free" and (w := free_decoding_warning_from(card, name)):
            out.append(f"field {f.name!r}: {w}")
        if w := unaudited_prompt_warning_from(card, name, f.prompt):
            out.append(f"field {f.name!r}: {w}")
        if w := _other_list_warning(f, f.adapter if f.adapter and f.adapter != "auto" else name, template):
            out.append(f"field {f.name!r}: {w}")
    return out


def _other_list_warning(f, name: str, template: Template) -> str | None:
    """One line when a choice field's list is mostly outside the list its adapter was trained for
    (`adapter: careers` on a product category): what the adapter samples there was never measured."""
    from pathlib import Path

    from .errors import InputError
    from .lists import load_spec, load_targets
    from .paths import spec_file

    if f.kind != "choice" or f.given:
        return None
    path = spec_file(name, Path(template.path) if template.path else None)
    if path is None:
        return None  # no spec beside the adapter: nothing to compare with
    try:
        items, _ = load_targets(load_spec(path))
    except InputError:
        return None
    theirs = {str(x).casefold() for x in items}
    mine = list(f.lookup())
    common = sum(str(v).casefold() in theirs for v in mine)
    if common >= min(len(mine), len(theirs)) / 2:
        return None  # the same list, or one holding the other (first names: the SSA's top 1,000 of its 4,678)
    return (f"adapter {Path(name).name!r} was trained for another list ({common:,} of the field's {len(mine):,} values are "
            f"among its {len(theirs):,} targets): what it samples over this list is unmeasured; give the field its own "
            "adapter (adapter: auto) or the adapter's list (choices: {spec: NAME})")


def build_auto(prep: Prepared, on_step=None, on_note: Callable[[str], None] | None = None) -> None:
    """Train the `adapter: auto` fields that are not cached yet (a no-op when there are none)."""
    if not prep.needs_auto:
        return
    from .auto import ensure_auto_adapters

    prep.template, _ = ensure_auto_adapters(prep.template, prep.model, on_step=on_step, on_note=on_note)


def execute(prep: Prepared, on_field: FieldProgress | None = None) -> Summary:
    """Start the engine, generate records plan.start..n-1, close the engine; the summary includes
    the engine's start time."""
    from .engine import start_engine

    o = prep.opts
    if o.ray is not None:
        import time

        from .distributed import RayPool

        t0 = time.perf_counter()
        eng = RayPool(o.ray, model=prep.model, engine_kwargs=prep.engine_kwargs, actors=o.actors,
                      cpus_per_actor=o.cpus_per_actor, gpus_per_actor=o.gpus_per_actor)
        started = time.perf_counter() - t0  # Ray's start; the actors' engines start inside the run
    else:
        eng, started = start_engine(o.engine, prep.model, **prep.engine_kwargs)
        if not o.no_adapters:
            try:
                eng.check_adapters(list(prep.template.adapters().values()))  # a server that lacks one: before any record
            except BaseException:
                eng.close()
                raise
    try:
        # tries None (a remote engine): `run` compiles them with the engine's tokenizer
        fill = Fill(use_adapters=not o.no_adapters, retries=o.retries, on_field=on_field, tries=prep.tries)
        return run(prep.template, eng, prep.plan, o.n, o.seed, fill, block_size=o.block_size, engine_start_seconds=round(started, 1))
    finally:
        eng.close()
