"""What every script in benchmarks/ shares: its command line and how it writes what it measured.

    ap = bench.parser(__doc__, out="out/NAME")   # the doc's first line is --help's summary, the rest its epilog
    ap.add_argument(...)
    args = ap.parse_args()
    ...
    bench.write_results(args.out, {"n": ..., ...}, md=table)   # OUT/results.json (+ results.md), atomically

    if __name__ == "__main__":
        bench.run(main)   # a synthgen error (bad input, a missing package) is one line and exit 1, not a traceback

Every results.json says the machine it was measured on and when; numbers from numpy are written as plain
numbers. `scripts/results_section.py` turns them into docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .atomic import write_atomic
from .errors import SynthgenError
from .machine import describe


def run(main) -> None:
    """Run a benchmark's `main()`: a synthgen error is `error: <its line>` on stderr and exit 1, as in the CLI."""
    try:
        main()
    except SynthgenError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def parser(doc: str, out: str | None = None) -> argparse.ArgumentParser:
    lines = (doc or "").strip().splitlines() or [""]
    ap = argparse.ArgumentParser(description=lines[0], epilog="\n".join(lines[1:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    if out is not None:
        ap.add_argument("--out", default=out, help=f"results.json (and results.md) go in this folder (default: {out})")
    return ap


def _plain(x):
    if hasattr(x, "tolist"):  # numpy and torch arrays and scalars
        return x.tolist()
    return str(x)


def write_results(out: str | Path, doc: dict, md: str | None = None, *, quiet: bool = False) -> Path:
    """OUT/results.json = {"machine", "measured", **doc}; OUT/results.md = md (printed unless quiet)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    full = {"machine": describe(), "measured": time.strftime("%Y-%m-%d %H:%M:%S"), **doc}
    write_atomic(out / "results.json", json.dumps(full, indent=2, ensure_ascii=False, default=_plain))
    if md is not None:
        write_atomic(out / "results.md", md.rstrip("\n") + "\n")
        if not quiet:
            print(md)
    print(f"wrote {out / 'results.json'}" + (f" and {out / 'results.md'}" if md is not None else ""))
    return out / "results.json"
