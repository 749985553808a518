"""The engine's dtype: the decision on timings, the stored choice, the override, the real measurement."""

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from synthgen.engine import dtype as D
from synthgen.errors import EngineError
from synthgen.machine import load_entry


def test_choose_takes_bf16_only_when_it_is_faster_by_more_than_the_margin():
    assert D.choose({"float32": 10.0, "bfloat16": 6.0}) == "bfloat16"
    assert D.choose({"float32": 10.0, "bfloat16": 9.8}) == "float32"  # within MARGIN: the exact dtype
    assert D.choose({"float32": 10.0, "bfloat16": 10.0 / D.MARGIN + 0.01}) == "float32"
    assert D.choose({"float32": 10.0, "bfloat16": 10.0 / D.MARGIN - 0.01}) == "bfloat16"
    assert D.choose({"float32": 6.0, "bfloat16": 10.0}) == "float32"  # bf16 slower (AVX2-like)
    assert D.choose({"float32": 10.0, "bfloat16": None}) == "float32"  # bf16 failed to start
    assert D.choose({"float32": None, "bfloat16": 10.0}) == "bfloat16"
    assert D.choose({"float32": float("nan"), "bfloat16": float("inf")}) == "float32"


def test_bf16_path_from_cpu_flags():
    assert D.has_bf16_path({"avx2", "avx512f", "avx512_bf16"})
    assert D.has_bf16_path({"avx2", "amx_bf16"})
    assert not D.has_bf16_path({"avx2", "fma", "avx512f", "avx512_vnni"})


def _fake_children(monkeypatch, seconds: dict, calls: list):
    def child(dtype, model):
        calls.append(dtype)
        s = seconds[dtype]
        if s is None:
            return SimpleNamespace(returncode=1, stdout="", stderr="Traceback ...\nRuntimeError: no bf16 kernel\n")
        return SimpleNamespace(returncode=0, stdout="noise\nROW " + json.dumps({"dtype": dtype, "seconds": s}) + "\n",
                               stderr="")

    monkeypatch.setattr(D, "_child", child)


