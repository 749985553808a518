"""The shipped default adapters and the README stay true."""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from synthgen.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["gender", "numbers_1_100", "first_names", "surnames", "birth_dates", "careers", "birth_places", "careers_by_sex",
           "us_birth_places",
           "first_names_by_decade"]


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_doc_commands_exist_with_their_options(page):
    """Every `synthgen ...` line in the README and docs/ names a real command and real options."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", page.read_text(), flags=re.S)
    lines = [m.strip() for b in blocks for m in re.findall(r"^\s*(?:\$ )?(synthgen [^\n#]*)", b, flags=re.M)]
    if page.name == "README.md":
        assert len(lines) >= 5
    for line in lines:
        words = line.split()
        cmd = cli.commands.get(words[1])
        assert cmd is not None, f"{page.name} uses unknown command: {line}"
        known = {o for p in cmd.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
        for w in words[2:]:
            if w.startswith("--"):
                assert w.split("=")[0] in known, f"{page.name} uses unknown option {w} in: {line}"




@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_adapter_is_complete(name):
    d = ROOT / "adapters" / name
    card = json.loads((d / "synthgen_adapter.json").read_text())
    assert (d / "adapter_model.safetensors").stat().st_size < 6_000_000  # bf16, small
    assert card["base_model"] == "smollm2-135m" and card["base_fingerprint"]
    lst = card["lists"][0]
    if card["config"].get("objective", "paper") == "q":  # trained for the trie sampler: Q moves towards p*
        assert all(x["adapter"]["kl_q_target_bits"] < 0.5 * x["base"]["kl_q_target_bits"] for x in card["lists"])
    else:
        assert lst["adapter"]["mass"] > 5 * lst["base"]["mass"]
    assert not card["capability"]["degraded"]
    # issue #24: what constrained decoding samples is within 0.1 bits of the target (mean over the card's
    # lists and prompts), and training ended by its own loss rule, not at the step cap
    kl = [x["adapter"]["kl_q_target_bits"] for x in card["lists"]]
    assert sum(kl) / len(kl) <= 0.1, kl
    assert card["stopped_early"], card["steps"]
    # trained on the spec and list data as they are now (a changed list means: rebuild the adapter)
    from synthgen.lists import expand, load_spec

    parts = expand(load_spec(ROOT / "adapters" / f"{name}.yaml"))
    assert [x["spec_hash"] for x in card["lists"]] == [p.digest() for p in parts]


@pytest.mark.integration
@pytest.mark.parametrize("name", ["numbers_1_100", "first_names"])
def test_shipped_adapter_audit_matches_its_card(name, model_dir):
    """Re-scoring the shipped weights on this machine (fp32, every prompt the card audited) gives
    the numbers its card claims: P's mass on the list and KL(Q‖p*)."""
    card = json.loads((ROOT / "adapters" / name / "synthgen_adapter.json").read_text())["lists"][0]
    args = ["audit", f"adapters/{name}.yaml", "--adapter", f"adapters/{name}", "--model", model_dir, "--json"]
    for prompt in card["prompts"]:
        args += ["--prompt", prompt]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    row = json.loads(r.output)[0]
    for side in ("base", "adapter"):
        assert row[side]["mass"] == pytest.approx(card[side]["mass"], abs=0.005), side
        assert row[side]["kl_q_target_bits"] == pytest.approx(card[side]["kl_q_target_bits"], abs=0.01), side
    assert row["adapter"]["kl_q_target_bits"] < 0.1 < row["base"]["kl_q_target_bits"]


@pytest.mark.parametrize("template", ["biography", "customer_profile"])
def test_list_fields_ask_what_their_adapter_was_audited_on(template):
    """A shipped template's field with an adapter asks, filled from a record, the first prompt its adapter's
    card audited (for a conditional adapter: that of the record's list). Asked in other words an adapter
    samples a distribution its card does not measure: surnames asked "for a person named {first_name}" gave
    470 unique last names in 1,000 biographies; at the audited prompt its exact Q gives 481 ± 12 (a perfect sampler 491)."""
    from synthgen.template import load_template

    record = {"gender": "female", "birth_date": "1985-04-02", "first_name": "Mary", "last_name": "Smith",
              "country": "Chile", "career": "Nurse", "birth_place": "Lima, Peru", "category": "books"}
    checked = 0
    for f in load_template(template).fields:
        if f.adapter in (None, "auto"):
            continue
        card = json.loads((ROOT / "adapters" / f.adapter / "synthgen_adapter.json").read_text())
        audited = [x["prompts"][0] for x in card["lists"]]
        assert f.render(record) in audited, f"{template}.{f.name}: {f.render(record)!r} is not {f.adapter}'s audited prompt"
        checked += 1
    assert checked >= 1
    from synthgen.runner import adapter_warnings

    assert adapter_warnings(load_template(template)) == []  # nor does a run of it print a warning


def test_shipped_prompts_share_their_first_prefix_cache_block(model_dir):
    """On CPU vLLM caches whole 32-token blocks: the first 32 tokens of every shipped prompt (chat
    template + the words before the first placeholder) are the same for every record, so they
    are computed once, not once per request (issue #13)."""
    from transformers import AutoTokenizer

    from synthgen.targets import render_chat
    from synthgen.template import load_template

    tok = AutoTokenizer.from_pretrained(model_dir)
    t = load_template("biography")
    fill = lambda v, career: {f.name: v for f in t.fields} | {"career": career}  # noqa: E731 (a career has a duty)
    for f in t.fields:
        a = render_chat(tok, f.render(fill("Mary Smith", "Janitor")), t.system)
        b = render_chat(tok, f.render(fill("Zyx, Qwv", "Waiter")), t.system)
        assert a[:32] == b[:32], f"{f.name}: the first 32 tokens depend on a placeholder"


def test_biography_text_is_told_every_field_it_must_agree_with():
    """The achievements sentence is asked with the record's gender as well as its name, career, date and place: without it
    the model guessed the sex from the name, and 7.8 % of 1,000 sentences used the other sex's pronouns (2.8 % with it;
    docs/results.md, "Records whose fields fit together")."""
    from synthgen.template import load_template

    text = next(f for f in load_template("biography").fields if f.name == "achievements")
    record = {"gender": "female", "birth_date": "1985-04-02", "first_name": "Mary", "last_name": "Smith",
              "career": "Registered nurse", "birth_place": "Lima, Peru"}
    assert set(text.depends) == {"gender", "birth_date", "first_name", "last_name", "career", "birth_place"}
    assert all(v.lower() in text.render(record).lower() for v in record.values())  # the career in lower case
    # and what that career's work is (O*NET's description): the sentence stays on it
    assert text.render(record).endswith("A registered nurse does this work: assess patient health problems and needs, "
                                        "develop and implement nursing care plans, and maintain medical records.")
