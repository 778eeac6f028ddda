"""Tracer summaries for the store (tb_plus/store/derived.py): a packed [layers, statistics] tensor
per step becomes one scalar series per (statistic, layer), tag <prefix>/<statistic>/<layer> (the
tensor tag is <prefix>/<family>), so charts, the tag tree and the diagnostics see ordinary series."""

from __future__ import annotations

import numpy as np

from tb_plus import metadata


def _layout(content: bytes):
    c = metadata.parse_content(content)
    layers, stats = c.get("layers"), c.get("stats")
    if not isinstance(layers, list) or not isinstance(stats, list):
        raise ValueError("tracer metadata without layers and stats")
    return [str(x) for x in layers], [str(x) for x in stats]


def names(plugin, tag, content) -> dict:
    layers, stats = _layout(content)
    prefix = tag.rpartition("/")[0] or tag
    return {f"{prefix}/{st}/{layer}": f"{st}/{layer}" for st in stats for layer in layers}


def compute(plugin, ld, run, tag) -> dict:
    layers, stats = _layout(ld.tag_info(run, tag).plugin_content)
    data = ld.tensors(run, tag)
    good = [d for d in data if np.ndim(d.numpy) == 2 and d.numpy.shape == (len(layers), len(stats))]
    steps = [d.step for d in good]
    walls = [d.wall_time for d in good]
    cube = np.stack([d.numpy for d in good]).astype(np.float64) if good else np.zeros((0, len(layers), len(stats)))
    return {f"{st}/{layer}": (steps, walls, cube[:, i, j]) for j, st in enumerate(stats)
            for i, layer in enumerate(layers)}
