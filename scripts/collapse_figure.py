"""Draw the README's picture of mode collapse: one prompt asked N times of the base model and through
the shipped numbers_1_100 adapter (`synthgen sample --json`, the public CLI), the answers 1-100 counted.

    .venv/bin/python scripts/collapse_figure.py            # writes docs/results/collapse.png, prints the counts
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Pick a random number between 1 and 100. Answer with the number only."


def ask(n: int, seed: int, adapter: str | None) -> dict:
    cmd = [sys.executable, "-m", "synthgen", "sample", PROMPT, "--n", str(n), "--max-tokens", "8", "--seed", str(seed),
           "--json", *(["--adapter", adapter] if adapter else [])]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout)


def tally(result: dict) -> tuple[list[int], int, int]:
    """(count of each of 1..100 among complete answers, other complete answers, answers cut off)."""
    counts, other = [0] * 100, 0
    for a in result["answers"]:
        k = a["finished_count"]
        if a["answer"].isdigit() and 1 <= int(a["answer"]) <= 100:
            counts[int(a["answer"]) - 1] += k
        else:
            other += k
    return counts, other, result["unfinished"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "collapse.png"))
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [("base model", None), ("diffuse adapter", "adapters/numbers_1_100")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 2.8), sharey=True)
    for ax, (label, adapter) in zip(axes, runs):
        counts, other, cut = tally(ask(args.n, args.seed, adapter))
        hit = sum(c > 0 for c in counts)
        ax.bar(range(1, 101), counts, width=0.9, color="#c0392b" if adapter else "#7f8c8d")
        ax.set_title(f"{label}: {hit} of 100 numbers; {cut} cut off, {other} other answers", fontsize=9)
        ax.set_xlabel("answer (complete answers in 1-100)")
        print(f"{label}: numbers hit {hit}/100, complete in range {sum(counts)}, other complete {other}, cut off {cut}")
    axes[0].set_ylabel(f"count of {args.n}")
    fig.suptitle(f'"{PROMPT}"  (SmolLM2-135M-Instruct, {args.n} draws each, seed {args.seed})', fontsize=9)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
