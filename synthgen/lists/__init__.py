"""Attribute lists: YAML specs (spec.py) over shipped real-data sources (sources.py)."""

from .spec import ListSpec, expand, load_spec, load_targets

__all__ = ["ListSpec", "expand", "load_spec", "load_targets"]
