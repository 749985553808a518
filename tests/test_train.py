"""Diffuse training, audit and check-targets on the real embedded model."""

import json
import shutil

import pytest
from click.testing import CliRunner

from synthgen.cli import cli
from synthgen.engine import Request
from synthgen.errors import InputError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def numbers_adapter(model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "numbers_1_10"
    r = CliRunner().invoke(cli, ["build-adapter", "adapters/tasks/numbers_1_10.yaml", "--out", str(out),
                                 "--model", model_dir, "--steps", "15", "--prompts-per-step", "1", "--gamma", "0",
                                 "--objective", "paper"])  # sampled freely below: trained for P
    assert r.exit_code == 0, r.output
    return out


def test_q_objective_trains_the_sampled_distribution_and_the_card_says_so(numbers_adapter, model_dir, tmp_path):
    """The same 15 steps with --objective q: the card records it, and Q (what trie-constrained
    decoding samples) ends closer to p* than with the paper's objective, which spends its steps on
    P's mass off the list."""
    out = tmp_path / "q"
    r = CliRunner().invoke(cli, ["build-adapter", "adapters/tasks/numbers_1_10.yaml", "--out", str(out), "--model", model_dir,
                                 "--steps", "15", "--prompts-per-step", "1", "--gamma", "0", "--objective", "q"])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "synthgen_adapter.json").read_text())
    paper = json.loads((numbers_adapter / "synthgen_adapter.json").read_text())
    assert card["config"]["objective"] == "q" and paper["config"]["objective"] == "paper"
    q, p = card["lists"][0], paper["lists"][0]
    assert q["adapter"]["kl_q_target_bits"] < 0.5 * q["base"]["kl_q_target_bits"]
    assert q["adapter"]["kl_q_target_bits"] < p["adapter"]["kl_q_target_bits"]
    assert "q" in (out / "README.md").read_text()


def test_keep_weight_trains_through_the_cli_and_the_card_records_it(model_dir, tmp_path):
    """--keep-weight on the real model: the KL from the base on general text is 0 at the first step
    (a fresh LoRA is the base), positive once the adapter has moved, logged per step, recorded in the
    card and its README; the list still trains (Q moves towards p*)."""
    out = tmp_path / "keep"
    r = CliRunner().invoke(cli, ["build-adapter", "adapters/tasks/numbers_1_10.yaml", "--out", str(out), "--model", model_dir,
                                 "--steps", "8", "--prompts-per-step", "1", "--gamma", "0", "--keep-weight", "1"])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "synthgen_adapter.json").read_text())
    keeps = [h["keep"] for h in card["history"]]
    assert card["config"]["keep_weight"] == 1.0 and len(keeps) == 8
    assert keeps[0] == pytest.approx(0.0, abs=1e-6) and all(k > 0 for k in keeps[1:])
    assert card["lists"][0]["adapter"]["kl_q_target_bits"] < card["lists"][0]["base"]["kl_q_target_bits"]
    assert "1.0 x KL(base || adapter) on general text" in (out / "README.md").read_text()


def test_bf16_training_precision_matches_fp32_losses_and_the_card_records_it(model_dir, tmp_path):
    """--precision bf16 (autocast) vs fp32 on the same seed: the first step's loss (same init, same
    problem) agrees to 2 %, later steps stay close; the card says which ran; auto resolves
    from the CPU's flags."""
    from synthgen.train_config import TrainConfig

    cards = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        r = CliRunner().invoke(cli, ["build-adapter", "adapters/tasks/numbers_1_10.yaml", "--out", str(out), "--model",
                                     model_dir, "--steps", "4", "--prompts-per-step", "1", "--gamma", "0",
                                     "--precision", precision])
        assert r.exit_code == 0, r.output
        cards[precision] = json.loads((out / "synthgen_adapter.json").read_text())
        assert cards[precision]["training_precision"] == precision and cards[precision]["config"]["precision"] == precision
    first = [cards[p]["history"][0]["loss"]["numbers_1_10"] for p in ("fp32", "bf16")]
    last = [cards[p]["history"][-1]["loss"]["numbers_1_10"] for p in ("fp32", "bf16")]
    # 0.004 nats on an AMX Xeon, 0.043 (1.1 %) on a Zen 4 without AMX: bf16 kernels differ per CPU
    assert abs(first[0] - first[1]) < 0.02 * first[0], first
    assert abs(last[0] - last[1]) < 0.05 * last[0], last
    with pytest.raises(InputError, match="`precision` must be one of auto, fp32, bf16"):
        TrainConfig(precision="fp16")


