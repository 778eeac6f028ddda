"""Tracer summaries for the store (tb_plus/store/derived.py): a packed [layers, statistics] tensor
per step becomes one scalar series per (statistic, layer), tag <prefix>/<statistic>/<layer> (the
tensor tag is <prefix>/<family>), so charts, the tag tree and the diagnostics see ordinary series."""

from __future__ import annotations

import dataclasses

import numpy as np

from tb_plus import metadata


@dataclasses.dataclass(frozen=True)
class Cube:
    """A tracer family of one run: values[step index, layer, statistic]."""

    steps: np.ndarray  # int64
    walls: np.ndarray  # float64
    layers: list
    stats: list
    values: np.ndarray  # float64 [steps, layers, stats]

    def stat(self, name: str) -> np.ndarray:
        """[steps, layers] of one statistic."""
        return self.values[:, :, self.stats.index(name)]


# Each (layer, statistic) of a tracer tag is a series: the metadata's lists, read from the file,
# are capped before any of them is made (a few KB of names could otherwise declare millions).
MAX_CELLS = 1 << 16


def _layout(content: bytes):
    c = metadata.parse_content(content)
    layers, stats = c.get("layers"), c.get("stats")
    if not isinstance(layers, list) or not isinstance(stats, list):
        raise ValueError("tracer metadata without layers and stats")
    if len(layers) * len(stats) > MAX_CELLS:
        raise ValueError(f"tracer metadata names {len(layers)} layers x {len(stats)} statistics, more than "
                         f"{MAX_CELLS} series")
    return [str(x) for x in layers], [str(x) for x in stats]


def names(plugin, tag, content) -> dict:
    layers, stats = _layout(content)
    prefix = tag.rpartition("/")[0] or tag
    return {f"{prefix}/{st}/{layer}": f"{st}/{layer}" for st in stats for layer in layers}


def cube(ld, run, tag) -> Cube:
    """The packed tensors of a tracer tag as one array, read once per change of the run."""

    def build():
        layers, stats = _layout(ld.tag_info(run, tag).plugin_content)
        steps, walls, values = ld.packed_tensors(run, tag, (len(layers), len(stats)))
        return Cube(steps, walls, layers, stats, values.astype(np.float64))

    return ld.memo(("trace_cube", run, tag), ld.run_version(run), build)


def compute(plugin, ld, run, tag) -> dict:
    c = cube(ld, run, tag)
    return {f"{st}/{layer}": (c.steps, c.walls, c.values[:, i, j]) for j, st in enumerate(c.stats)
            for i, layer in enumerate(c.layers)}
