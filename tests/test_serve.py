"""`synthgen serve`: which adapters a server gets and the flags it starts with; clients that find out,
before writing anything, that a server lacks an adapter. (The server itself starts in
tests/test_openai_server.py, from the same ServePlan.)"""

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from synthgen import serve
from synthgen.cli import cli
from synthgen.engine.openai_engine import OpenAIEngine
from synthgen.engine.vllm_engine import id_list
from synthgen.errors import EngineError, InputError
from synthgen.machine import cores

ROOT = Path(__file__).resolve().parent.parent


def test_a_template_is_served_with_every_adapter_it_needs_named_by_directory():
    adapters = serve.served_adapters([])  # no names: the biography
    assert sorted(adapters) == ["birth_dates", "careers_by_sex", "first_names_by_decade", "gender", "surnames",
                                "us_birth_places"]
    assert all(Path(p).name == n and (Path(p) / "adapter_config.json").is_file() for n, p in adapters.items())
    both = serve.served_adapters(["customer_profile", str(ROOT / "adapters" / "gender"), "numbers_1_100"])
    assert sorted(both) == ["first_names", "gender", "numbers_1_100"]  # a template, a directory, a shipped name


def test_a_name_that_is_neither_template_nor_adapter_is_one_line():
    res = CliRunner().invoke(cli, ["serve", "no_such_thing", "--dry-run"])
    assert res.exit_code == 1 and "'no_such_thing' is neither a template nor an adapter" in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output


def test_two_adapters_with_one_name_are_refused(tmp_path):
    other = tmp_path / "gender"
    other.mkdir()
    (other / "adapter_config.json").write_text('{"r": 8}')
    with pytest.raises(InputError, match="two adapters would be served as 'gender'"):
        serve.served_adapters(["biography", str(other)])


def test_the_cpu_command_carries_the_flags_the_in_process_engine_uses_and_a_gpu_none():
    adapters = {"gender": str(ROOT / "adapters" / "gender"), "surnames": str(ROOT / "adapters" / "surnames")}
    cpu = serve.ServePlan(model="/m", adapters=adapters, host="127.0.0.1", port=8123, dtype="bfloat16", gpu=False)
    cmd = cpu.command()
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(cmd)
    for flag in ("--model /m", "--port 8123", "--dtype bfloat16", "--enable-lora", "--max-loras 2",
                 "--logits-processors synthgen.engine.trie_processor:TrieLogitsProcessor",
                 f"gender={adapters['gender']}", "--no-enable-chunked-prefill", "--block-size 32", "--enforce-eager"):
        assert flag in joined, flag
    # vLLM refuses a batch budget below the model length (the README's old command did not start)
    assert int(cmd[cmd.index("--max-num-batched-tokens") + 1]) >= int(cmd[cmd.index("--max-model-len") + 1])
    gpu = serve.ServePlan(model="/m", adapters={}, host="0.0.0.0", port=1, dtype="bfloat16", gpu=True).command()
    assert "--enforce-eager" not in gpu and "--enable-lora" not in gpu and "--block-size" not in gpu
    assert cpu.environment()["VLLM_CPU_OMP_THREADS_BIND"] == id_list(cores())  # a thread per core it may use


def test_the_engine_binds_its_threads_to_the_cores_it_may_use():
    """A process kept to its last core (`taskset -c N`) binds vLLM's threads there, not to core 0."""
    import subprocess
    import sys

    assert id_list([0]) == "0" and id_list([1]) == "1" and id_list([0, 1]) == "0-1"
    assert id_list([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        pytest.skip("needs two cores to keep a process off core 0")
    last = os.cpu_count() - 1  # the machine's, not this (maybe pinned) worker's
    r = subprocess.run([sys.executable, "-c", "from synthgen.engine.vllm_engine import cpu_settings; "
                        "print(cpu_settings()['VLLM_CPU_OMP_THREADS_BIND'])"],
                       preexec_fn=lambda: os.sched_setaffinity(0, {last}), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == [str(last)], r.stderr[-2000:]


class _Models:
    def __init__(self, ids):
        self.models = SimpleNamespace(list=lambda: [SimpleNamespace(id=i) for i in ids])

    def with_options(self, **_):
        return self


def test_a_client_names_every_adapter_the_server_lacks_at_once():
    eng = OpenAIEngine.__new__(OpenAIEngine)  # without its start (which asks a server for its model)
    eng.endpoints, eng.timeout, eng.max_retries = ["http://a:1/v1", "http://b:2/v1"], 1.0, 0
    eng._clients = [_Models(["m", "gender", "surnames", "birth_dates"]), _Models(["m", "gender"])]
    eng.check_adapters(["/x/gender"])
    with pytest.raises(EngineError) as e:
        eng.check_adapters(["/x/gender", "/y/surnames", "/z/birth_dates"])
    assert str(e.value).startswith("http://b:2/v1 does not serve the adapter(s) surnames, birth_dates that the template")
    assert "synthgen serve" in str(e.value)


def test_a_missing_trie_on_the_server_is_named_with_its_path():
    """vLLM may answer a missing trie file as HTTP 400 with the path redacted: the client names it."""
    import httpx
    import openai

    from synthgen.engine import Request

    class Chat:
        def create(self, **_):
            resp = httpx.Response(400, request=httpx.Request("POST", "http://a:1/v1/chat/completions"),
                                  text='{"message": "synthgen_trie: trie file <path> does not exist on this server"}')
            raise openai.BadRequestError("bad", response=resp, body=None)

    eng = OpenAIEngine.__new__(OpenAIEngine)
    eng.endpoints, eng.timeout, eng.max_retries, eng.model = ["http://a:1/v1"], 1.0, 0, "m"
    eng._clients = [SimpleNamespace(chat=SimpleNamespace(completions=Chat()))]
    with pytest.raises(EngineError) as e:
        eng._one(0, Request("Pick one.", trie="/home/me/.cache/synthgen/tries/abc.trie"))
    assert "answered HTTP 400" in str(e.value) and "the request's trie: /home/me/.cache/synthgen/tries/abc.trie" in str(e.value)


@pytest.mark.integration
def test_serve_starts_says_where_and_stops_cleanly_on_ctrl_c(model_dir, tmp_path):
    """`synthgen serve adapters/gender`: the server answers, lists the adapter under its name, the CLI prints the
    endpoint and the command to use; SIGINT stops both, exit 0, nothing left listening."""
    import json
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "serve.log"
    env = os.environ | {"SYNTHGEN_DTYPE": "float32"}
    with open(log, "w") as fh:
        # SIGINT's default action in the child: a suite started in the background (nohup) ignores SIGINT, children
        # inherit that, and Python then installs no KeyboardInterrupt handler (as in test_overwrite)
        proc = subprocess.Popen([sys.executable, "-m", "synthgen", "serve", str(ROOT / "adapters" / "gender"), "--port", str(port)],
                                stdout=fh, stderr=subprocess.STDOUT, env=env,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 300
        while "stop it with Ctrl-C" not in log.read_text():
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(2)
        text = log.read_text()
        assert f"at http://127.0.0.1:{port}/v1 with adapters: gender" in text
        assert f"--engine openai --endpoint http://127.0.0.1:{port}" in text
        models = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=10))
        assert "gender" in {m["id"] for m in models["data"]}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
