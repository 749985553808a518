import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from synthgen.engine import FakeEngine, Request, create_engine, derive_seed
from synthgen.engine.openai_engine import OpenAIEngine
from synthgen.errors import EngineError, InputError
from synthgen.sample import sample


def test_derive_seed_is_stable_and_distinct():
    assert derive_seed(7, "sample", 0) == derive_seed(7, "sample", 0)
    seeds = {derive_seed(7, "sample", i) for i in range(1000)}
    assert len(seeds) == 1000 and all(0 <= s < 2**31 for s in seeds)
    assert derive_seed(7, "sample", 0) != derive_seed(8, "sample", 0)


def test_sample_counts_answers_and_uses_one_seed_per_draw():
    eng = FakeEngine()
    eng.enqueue("7", " 7\n", "3", "The number is 7")
    res = sample(eng, "Pick a number", 4, seed=1)
    assert res.counts == {"7": 2, "3": 1, "The number is 7": 1}
    assert res.distinct == 3 and res.top_share == 0.5
    assert len({r.seed for r in eng.history}) == 4
    assert res.to_dict()["answers"][0] == {"answer": "7", "count": 2, "share": 0.5, "finished": True,
                                                "finished_count": 2}


@pytest.mark.parametrize("kwargs,msg", [({"n": 0}, "--n must be >= 1"), ({"prompt": " "}, "prompt is empty"),
                                        ({"temperature": -1}, "--temperature"), ({"max_tokens": 0}, "--max-tokens")])
def test_sample_bad_input(kwargs, msg):
    args = {"prompt": "hi", "n": 3} | kwargs
    with pytest.raises(InputError, match=msg):
        sample(FakeEngine(responder=lambda r: "x"), args.pop("prompt"), args.pop("n"), **args)


def test_sample_separates_finished_from_cut_answers():
    from synthgen.engine.base import Completion

    class Cutting(FakeEngine):
        def generate(self, requests, progress=None):
            texts = ["7", "7", "The number I would pick is", "3"]
            return [Completion(t, "length" if t.startswith("The") else "stop") for t in texts]

    res = sample(Cutting(), "Pick", 4)
    assert res.unfinished == 1 and res.distinct == 3 and res.distinct_finished == 2
    assert res.finished == {"7": 2, "3": 1}


def test_unknown_engine():
    with pytest.raises(InputError, match="unknown engine"):
        create_engine("tgi")


def test_vllm_missing_gives_install_hint(monkeypatch):
    import builtins

    from synthgen.engine import vllm_engine

    real_import = builtins.__import__

    def no_vllm(name, *a, **k):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(EngineError, match="vLLM is not installed: run `make setup`"):
        vllm_engine.import_vllm()