def test_cosine_lr_schedule_runs_through_the_cli_and_the_card_records_each_steps_rate(model_dir, tmp_path):
    """--lr-schedule cosine: step 1 at --lr, the last step at --lr/10, falling in between; the history
    records the rate each step ran at, the card the schedule; constant stays at --lr."""
    from synthgen.train_config import TrainConfig

    rates = {}
    for schedule in ("constant", "cosine"):
        out = tmp_path / schedule
        r = CliRunner().invoke(cli, ["build-adapter", "adapters/tasks/numbers_1_10.yaml", "--out", str(out), "--model",
                                     model_dir, "--steps", "4", "--prompts-per-step", "1", "--gamma", "0", "--lr", "0.002",
                                     "--lr-schedule", schedule])
        assert r.exit_code == 0, r.output
        card = json.loads((out / "synthgen_adapter.json").read_text())
        assert card["config"]["lr_schedule"] == schedule
        rates[schedule] = [h["lr"] for h in card["history"]]
    assert rates["constant"] == [0.002] * 4
    assert rates["cosine"][0] == pytest.approx(0.002) and rates["cosine"][-1] == pytest.approx(0.0002)
    assert all(a > b for a, b in zip(rates["cosine"], rates["cosine"][1:]))
    assert TrainConfig(steps=3, lr=1.0, lr_schedule="cosine").lr_at(1) == pytest.approx(0.55)  # halfway: (1 + 0.1) / 2
    with pytest.raises(InputError, match="`lr_schedule` must be one of constant, cosine"):
        TrainConfig(lr_schedule="linear")


