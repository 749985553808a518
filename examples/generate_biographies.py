"""synthgen from Python: fill a template on the embedded model, then audit the result.

    .venv/bin/python examples/generate_biographies.py [N]

The same as `synthgen biographies --n N --out out/example/bios.jsonl --overwrite` followed by
`synthgen report out/example/bios.jsonl`, through the same library path the CLI uses:
`prepare` checks everything before an engine starts (template, adapters built for this model,
decode tries, the output and its resume point), `execute` starts the engine, writes the records and
closes it. The lower-level pieces (`synthgen.output.plan_run` / `synthgen.generate.run` with an engine you create,
e.g. `create_engine("openai", endpoints=[...])`) are what `execute` calls.
"""

import sys
from pathlib import Path

from synthgen.report import analyse
from synthgen.runner import RunOptions, execute, prepare

if __name__ == "__main__":  # vLLM starts worker processes: keep top-level code under this guard
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    out = Path("out/example/bios.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)

    run = prepare(RunOptions("biography", n=n, out=str(out), seed=0, overwrite=True))  # the packaged template
    summary = execute(run, on_field=lambda field, k: None)  # a progress callback per field
    print(f"{summary.records} records in {summary.seconds:.0f}s (+ {summary.engine_start_seconds:.0f}s engine start), "
          "valid share per field: " + ", ".join(f"{k} {v:.0%}" for k, v in summary.valid.items()))

    report = analyse(out)
    for f in report.summary["fields"]:
        if f["kind"] == "categorical":
            print(f"{f['field']:>12}: {f['unique']} unique valid values, entropy {f['entropy_bits']:.2f} bits")