class _FakeOpenAI(BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *a):
        pass

    def _send(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send({"data": [{"id": "base-model", "parent": None}, {"id": "names", "parent": "base-model"}]})

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.server.server_port, payload))
        text = f"{payload['model']}:{payload['seed']}"
        self._send({"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                    "usage": {"completion_tokens": 2}})


@pytest.fixture
def openai_servers():
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI) for _ in range(2)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    _FakeOpenAI.seen = []
    yield [f"http://127.0.0.1:{s.server_port}" for s in servers]
    for s in servers:
        s.shutdown()


def test_openai_engine_shards_keeps_order_and_sends_seeds(openai_servers):
    eng = OpenAIEngine(openai_servers)
    assert eng.model == "base-model"
    reqs = [Request("q", seed=i, adapter="/some/where/names" if i % 3 == 0 else None) for i in range(10)]
    out = eng.generate(reqs)
    assert [c.text for c in out] == [f"{'names' if i % 3 == 0 else 'base-model'}:{i}" for i in range(10)]
    ports = {port for port, _ in _FakeOpenAI.seen}
    assert len(ports) == 2  # both endpoints got work
    assert all(p["messages"][-1] == {"role": "user", "content": "q"} for _, p in _FakeOpenAI.seen)


def test_openai_engine_prefill_continues_an_assistant_message(openai_servers):
    """Request.prefill: the reply starts with the given text (vLLM's continue_final_message)."""
    eng = OpenAIEngine(openai_servers[:1])
    eng.generate([Request("Describe a person.", seed=1, prefill="Gender:"), Request("plain", seed=2)])
    first, second = sorted((p for _, p in _FakeOpenAI.seen), key=lambda p: p["seed"])
    assert first["messages"][-2:] == [{"role": "user", "content": "Describe a person."},
                                      {"role": "assistant", "content": "Gender:"}]
    assert first["continue_final_message"] is True and first["add_generation_prompt"] is False
    assert second["messages"][-1] == {"role": "user", "content": "plain"} and "continue_final_message" not in second


def test_openai_engine_unreachable_is_clear():
    with pytest.raises(EngineError, match="cannot reach .* is the vLLM server running"):
        OpenAIEngine(["http://127.0.0.1:9"])


class _FlakyOpenAI(_FakeOpenAI):
    """Deterministic answers by seed, like a seeded server; the first attempt of every third request
    fails: HTTP 503, HTTP 429 (both with Retry-After) or a dropped connection. `mode` "always503",
    "html" or "nochoices" fails every request that way."""

    attempts: dict = {}
    mode = "flaky"

    def _fail(self, code):
        self.send_response(code)
        self.send_header("retry-after-ms", "5")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = (payload["seed"], payload["messages"][-1]["content"])
        n = self.attempts[key] = self.attempts.get(key, 0) + 1
        if self.mode == "always503":
            return self._fail(503)
        if self.mode == "html":
            body = b"<html>bad gateway</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.wfile.write(body)
        if self.mode == "nochoices":
            return self._send({"object": "error"})
        if n == 1 and payload["seed"] % 3 == 0:
            fault = payload["seed"] // 3 % 3
            if fault == 2:
                self.close_connection = True  # the connection drops, no answer
                return
            return self._fail(503 if fault == 0 else 429)
        from .test_generate import responder

        text = responder(Request(payload["messages"][-1]["content"], seed=payload["seed"]))
        self._send({"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                    "usage": {"completion_tokens": 3, "prompt_tokens": 9}})


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a client that hung up: not the CLI's output
        pass


@pytest.fixture
def flaky_server():
    s = _QuietServer(("127.0.0.1", 0), _FlakyOpenAI)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    _FlakyOpenAI.attempts, _FlakyOpenAI.mode = {}, "flaky"
    yield f"http://127.0.0.1:{s.server_port}"
    s.shutdown()


def test_a_run_through_a_failing_server_retries_and_writes_the_fault_free_records(flaky_server, tmp_path):
    from synthgen.generate import run
    from synthgen.output import plan_run
    from synthgen.template import load_template

    from .test_generate import TINY, responder, write

    t = load_template(write(tmp_path, TINY))
    ref, out = tmp_path / "ref.jsonl", tmp_path / "out.jsonl"
    run(t, FakeEngine(responder=responder), plan_run(t, ref, 30, 4), 30, 4, block_size=8)
    eng = OpenAIEngine([flaky_server])
    s = run(t, eng, plan_run(t, out, 30, 4), 30, 4, block_size=8)
    eng.close()
    retried = sum(v > 1 for v in _FlakyOpenAI.attempts.values())
    assert retried >= 10 and max(_FlakyOpenAI.attempts.values()) == 2  # a third failed once, then succeeded
    assert out.read_bytes() == ref.read_bytes() and s.new_records == 30  # none lost, none twice, same records


@pytest.mark.parametrize("mode,message", [("always503", "answered HTTP 503"),
                                          ("html", "sent a reply that is not an OpenAI completion"),
                                          ("nochoices", "sent a reply that is not an OpenAI completion")])
def test_spent_retries_and_replies_that_are_not_completions_are_one_line(flaky_server, tmp_path, mode, message):
    from click.testing import CliRunner

    from synthgen.cli import cli

    from .test_generate import TINY, write

    _FlakyOpenAI.mode = mode
    out = tmp_path / "o.jsonl"
    r = CliRunner().invoke(cli, ["generate", str(write(tmp_path, TINY)), "--n", "4", "--out", str(out),
                                 "--engine", "openai", "--endpoint", flaky_server])
    assert r.exit_code == 1 and "Traceback" not in r.output and message in r.output, r.output
    assert r.output.strip().count("\n") == 0 or r.output.splitlines()[-1].startswith("Error:"), r.output
    if mode == "always503":
        assert max(_FlakyOpenAI.attempts.values()) == 1 + 6  # the client's retries, spent
