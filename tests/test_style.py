"""The codebase stays readable: ruff clean, no module over 500 lines, a thin CLI (issue #15)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: `make setup` installs it (the test extra)")
    r = subprocess.run([ruff, "check", "--output-format", "concise", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]


def test_modules_stay_small():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "synthgen").rglob("*.py")}
    assert sizes, "no modules found"
    big = {k: v for k, v in sizes.items() if v > 500}
    assert not big, f"modules over 500 lines: {big}"
    assert sizes["synthgen/cli.py"] <= 400, f"cli.py has {sizes['synthgen/cli.py']} lines (limit 400)"


def test_library_code_does_not_import_private_names_across_modules():
    """Benchmarks, examples and scripts use the public API (no `from synthgen.x import _private`)."""
    offenders = []
    for d in ("benchmarks", "examples", "scripts"):
        for p in (ROOT / d).glob("*.py"):
            for i, line in enumerate(p.read_text().splitlines(), 1):
                s = line.strip()
                if s.startswith("from synthgen") and " import " in s:
                    names = s.split(" import ", 1)[1].replace("(", "").replace(")", "").split(",")
                    if any(n.strip().startswith("_") for n in names):
                        offenders.append(f"{p.relative_to(ROOT)}:{i}: {s}")
    assert not offenders, "\n".join(offenders)
