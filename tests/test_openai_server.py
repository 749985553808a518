"""The OpenAI engine against a real vLLM OpenAI server on 127.0.0.1 (base model and a LoRA module)."""

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from synthgen.engine import Request
from synthgen.engine.openai_engine import OpenAIEngine
from synthgen.serve import ServePlan

from .conftest import PROMPTS

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_dir, random_adapter, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    # the command `synthgen serve` runs (so its flags are proven to start a server), fp32 as the in-process tests
    plan = ServePlan(model=model_dir, adapters={"random_lora": random_adapter, "gender": str(ROOT / "adapters" / "gender"),
                                                "first_names": str(ROOT / "adapters" / "first_names")},
                     host="127.0.0.1", port=port, dtype="float32", gpu=False)
    cmd, env = plan.command(), plan.environment()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vLLM server exited: {log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url + "/v1/models", timeout=2)
            break
        except OSError:
            time.sleep(2)
    else:
        proc.kill()
        pytest.fail("vLLM server did not start in 300 s")
    yield url
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_openai_engine_matches_in_process_vllm(server, vllm_engine, random_adapter):
    """Greedy answers over HTTP (base and LoRA module) equal the in-process engine's."""
    eng = OpenAIEngine([server])
    reqs = [Request(p, max_tokens=12, temperature=0.0, adapter=a) for p in PROMPTS for a in (None, random_adapter)]
    remote = [c.text for c in eng.generate(reqs)]
    local = [c.text for c in vllm_engine.generate(reqs)]
    assert remote == local
    assert remote[0] != remote[1] or remote[2] != remote[3]  # the LoRA module really answers


def test_openai_engine_continues_a_forced_opening_like_in_process_vllm(server, vllm_engine):
    """Request.prefill over HTTP (a final assistant message the server continues): the same greedy
    completion as the in-process engine's prefill, and not what the model says without it."""
    eng = OpenAIEngine([server])
    reqs = [Request("Write one sentence about the life of Ada Byrne, a female engineer.", max_tokens=16, temperature=0.0,
                    prefill=p) for p in ("Ada Byrne", None)]
    remote = [c.text for c in eng.generate(reqs)]
    local = [c.text for c in vllm_engine.generate(reqs)]
    assert remote == local and remote[0] != remote[1]
    assert not remote[0].lstrip().startswith("Ada Byrne")  # the completion goes on from the opening


def test_openai_engine_seeds_are_reproducible(server):
    eng = OpenAIEngine([server, server])  # two "endpoints": requests are sharded across them
    reqs = [Request(PROMPTS[0], max_tokens=6, seed=i) for i in range(12)]
    a = [c.text for c in eng.generate(reqs)]
    b = [c.text for c in eng.generate(reqs)]
    assert a == b and len(set(a)) > 1


def test_a_run_learns_before_writing_anything_that_the_server_lacks_adapters(server, tmp_path):
    """The biography needs six adapters; this server has two of them: one line names the other four, no file."""
    from click.testing import CliRunner

    from synthgen.cli import cli

    out = tmp_path / "bios.jsonl"
    res = CliRunner().invoke(cli, ["biographies", "--n", "2", "--out", str(out), "--engine", "openai", "--endpoint", server])
    assert res.exit_code == 1, res.output
    line = res.output.strip().splitlines()[-1]
    for name in ("birth_dates", "first_names_by_decade", "surnames", "us_birth_places", "careers_by_sex"):
        assert name in line, line
    assert "synthgen serve" in line and not list(tmp_path.iterdir())
