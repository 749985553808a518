"""10,000 biographies end to end against this machine's ceiling (issue #13).

1. `benchmarks/roofline.py`: the matmul peak and the tokens/s ceiling (stored for the run's summary).
2. `synthgen biographies --n N --seed 0 --out OUT/bios.jsonl --overwrite --json`: the command users
   run, timed from outside (wall time including the engine start and the process's own start).
3. `synthgen report OUT/bios.jsonl --out OUT/report --json`: the diversity audit of what it made.

Writes OUT/results.json (the run's own summary, wall time, utilisation, report figures) for
`scripts/results_section.py`. `--from-run FILE` collects a run already made with the same
command (its FILE.meta.json summary) instead of making it again. A run that was killed and finished
with --resume: --wall-seconds is the sum of its timed parts (say how in --wall-note); the tokens,
rate and utilisation are then those of the last part (its summary's records, the recomputed ones
included), the report is of the whole file.

    .venv/bin/python benchmarks/throughput.py [--n 10000] [--out out/throughput] [--from-run out/bios10k.jsonl --wall-seconds S]
"""

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from synthgen import bench

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def main():
    ap = bench.parser(__doc__, out="out/throughput")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--from-run", default=None, help="an existing output of the same command: collect, do not rerun")
    ap.add_argument("--wall-seconds", type=float, default=None, help="with --from-run: its wall time, measured outside")
    ap.add_argument("--wall-note", default=None, help="with --from-run: how the wall time was measured (e.g. parts of a resumed run)")
    args = ap.parse_args()
    if args.from_run and args.wall_seconds is None:
        ap.error("--from-run needs --wall-seconds (the run's wall time, measured outside)")
    if not args.from_run and (args.wall_seconds is not None or args.wall_note):
        ap.error("--wall-seconds / --wall-note go with --from-run (a run made here is timed here)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "roofline.py"), "--out", str(out / "roofline")], check=True)
    roof = json.loads((out / "roofline" / "results.json").read_text())

    if args.from_run:
        bios = Path(args.from_run)
        meta = json.loads(Path(f"{bios}.meta.json").read_text())
        if not meta.get("complete"):
            sys.exit(f"{bios}: the run is not complete")
        summary, wall, command = meta["summary"], args.wall_seconds, None
    else:
        bios = out / "bios.jsonl"
        command = [str(BIN / "synthgen"), "biographies", "--n", str(args.n), "--seed", "0", "--out", str(bios),
                   "--overwrite", "--json"]
        t0 = time.perf_counter()
        r = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(f"the run failed:\n{r.stderr[-3000:]}")
        summary = json.loads(r.stdout)
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB

    t0 = time.perf_counter()
    r = subprocess.run([str(BIN / "synthgen"), "report", str(bios), "--out", str(out / "report"), "--json"],
                       capture_output=True, text=True)
    report_seconds = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"the report failed:\n{r.stderr[-3000:]}")
    report = json.loads(r.stdout)

    ceiling = roof["ceiling"]
    n = summary["records"] if args.from_run else summary["new_records"]
    measured = summary["new_records"] + summary.get("recomputed", 0)  # the records this summary's tokens paid for
    prompt_computed = summary["prompt_tokens"] - summary["cached_prompt_tokens"]
    at_ceiling = prompt_computed / ceiling["prefill_tokens_per_s"] + summary["tokens"] / ceiling["decode_tokens_per_s"]
    from synthgen.machine import cpu_flags, isa

    doc = {"cpu": roof["cpu"], "isa": isa(cpu_flags()), "threads": roof["threads"], "dtype": roof["engine_dtype"], "n": n,
           "command": "synthgen biographies --n %d --seed 0 --out OUT --overwrite" % n,
           "wall_seconds": wall, "wall_note": args.wall_note, "measured_records": measured,
           "records_per_s": measured / summary["seconds"], "summary": summary, "ceiling": ceiling, "gflop_per_token": roof["gflop_per_token"],
           "peak_gflops": {k: {"prefill": v["prefill"], "decode": v["decode"]} for k, v in roof["peak_gflops"].items()},
           "utilisation": at_ceiling / summary["seconds"], "seconds_at_ceiling": at_ceiling,
           "per_record": {"requests": summary["requests"] / measured, "prompt_tokens": summary["prompt_tokens"] / measured,
                          "cached_prompt_tokens": summary["cached_prompt_tokens"] / measured,
                          "decoded_tokens": summary["tokens"] / measured,
                          "computed_tokens": summary["computed_tokens"] / measured},
           "peak_rss_gib_children": peak_children if not args.from_run else None,
           "report_seconds": report_seconds, "report": report}
    bench.write_results(out, doc, quiet=True)
    print(json.dumps({k: doc[k] for k in ("wall_seconds", "utilisation", "per_record")}, indent=2))


if __name__ == "__main__":
    bench.run(main)
