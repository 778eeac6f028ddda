"""Scalar series that tb_plus reads out of tensor summaries, so that charts, the tag tree and the
diagnostics treat them like any logged scalar.

A provider is named by the plugin of the tensor tag and lives in a module imported on first use:
`names(plugin, tag, content)` maps each derived scalar tag to its name (from the tag and its first
metadata's plugin content), `compute(plugin, ld, run, tag)` returns {name: (steps, wall_times,
values)} for one tensor tag, reading its payloads. The store computes a tag's series once per
change of the run.
"""

from __future__ import annotations

import importlib

# plugin name -> module with names(plugin, tag, content) and compute(plugin, ld, run, tag)
PROVIDERS = {
    "tb_plus_eval": "tb_plus.evaluation.series",
    "pr_curves": "tb_plus.evaluation.series",
    "tb_plus_trace": "tb_plus.trace.series",
}


def _module(plugin: str):
    return importlib.import_module(PROVIDERS[plugin])


def names(plugin: str, tag: str, content: bytes) -> dict:
    """{derived scalar tag: name} for a tensor tag; {} when its metadata cannot be read."""
    try:
        return dict(_module(plugin).names(plugin, tag, content))
    except ValueError:
        return {}


def compute(plugin: str, ld, run: str, tag: str) -> dict:
    return _module(plugin).compute(plugin, ld, run, tag)
