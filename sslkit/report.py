"""Per-layer sparsity and FLOP table with the paper's columns.

Rows and columns are those of each layer's lowered GEMM matrix (per conv group): a row is a
filter (or a neuron's inputs), a column a shape fiber W[:, c, m, k] (or an input neuron). A
row or column is "left" when it has a non-zero weight. ``weights left`` is the size of the
GEMM on the non-zero rows and columns, which is what compaction keeps and what the structured
speedup computes; ``FLOP %`` is its share of the dense GEMM (the paper's FLOP column).
"""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn as nn

from . import flops
from . import groups as G


def layer_stats(layer: flops.Layer) -> dict:
    """The sparsity statistics of one lowered layer (see the module docstring)."""
    w = layer.module.weight.detach()
    g = layer.groups
    nz = G.lowered(w, g) != 0                          # per group lowered matrices
    rows_left = nz.any(2).sum(1)                       # (g,)
    cols_left = nz.any(1).sum(1)                       # (g,)
    kept = int((rows_left * cols_left).sum())
    chans = ~G.zero_groups(w, "channel", g)
    k2d = G.zero_groups(w, "kernel2d", g)
    return {
        "layer": layer.name,
        "filters": g * layer.rows, "filters left": int(rows_left.sum()),
        "channels": int(chans.numel()), "channels left": int(chans.sum()),
        "filter size": layer.cols, "filter size left": round(float(cols_left.float().mean()), 2),
        "row sparsity %": 100 * (1 - float(rows_left.sum()) / (g * layer.rows)),
        "column sparsity %": 100 * (1 - float(cols_left.sum()) / (g * layer.cols)),
        "2D-filter sparsity %": 100 * float(k2d.float().mean()),
        "element sparsity %": 100 * float((w == 0).float().mean()),
        "weights": w.numel(), "weights left": kept,
        "FLOP": layer.flops, "FLOP left": 2 * kept * layer.positions,
        "FLOP %": 100 * kept / w.numel(),
    }


def sparsity_report(model: nn.Module, input_shape: tuple[int, ...]) -> pd.DataFrame:
    """One row per conv/linear layer of ``model`` (input ``input_shape`` = (C, H, W)).

    Returns:
        DataFrame with: layer, filters (left), channels (left), filter size (left, mean over
        conv groups), row/column/2D-filter/element sparsity %, weights (left), FLOP (left, per
        sample) and FLOP % (the paper's FLOP column).
    """
    return pd.DataFrame([layer_stats(layer) for layer in flops.layers(model, input_shape)])


def summary(report: pd.DataFrame, dash: str = "–") -> dict:
    """The paper's way of writing per-layer numbers: ``"5–19"`` for filters left, etc."""
    join = lambda col, fmt="{}": dash.join(fmt.format(v) for v in report[col])  # noqa: E731
    return {"filters": join("filters left"), "channels": join("channels left"),
            "filter size": join("filter size left", "{:g}"), "FLOP": join("FLOP %", "{:.1f}%"),
            "row sparsity": join("row sparsity %", "{:.1f}%"), "column sparsity": join("column sparsity %", "{:.1f}%")}


@torch.no_grad()
def zero_fraction(model: nn.Module) -> float:
    """Share of zero weights over all conv and linear layers."""
    ws = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return float(sum((w == 0).sum() for w in ws)) / sum(w.numel() for w in ws)
