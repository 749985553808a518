"""The training objective: its settings, what the card records, and the free-decoding guard."""


import pytest

from synthgen.errors import InputError
from synthgen.card import AdapterCard, free_decoding_warning
from synthgen.train_config import TrainConfig


def test_objectives_map_to_the_mass_term_and_bad_values_are_refused():
    assert TrainConfig().objective == "q" and TrainConfig().mass_term == 0.0  # the sampler's objective by default
    assert TrainConfig(objective="paper").mass_term is None
    assert TrainConfig(objective="mixed", mass_weight=0.25).mass_term == 0.25
    with pytest.raises(InputError, match="`objective` must be one of q, mixed, paper, got 'kl'"):
        TrainConfig(objective="kl")
    with pytest.raises(InputError, match=r"`mass_weight` must be in \[0, 1\], got 2"):
        TrainConfig(objective="mixed", mass_weight=2)


def _card(tmp_path, mass, objective):
    d = tmp_path / f"a_{objective}_{mass}"
    d.mkdir()
    AdapterCard(format="synthgen-adapter/1", base_model="smollm2-135m", base_fingerprint=None, lists=[{"adapter": {"mass": mass}}],
                capability={}, config={"objective": objective}, steps=1, stopped_early=False, train_seconds=1.0).write(d)
    return d


def test_an_adapter_with_little_free_mass_is_not_used_silently_with_free_decoding(tmp_path):
    """An adapter trained for Q may put almost nothing of P on its list: free decoding through it
    gets a one-line warning naming the objective; one with its mass on the list gets none."""
    from synthgen.runner import adapter_warnings
    from synthgen.template import load_template

    low, high = _card(tmp_path, 0.004, "q"), _card(tmp_path, 0.8, "paper")
    w = free_decoding_warning(low)
    assert "puts 0.4% of its free-sampling mass on its list (trained with --objective q" in w and "\n" not in w
    assert free_decoding_warning(high) is None and free_decoding_warning(tmp_path) is None  # no card: nothing to say
    tpl = tmp_path / "t.yaml"
    tpl.write_text(f"""
name: t
fields:
  - {{name: a, kind: choice, choices: [x, y], prompt: "A?", adapter: {low}}}
  - {{name: b, kind: choice, choices: [x, y], prompt: "B?", adapter: {low}, decode: free}}
  - {{name: c, kind: choice, choices: [x, y], prompt: "C?", adapter: {high}, decode: free}}
""")
    t = load_template(tpl)
    assert [w.split(":")[0] for w in adapter_warnings(t)] == ["field 'b'"]  # a: constrained; c: mass on list
    assert len(adapter_warnings(t.with_decode("free"))) == 2


def test_training_off_a_terminal_prints_a_plain_line_and_summarises_many_lists(capsys):
    """build-adapter under nohup or in a CI log: a line per interval and at the last step; a
    conditional spec's 14 lists are one summary (mean and worst loss - H), not 14 columns."""
    import math
    from types import SimpleNamespace

    from synthgen.render import train_progress
    from synthgen.train import StepLog

    tasks = [SimpleNamespace(spec=SimpleNamespace(name=f"l{i}"), entropy=1.0) for i in range(5)]
    bar, on_step = train_progress(3, every=3600)
    with bar:
        for step in (1, 2, 3):
            ema = {f"l{i}": 1.0 + math.log(2) * (i + 1) / 10 for i in range(step + 1)}
            on_step(StepLog(step, {}, {}, 2.0), ema, tasks)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["training: step 3/3 · 4/5 lists seen: loss - H(p*) mean 0.250 bits, worst 0.400 | 2.0s/step"]


def test_adapter_auto_trains_for_the_sampler():
    from synthgen.auto import auto_config

    assert auto_config().objective == "q"  # auto adapters are decoded inside their trie


