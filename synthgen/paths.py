"""Where a name is looked up: templates, adapters and the list spec beside an adapter ($SYNTHGEN_TEMPLATES
and $SYNTHGEN_ADAPTERS first, then ./templates and ./adapters, then the packaged ones: yours win)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError


def packaged(kind: str) -> Path:
    """The templates or adapters shipped inside the package (package data, found with importlib.resources)."""
    from importlib import resources

    return Path(str(resources.files("synthgen") / kind))


def template_dirs() -> list[Path]:
    """Where a template name is looked up: $SYNTHGEN_TEMPLATES, ./templates, then the packaged ones (yours win)."""
    dirs = [Path(p) for p in os.environ.get("SYNTHGEN_TEMPLATES", "").split(os.pathsep) if p]
    return dirs + [Path.cwd() / "templates", packaged("templates")]


def find_template(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise InputError(f"template {name_or_path!r} does not exist")
        return p
    for d in template_dirs():
        for ext in (".yaml", ".yml"):
            if (d / f"{name_or_path}{ext}").is_file():
                return d / f"{name_or_path}{ext}"
    raise InputError(f"unknown template {name_or_path!r}: give a YAML path or a name in "
                     + ", ".join(str(d) for d in template_dirs()))


def adapter_dirs(template_path: Path | None) -> list[Path]:
    """Where an adapter name is looked up: $SYNTHGEN_ADAPTERS, adapters/ beside the template's
    directory, ./adapters, then the packaged ones (yours win)."""
    dirs = [Path(p) for p in os.environ.get("SYNTHGEN_ADAPTERS", "").split(os.pathsep) if p]
    if template_path is not None:
        dirs.append(template_path.resolve().parent.parent / "adapters")
    return dirs + [Path.cwd() / "adapters", packaged("adapters")]


def spec_file(name: str, template_path: Path | None) -> Path | None:
    """The list spec NAME.yaml beside adapter NAME (in adapter_dirs), or a path to one (a name with /,
    or an adapter given as a path: its spec beside it, as build-adapter X.yaml --out X leaves it)."""
    if "/" in name or name.startswith("."):
        here = template_path.parent if template_path else Path.cwd()
        stem = name if name.endswith((".yaml", ".yml")) else name + ".yaml"
        candidates = [Path(stem).expanduser(), here / stem]
    else:
        candidates = [d / f"{name}.yaml" for d in adapter_dirs(template_path)]
    return next((c for c in candidates if c.is_file()), None)


def resolve_adapter(name: str, template_path: Path | None) -> str:
    p = Path(name).expanduser()
    if "/" in name or name.startswith("."):  # a path: relative to the current directory
        if p.is_file() and p.suffix in (".yaml", ".yml"):
            raise InputError(f"adapter {name!r} is a list spec, not an adapter: train one with `synthgen build-adapter "
                             f"{name} --out DIR` and give DIR, or write adapter: auto")
        if not p.is_dir():
            raise InputError(f"adapter {name!r} does not exist (looked for {p.resolve()}; a relative path starts from "
                             f"the current directory, {Path.cwd()})")
        return str(p.resolve())
    seen = []
    for d in adapter_dirs(template_path):
        if (d / name).is_dir():
            return str((d / name).resolve())
        if str(d) not in seen:
            seen.append(str(d))
    raise InputError(f"unknown adapter {name!r} (looked in {', '.join(seen)}): build it with "
                     f"`synthgen build-adapter adapters/{name}.yaml --out adapters/{name}` or fix the name")