@pytest.fixture
def bf16_cpu(monkeypatch, tmp_path):
    monkeypatch.delenv("SYNTHGEN_DTYPE", raising=False)
    monkeypatch.setattr(D, "on_gpu", lambda: False)
    monkeypatch.setattr(D, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    model = tmp_path / "fake-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return str(model)


def test_first_use_measures_stores_and_later_calls_read_the_stored_choice(bf16_cpu, monkeypatch):
    calls, lines = [], []
    _fake_children(monkeypatch, {"float32": 12.0, "bfloat16": 5.0}, calls)
    assert D.default_dtype(bf16_cpu, say=lines.append) == "bfloat16"
    assert calls == ["float32", "bfloat16"]
    assert "measuring which dtype" in lines[0] and "float32 12.0 s, bfloat16 5.0 s -> bfloat16" in lines[1]
    entry = load_entry(bf16_cpu, "dtype")
    assert entry["choice"] == "bfloat16" and entry["seconds"] == {"float32": 12.0, "bfloat16": 5.0}
    # cached: no child starts again, whatever the timings would now say
    _fake_children(monkeypatch, {"float32": 1.0, "bfloat16": 50.0}, calls)
    assert D.default_dtype(bf16_cpu) == "bfloat16" and len(calls) == 2


def test_a_failing_bf16_engine_keeps_fp32_and_says_why(bf16_cpu, monkeypatch):
    calls = []
    _fake_children(monkeypatch, {"float32": 12.0, "bfloat16": None}, calls)
    assert D.default_dtype(bf16_cpu, say=lambda _: None) == "float32"
    assert load_entry(bf16_cpu, "dtype")["errors"] == {"bfloat16": "RuntimeError: no bf16 kernel"}


def test_both_failing_is_one_line_error(bf16_cpu, monkeypatch):
    _fake_children(monkeypatch, {"float32": None, "bfloat16": None}, [])
    with pytest.raises(EngineError, match="vLLM failed to start in both dtypes"):
        D.default_dtype(bf16_cpu, say=lambda _: None)
    assert load_entry(bf16_cpu, "dtype") is None  # nothing stored: the next run measures again


def test_override_gpu_and_cpus_without_bf16_never_measure(bf16_cpu, monkeypatch):
    calls = []
    _fake_children(monkeypatch, {"float32": 12.0, "bfloat16": 5.0}, calls)
    monkeypatch.setenv("SYNTHGEN_DTYPE", "float32")
    assert D.default_dtype(bf16_cpu) == "float32"
    monkeypatch.setenv("SYNTHGEN_DTYPE", "fp64")
    with pytest.raises(EngineError, match="SYNTHGEN_DTYPE='fp64': use float32, bfloat16 or float16"):
        D.default_dtype(bf16_cpu)
    monkeypatch.delenv("SYNTHGEN_DTYPE")
    monkeypatch.setattr(D, "cpu_flags", lambda: {"avx2", "fma"})
    assert D.default_dtype(bf16_cpu) == "float32"
    monkeypatch.setattr(D, "on_gpu", lambda: True)
    assert D.default_dtype(bf16_cpu) == "bfloat16"
    assert calls == [] and load_entry(bf16_cpu, "dtype") is None


@pytest.mark.integration
def test_dtype_flag_reaches_the_resume_check_one_line_before_any_engine(model_dir, tmp_path, monkeypatch):
    """A file made in float32, resumed with --dtype bfloat16: refused in one line, the file untouched."""
    from click.testing import CliRunner

    from synthgen.cli import cli
    from synthgen.engine import FakeEngine
    from synthgen.generate import run
    from synthgen.output import plan_run
    from synthgen.template import load_template

    from .test_generate import TINY, responder, write

    path = write(tmp_path, TINY)
    t = load_template(path)
    out = tmp_path / "o.jsonl"
    eng = FakeEngine(responder=responder, per_step=3)
    eng.dtype = "float32"
    run(t, eng, plan_run(t, out, 6, 0, model=model_dir), 6, 0, block_size=4)
    before = out.read_bytes()
    lines = before.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:3]))
    monkeypatch.delenv("SYNTHGEN_DTYPE", raising=False)
    r = CliRunner().invoke(cli, ["generate", str(path), "--n", "6", "--out", str(out), "--resume", "--block-size", "4",
                                 "--dtype", "bfloat16"])
    assert r.exit_code == 1 and r.output.count("\n") == 1, r.output
    assert "different dtype (SYNTHGEN_DTYPE) ('float32', this run: 'bfloat16')" in r.output
    assert out.read_bytes() == b"".join(lines[:3])


@pytest.mark.integration
def test_the_real_measurement_on_this_machine(model_dir, monkeypatch):
    """Where this CPU has a bf16 path, vLLM is timed in both dtypes once (later runs in this session read
    it); elsewhere fp32 without a measurement. Either way the choice is what `choose` says of the timings."""
    monkeypatch.delenv("SYNTHGEN_DTYPE", raising=False)
    got = D.default_dtype(model_dir)
    entry = load_entry(model_dir, "dtype")
    if not D.has_bf16_path(D.cpu_flags()):
        assert got == "float32" and entry is None
        return
    assert entry["choice"] == got == D.choose(entry["seconds"])
    assert all(entry["seconds"][d] > 0 for d in D.MEASURED), entry
    r = subprocess.run([sys.executable, "-c", "from synthgen.engine.dtype import default_dtype as d; print(d())"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == got and "measuring" not in r.stderr


def test_isa_names_what_decides_the_dtype():
    from synthgen.machine import isa

    assert isa({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"}) == "AVX512-BF16 + VNNI"
    assert isa({"avx2", "amx_bf16", "avx512_bf16"}) == "AMX + AVX512-BF16"
    assert isa({"avx2", "fma"}) == "AVX2 only" and isa(set()) == "no AVX2"