def test_auto_precision_follows_the_cpu(monkeypatch):
    import torch

    import synthgen.engine.dtype as D
    from synthgen.train_config import TrainConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(D, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert TrainConfig().resolved_precision() == "bf16"
    monkeypatch.setattr(D, "cpu_flags", lambda: {"avx2", "fma"})
    assert TrainConfig().resolved_precision() == "fp32" and TrainConfig(precision="bf16").resolved_precision() == "bf16"


def test_build_adapter_makes_numbers_diffuse(numbers_adapter):
    card = json.loads((numbers_adapter / "synthgen_adapter.json").read_text())
    lst = card["lists"][0]
    assert lst["name"] == "numbers_1_10" and card["steps"] == 15
    base, ad = lst["base"], lst["adapter"]
    assert ad["mass"] > 0.5 and ad["mass"] > 5 * base["mass"]
    assert ad["kl_bits"] < base["kl_bits"]
    assert ad["expected_distinct"]["100"] > base["expected_distinct"]["100"]
    cap = card["capability"]
    assert len(cap["answers"]) == 3 and cap["threshold"] == 1.5
    # the guard's verdict follows its ratio, and 15 steps at lr 5e-4 leave the model's English intact
    assert cap["perplexity_ratio"] == pytest.approx(cap["perplexity_adapter"] / cap["perplexity_base"], abs=2e-3)
    assert cap["degraded"] is False and 0.8 < cap["perplexity_ratio"] < cap["threshold"]
    assert card["base_fingerprint"] and (numbers_adapter / "adapter_model.safetensors").is_file()


def test_audit_cli_reproduces_the_card(numbers_adapter, model_dir):
    r = CliRunner().invoke(cli, ["audit", "adapters/tasks/numbers_1_10.yaml", "--adapter", str(numbers_adapter),
                                 "--model", model_dir, "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.output)[0]
    card = json.loads((numbers_adapter / "synthgen_adapter.json").read_text())["lists"][0]
    assert row["adapter"]["mass"] == pytest.approx(card["adapter"]["mass"], abs=1e-4)
    assert row["base"]["mass"] == pytest.approx(card["base"]["mass"], abs=1e-4)


def test_trained_adapter_samples_diffusely_on_vllm(numbers_adapter, vllm_engine):
    prompt = "Pick a random number between 1 and 10. Answer with the number only."
    valid = {str(i) for i in range(1, 11)}

    def distinct_valid(adapter):
        out = vllm_engine.generate([Request(prompt, max_tokens=6, seed=i, adapter=adapter) for i in range(100)])
        answers = [c.text.strip() for c in out if c.finish_reason == "stop"]
        return sum(a in valid for a in answers), len(set(answers) & valid)

    base_valid, base_distinct = distinct_valid(None)
    ad_valid, ad_distinct = distinct_valid(str(numbers_adapter))
    assert ad_valid >= 50 and ad_valid > 2 * base_valid
    assert ad_distinct >= 8 and ad_distinct >= base_distinct


def test_interrupt_and_resume(model_dir, tmp_path):
    from synthgen.lists import load_spec
    from synthgen.train import train
    from synthgen.train_config import TrainConfig

    spec = [load_spec("adapters/tasks/weekdays.yaml")]
    cfg = TrainConfig(steps=6, prompts_per_step=1, checkpoint_every=2, gamma=0)
    out = tmp_path / "weekdays"

    def stop_at_3(log, ema, tasks):
        if log.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model_dir, spec, out, cfg, on_step=stop_at_3)
    assert not out.exists() and (tmp_path / "weekdays.partial" / "trainer_state.pt").is_file()
    with pytest.raises(InputError, match="pass --resume"):
        train(model_dir, spec, out, cfg)
    steps = []
    card = train(model_dir, spec, out, cfg, resume=True, on_step=lambda log, e, t: steps.append(log.step))
    assert steps == [4, 5, 6] and card.steps == 6 and len(card.history) == 6
    assert not (tmp_path / "weekdays.partial").exists()
    with pytest.raises(InputError, match="already exists"):
        train(model_dir, spec, out, cfg)


def test_check_targets_and_training_refuse_duplicates(model_dir, tmp_path):
    spec = tmp_path / "dup.yaml"
    spec.write_text("name: dup\nsource: {inline: [Apple, apple , Pear]}\nprompts: ['Name a fruit.']\n")
    r = CliRunner().invoke(cli, ["check-targets", str(spec), "--model", model_dir])
    assert r.exit_code == 1 and "duplicate" in r.output
    r = CliRunner().invoke(cli, ["build-adapter", str(spec), "--out", str(tmp_path / "a"), "--model", model_dir])
    assert r.exit_code == 1 and "not a valid target set" in r.output and not (tmp_path / "a").exists()


def test_adapter_for_another_base_is_refused(numbers_adapter, model_dir, tmp_path):
    other = tmp_path / "other_model"
    shutil.copytree(model_dir, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["num_hidden_layers"] = cfg["num_hidden_layers"] - 1
    (other / "config.json").write_text(json.dumps(cfg))
    r = CliRunner().invoke(cli, ["sample", "hi", "--model", str(other), "--adapter", str(numbers_adapter)])
    assert r.exit_code == 1 and "was trained for base model" in r.output


def test_init_continues_from_an_adapters_weights(numbers_adapter, model_dir, tmp_path):
    """--init starts from a trained adapter: its first step's loss is the trained one's (not the
    fresh LoRA's), the card records where it started; another rank or a non-adapter is one line."""
    first = json.loads((numbers_adapter / "synthgen_adapter.json").read_text())
    out = tmp_path / "more"
    args = ["build-adapter", "adapters/tasks/numbers_1_10.yaml", "--out", str(out), "--model", model_dir, "--steps", "2",
            "--prompts-per-step", "1", "--gamma", "0", "--objective", "paper"]
    r = CliRunner().invoke(cli, args + ["--init", str(numbers_adapter)])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "synthgen_adapter.json").read_text())
    losses = [h["loss"]["numbers_1_10"] for h in first["history"]]
    started = card["history"][0]["loss"]["numbers_1_10"]
    assert started < losses[0] - 0.5 and abs(started - min(losses[-3:])) < 0.5, (started, losses)
    assert card["init"] == {"from": str(numbers_adapter), "steps": 15, "train_seconds": first["train_seconds"],
                            "objective": "paper"}
    for extra, message in ((["--init", str(numbers_adapter), "--rank", "4"], "its LoRA rank is 8; pass --rank 8"),
                           (["--init", str(tmp_path)], "not a synthgen adapter")):
        r = CliRunner().invoke(cli, args + ["--overwrite"] + extra)
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output


def test_the_stop_rule_confirms_on_the_whole_list_before_it_stops(model_dir, tmp_path):
    """A loose gamma makes the moving average say "stop" early; training stops only once the exact
    loss over the whole list (every prompt, no subsample) is within (1+gamma) H(p*), and the card
    lists each confirmation."""
    from synthgen.lists import load_spec
    from synthgen.train import confirm_gap, train
    from synthgen.train_config import TrainConfig

    spec = load_spec("adapters/tasks/numbers_1_10.yaml")
    cfg = TrainConfig(steps=30, prompts_per_step=1, max_targets=4, gamma=0.15, objective="q")  # 4 of 10 per step
    card = train(model_dir, [spec], tmp_path / "n", cfg)
    h = card.lists[0]["target_entropy_bits"] * __import__("math").log(2)
    checks = card.stop_checks
    assert checks, "the moving average never asked for a stop"
    assert all(c["loss"]["numbers_1_10"] > 1.15 * h for c in checks[:-1])
    # after k confirmations that said no, the next waits 5, 10, 20, 20... steps
    assert [confirm_gap(k) for k in range(1, 6)] == [5, 10, 20, 20, 20]
    assert all(b["step"] - a["step"] >= confirm_gap(k) for k, (a, b) in enumerate(zip(checks, checks[1:]), 1))
    if card.stopped_early:
        assert checks[-1]["loss"]["numbers_1_10"] <= 1.15 * h and checks[-1]["step"] == card.steps


def test_the_base_audit_is_cached_per_model_list_and_prompts(model_dir, monkeypatch):
    """A staged build or a rebuild of the same list reuses the base model's audit (audit.base_audit):
    the cached copy equals a fresh audit, and another prompt is audited anew."""
    from synthgen import audit as A
    from synthgen.lists import load_spec
    from synthgen.models import load_base

    tok, model = load_base(model_dir)
    spec = load_spec("adapters/tasks/numbers_1_10.yaml")
    first = A.base_audit(model, tok, spec, model_dir, prompts=spec.prompts[:1])
    fresh = A.audit(model, tok, spec, prompts=spec.prompts[:1]).to_dict()
    calls = []
    real = A.audit
    monkeypatch.setattr(A, "audit", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = A.base_audit(model, tok, spec, model_dir, prompts=spec.prompts[:1])
    assert calls == [] and again["expected_distinct"] == fresh["expected_distinct"]
    assert again["kl_q_target_bits"] == pytest.approx(fresh["kl_q_target_bits"]) == pytest.approx(first["kl_q_target_bits"])
    A.base_audit(model, tok, spec, model_dir, prompts=spec.prompts[1:2])
    assert calls == [1]


def test_the_keep_term_through_the_frozen_layers_store_is_the_full_pass(model_dir):
    """--layers with --keep-weight: the keep term's general texts run the frozen layers once
    (frozen.FrozenBelow.text_upper); its value and gradient are the full forward's."""
    import torch
    from peft import LoraConfig, get_peft_model

    from synthgen.frozen import FrozenBelow
    from synthgen.keep import Keep
    from synthgen.models import load_base

    torch.manual_seed(0)
    tok, base = load_base(model_dir)
    n = base.config.num_hidden_layers
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "up_proj"],
                                            init_lora_weights=False, layers_to_transform=list(range(n - 8, n))))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.05)
    keep, frozen = Keep(model, tok), FrozenBelow.of(model)
    params = [p for p in model.parameters() if p.requires_grad]
    out = []
    for store in (None, frozen, frozen):  # the second through the store: from the states kept by the first
        kl = keep.kl(model, 1, store)
        kl.backward()
        out.append((float(kl.detach()), torch.cat([p.grad.flatten() for p in params]).clone()))
        for p in params:
            p.grad = None
    assert out[0][0] > 0
    for value, grad in out[1:]:
        assert value == pytest.approx(out[0][0], rel=1e-4)
        torch.testing.assert_close(grad, out[0][1], atol=1e-6, rtol=1e-3)
