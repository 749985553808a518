"""The package leaves its checkout: a wheel built from the package sources alone, installed into a
fresh virtual environment, makes biographies from an empty directory (templates and adapters are
package data, found with importlib.resources)."""

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_generates_from_an_empty_directory(model_dir, tmp_path):
    src = tmp_path / "src"  # a clean copy: no templates/ or adapters/ at the root, no build leftovers
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "synthgen", src / "synthgen", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                        str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    wheel = next(dist.glob("synthgen-*.whl"))

    # a fresh venv; its dependencies (torch, vLLM, ...) come from this one through a .pth file,
    # synthgen itself only from the wheel
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    vpy = venv / "bin" / "python"
    purelib = subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(purelib, "_deps.pth").write_text("\n".join(deps) + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(vpy), "install", "--no-deps", "-q", str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]

    empty = tmp_path / "empty"
    empty.mkdir()
    env = os.environ | {"SYNTHGEN_HOME": os.environ["SYNTHGEN_HOME"], "PYTHONPATH": ""}
    where = subprocess.run([str(vpy), "-c", "import synthgen.paths as t; print(t.__file__); "
                            "print(t.find_template('biography')); print(t.packaged('adapters'))"],
                           cwd=empty, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr[-2000:]
    module, template, adapters = where.stdout.split()
    assert module.startswith(str(venv)) and template.startswith(str(venv)), where.stdout  # the wheel, not the checkout
    assert (Path(adapters) / "first_names" / "adapter_model.safetensors").is_file()

    r = subprocess.run([str(venv / "bin" / "synthgen"), "biographies", "--n", "5", "--out", "bios.jsonl", "--json"],
                       cwd=empty, env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(line) for line in (empty / "bios.jsonl").read_text().splitlines()]
    assert [x["index"] for x in rows] == list(range(5))
    assert all(x["first_name"] and x["gender"] in ("female", "male") for x in rows)  # constrained: valid by construction
    meta = json.loads((empty / "bios.jsonl.meta.json").read_text())
    assert meta["template"]["path"].startswith(str(venv))
    assert meta["identity"]["adapters"]["first_name"] == "first_names_by_decade"
