"""Scalar series that tb_plus reads out of tensor summaries, so that charts, the tag tree and the
diagnostics treat them like any logged scalar.

A provider is named by the plugin of the tensor tag and lives in a module imported on first use:
`names(plugin)` lists the derived series (tag `<tensor tag>/<name>`), `compute(plugin, ld, run,
tag)` returns {name: (steps, wall_times, values)} for one tensor tag, reading its payloads. The
store computes a tag's series once per change of the run.
"""

from __future__ import annotations

import importlib

# plugin name -> module with NAMES (dict plugin -> [names]) and compute(plugin, ld, run, tag)
PROVIDERS = {
    "tb_plus_eval": "tb_plus.evaluation.series",
    "pr_curves": "tb_plus.evaluation.series",
}


def _module(plugin: str):
    return importlib.import_module(PROVIDERS[plugin])


def names(plugin: str) -> list:
    return list(_module(plugin).NAMES[plugin])


def compute(plugin: str, ld, run: str, tag: str) -> dict:
    return _module(plugin).compute(plugin, ld, run, tag)
