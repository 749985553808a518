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


def test_functions_stay_short_with_few_parameters():
    """No library function over 80 lines or 8 parameters (issue #26), outside click commands and
    the vLLM op signatures that engine/cpu_lora.py replaces one for one."""
    import ast

    vllm_ops = {"sgmv_shrink", "sgmv_expand", "sgmv_expand_slice"}
    offenders = []
    for p in (ROOT / "synthgen").rglob("*.py"):
        for n in ast.walk(ast.parse(p.read_text())):
            if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) or n.name in vllm_ops:
                continue
            if any("command" in ast.unparse(d) or "option" in ast.unparse(d) for d in n.decorator_list):
                continue
            a = n.args
            params = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) - (bool(a.args) and a.args[0].arg in ("self", "cls"))
            lines = n.end_lineno - n.lineno + 1
            if params > 8 or lines > 80:
                offenders.append(f"{p.relative_to(ROOT)}:{n.lineno} {n.name}: {params} parameters, {lines} lines")
    assert not offenders, "\n".join(offenders)


def test_no_module_imports_private_names_from_another():
    """The library, benchmarks, examples and scripts import only public names across modules (an AST
    walk: relative and multi-line imports count too); `_private` stays inside its module."""
    import ast

    offenders = []
    for d in ("synthgen", "benchmarks", "examples", "scripts"):
        for p in (ROOT / d).rglob("*.py"):
            for node in ast.walk(ast.parse(p.read_text())):
                if not isinstance(node, ast.ImportFrom) or (node.level == 0 and not (node.module or "").startswith("synthgen")):
                    continue
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        offenders.append(f"{p.relative_to(ROOT)}:{node.lineno}: {'.' * node.level}{node.module or ''} "
                                         f"import {alias.name}")
    assert not offenders, "\n".join(offenders)


def test_the_generator_uses_the_engine_protocol_not_probes():
    """generate.py and distributed.py call what engine.base.Engine declares (BlockEngine and
    StepEngine for the optional forms): no getattr/hasattr on an engine (issue #26, item 5)."""
    import re

    from synthgen.distributed import RayPool
    from synthgen.engine.base import BlockEngine, Engine, FakeEngine, StepEngine

    for name in ("generate.py", "distributed.py", "runner.py"):
        text = (ROOT / "synthgen" / name).read_text()
        assert not re.search(r"(getattr|hasattr)\((self\.)?engine\b", text), name
    fake = FakeEngine()
    assert isinstance(fake, Engine) and isinstance(fake, StepEngine) and not isinstance(fake, BlockEngine)
    assert (fake.dtype, fake.max_num_seqs) == (None, None) and fake.reset_prefix_cache() is None
    assert isinstance(RayPool.__new__(RayPool), BlockEngine)


def _imports(pkg: str = "synthgen") -> dict[str, set[str]]:
    """module -> the library modules it imports anywhere in its body (lazy imports in functions too)."""
    import ast

    files = {}
    for p in (ROOT / pkg).rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {}
    for mod, p in files.items():
        here = mod.split(".") if p.name == "__init__.py" else mod.split(".")[:-1]
        graph[mod] = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] + [node.module] if node.module else
                                here[:len(here) - node.level + 1]) if node.level else node.module or ""
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            graph[mod].update(n for n in names if n in files and n != mod)
    return graph


def test_no_import_cycles_in_the_library():
    """No two library modules import each other, directly or through others, counting the imports
    inside functions (issue #26: audit <-> train; engine.dtype <-> engine.vllm_engine)."""
    graph = _imports()
    assert graph["synthgen.cli"] and "synthgen.engine.base" in graph["synthgen.engine.vllm_engine"]  # it sees imports

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    cycles = sorted(m for m in graph if m in reach(m) and not m.rsplit(".", 1)[-1] == "synthgen")
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_the_engine_package_imports_nothing_of_a_run():
    """engine/ is the seam: it may read the machine, models, targets and cards, never the run that uses it
    (output, template, roofline, generate, runner, report, cli), directly or through others, counting imports
    inside functions."""
    graph = _imports()
    run = {"synthgen.output", "synthgen.template", "synthgen.roofline", "synthgen.generate", "synthgen.runner",
           "synthgen.cli", "synthgen.distributed"} | {m for m in graph if m.startswith("synthgen.report")}
    for mod in (m for m in graph if m.startswith("synthgen.engine")):
        seen, todo = set(), [mod]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        assert not seen & run, f"{mod} imports {sorted(seen & run)}"