def test_keep_term_is_kl_from_the_base_on_general_text_and_zero_for_an_untouched_adapter():
    """--keep-weight: KL(base || adapter) per token over train.KEEP_TEXTS, exact against a separate
    computation, zero for a fresh LoRA (B = 0), with a gradient once the adapter moves; none of the
    texts is the capability check's paragraph (the term must not fit the check itself)."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from synthgen.audit import GENERAL_PARAGRAPH
    from synthgen.train import KEEP_TEXTS, Keep

    assert GENERAL_PARAGRAPH not in KEEP_TEXTS and len(KEEP_TEXTS) >= 2
    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=61, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2))
    model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))

    def tok(text, add_special_tokens=False):
        return {"input_ids": [ord(c) % 61 for c in text[:40]]}

    keep = Keep(model, tok)
    assert float(keep.kl(model, 0)) == pytest.approx(0.0, abs=1e-6)  # lora_B starts at zero: the adapter is the base
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    kl = keep.kl(model, 1)
    kl.backward()
    ids = torch.tensor([tok(KEEP_TEXTS[1])["input_ids"]])
    with torch.no_grad():
        q = torch.log_softmax(model(input_ids=ids).logits.double(), -1)[0].numpy()
        with model.disable_adapter():
            p = torch.log_softmax(model(input_ids=ids).logits.double(), -1)[0].numpy()
    by_hand = float(np.mean([(np.exp(p[t]) * (p[t] - q[t])).sum() for t in range(len(p))]))
    assert float(kl) == pytest.approx(by_hand, rel=1e-4) and by_hand > 1e-4
    grads = [p.grad for n, p in model.named_parameters() if "lora_" in n]
    assert grads and all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    with pytest.raises(InputError, match=r"`keep_weight` must be in \[0, 10\], got -1"):
        TrainConfig(keep_weight=-1)


def test_a_field_asking_its_adapter_in_words_its_card_did_not_audit_gets_a_warning(tmp_path):
    """The card's KL is measured on its prompts; a template field asking in other words gets one line
    (placeholders match any text: a conditional adapter's audited prompts are filled-in forms)."""
    from synthgen.card import unaudited_prompt_warning
    from synthgen.runner import adapter_warnings
    from synthgen.template import load_template

    d = tmp_path / "a"
    d.mkdir()
    AdapterCard(format="synthgen-adapter/1", base_model="smollm2-135m", base_fingerprint=None,
                lists=[{"prompts": ["Pick a random last name. Answer with the surname only."], "adapter": {"mass": 0.5}},
                       {"prompts": ["Pick a name for a female person born in the 1940s."], "adapter": {"mass": 0.5}}],
                capability={}, config={"objective": "q"}, steps=1, stopped_early=True, train_seconds=1.0).write(d)
    assert unaudited_prompt_warning(d, "Pick a random last name. Answer with the surname only.") is None
    assert unaudited_prompt_warning(d, "Pick a name for a {gender} person born in the {birth_date:.3}0s.") is None
    w = unaudited_prompt_warning(d, "Pick a random last name for a person named {first_name}. Answer with the surname only.")
    assert "'a' is asked in words its card did not audit" in w and "synthgen audit" in w and "\n" not in w
    assert unaudited_prompt_warning(d, "Pick a random last name.") is not None  # a prefix is not the prompt
    assert unaudited_prompt_warning(tmp_path, "x") is None  # no card: nothing to compare with
    tpl = tmp_path / "t.yaml"
    tpl.write_text(f"""
name: t
fields:
  - {{name: first, kind: choice, choices: [Ann, Bo], prompt: "Pick a random last name. Answer with the surname only.", adapter: {d}}}
  - {{name: last, kind: choice, choices: [Ann, Bo], prompt: "Pick a random last name for {{first}}.", adapter: {d}}}
""")
    assert [w.split(":")[0] for w in adapter_warnings(load_template(tpl))] == ["field 'last'"]


def test_an_adapter_put_on_another_list_is_named_in_one_line(tmp_path):
    """`adapter: careers` on a product-category field samples a distribution nobody measured: one line says so;
    the shipped adapters on their own lists (or a list holding theirs: first names) say nothing."""
    from synthgen.runner import adapter_warnings
    from synthgen.template import load_template

    tpl = tmp_path / "t.yaml"
    tpl.write_text("""
name: t
fields:
  - {name: category, kind: choice, choices: [books, toys, shoes], adapter: careers,
     prompt: "Pick a random career. Answer with the job title only."}
  - {name: name, kind: choice, choices: {builtin: first_names}, adapter: first_names,
     prompt: "Pick a random first name. Answer with the name only."}
""")
    w = adapter_warnings(load_template(tpl))
    assert len(w) == 1 and w[0].startswith("field 'category': adapter 'careers' was trained for another list "
                                           "(0 of the field's 3 values are among its 1,156 targets)"), w
    assert adapter_warnings(load_template("biography")) == [] and adapter_warnings(load_template("customer_profile")) == []
