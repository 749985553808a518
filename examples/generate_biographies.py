"""synthgen from Python: fill a template on the embedded model, then audit the result.

    .venv/bin/python examples/generate_biographies.py [N]

The same as `synthgen biographies --n N --out out/example/bios.jsonl` followed by
`synthgen report out/example/bios.jsonl`, with the pieces in view: a template, an engine, a plan
(output checks and resume point) and the run.
"""

import sys
from pathlib import Path

from synthgen.engine import create_engine
from synthgen.generate import plan_run, run
from synthgen.report import analyse
from synthgen.template import load_template

if __name__ == "__main__":  # vLLM starts worker processes: keep top-level code under this guard
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    out = Path("out/example/bios.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)

    template = load_template("biography")  # templates/biography.yaml; adapters resolved from adapters/
    plan = plan_run(template, out, n, seed=0, overwrite=True)
    engine = create_engine("vllm", max_loras=4)  # or create_engine("openai", endpoints=["http://host:8000"])
    try:
        summary = run(template, engine, plan, n, seed=0,
                      on_field=lambda field, k: None)  # a progress callback per field
    finally:
        engine.close()
    print(f"{summary.records} records in {summary.seconds:.0f}s, valid share per field: "
          + ", ".join(f"{k} {v:.0%}" for k, v in summary.valid.items()))

    report = analyse(out)
    for f in report.summary["fields"]:
        if f["kind"] == "categorical":
            print(f"{f['field']:>12}: {f['unique']} unique valid values, entropy {f['entropy_bits']:.2f} bits")
