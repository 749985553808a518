"""What `--ray` costs over a plain local run of the same records (issue #14), and the scaling model's inputs.

Runs the command users run twice, timed from outside (wall time: process start, engine or Ray
start, generation, exit), same seed and block size:

    synthgen biographies --n N --seed 0 --out OUT/plain.jsonl --overwrite --json
    synthgen biographies --n N --seed 0 --out OUT/ray.jsonl --overwrite --json --ray --actors A

then compares the files (`cmp`: the promise is the same bytes) and prints the ratio of wall
times (target: <= 1.15 with one actor on this machine), the fixed costs (start) and the per-record
rate each side. Writes OUT/results.json. A second Ray run with --actors 2 --cpus-per-actor 1 is
added with --two-actors (on 2 cores it shows contention, not speed-up).

    .venv/bin/python benchmarks/ray_overhead.py [--n 500] [--out out/ray_overhead] [--two-actors]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def timed(cmd: list[str]) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return wall, json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--block-size", type=int, default=1024)
    ap.add_argument("--out", default="out/ray_overhead")
    ap.add_argument("--two-actors", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = [str(BIN / "synthgen"), "biographies", "--n", str(args.n), "--seed", "0", "--block-size", str(args.block_size),
            "--overwrite", "--json"]
    runs = {"plain": [], "ray_1_actor": ["--ray", "--actors", "1"]}
    if args.two_actors:
        runs["ray_2_actors"] = ["--ray", "--actors", "2", "--cpus-per-actor", "1"]
    results = {}
    for name, extra in runs.items():
        path = out / f"{name}.jsonl"
        wall, summary = timed(base + ["--out", str(path)] + extra)
        results[name] = {"wall_s": round(wall, 1), "generate_s": round(summary["seconds"], 1),
                         "start_s": summary["engine_start_seconds"], "records_per_s": summary["records_per_s"],
                         "computed_tokens": summary["computed_tokens"], "peak_rss_gib": round(summary["peak_rss_gib"], 2),
                         "duplicates": summary.get("duplicates", 0)}
        print(f"{name:>13}: {wall:7.1f} s wall ({summary['seconds']:.1f} s generating, start {summary['engine_start_seconds']} s), "
              f"{summary['records_per_s']:.3f} records/s, peak RSS {summary['peak_rss_gib']:.2f} GiB", flush=True)
    plain = (out / "plain.jsonl").read_bytes()
    for name in results:
        results[name]["same_file_as_plain"] = (out / f"{name}.jsonl").read_bytes() == plain
    ratio = results["ray_1_actor"]["wall_s"] / results["plain"]["wall_s"]
    results["summary"] = {"n": args.n, "block_size": args.block_size, "ray_over_plain_wall": round(ratio, 3),
                          "target": 1.15, "met": ratio <= 1.15}
    same = ", ".join(f"{k} {v['same_file_as_plain']}" for k, v in results.items() if k != "summary")
    print(f"Ray (1 actor) / plain wall time: {ratio:.3f} (target <= 1.15: {'met' if ratio <= 1.15 else 'missed'}); "
          f"same file as plain: {same}")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
