"""Per-layer sparsity and FLOP table with the paper's columns.

Rows and columns are those of each layer's lowered GEMM matrix (per conv group, see
:mod:`sslkit.sparsity.lowering`): a row is a filter (or a neuron's inputs), a column a shape fiber
W[:, c, m, k] (or an input neuron). A row or column is "left" when it has a non-zero weight.
``weights left`` is the size of the GEMM on the non-zero rows and columns, which is what
compaction keeps and what the structured speedup computes; ``FLOP %`` is its share of the
dense GEMM (the paper's FLOP column).
"""
from __future__ import annotations

import pandas as pd
import torch.nn as nn

from sslkit.sparsity.groups import zero_groups
from sslkit.sparsity.lowering import LoweredLayer, live, trace


def layer_stats(layer: LoweredLayer) -> dict:
    """The sparsity statistics of one traced layer (see the module docstring)."""
    w = layer.module.weight.detach()
    g = layer.groups
    rows, cols = live(w, g)
    rows_left, cols_left = rows.sum(1), cols.sum(1)   # per group
    kept = int((rows_left * cols_left).sum())
    chans = ~zero_groups(w, "channel", g)
    k2d = zero_groups(w, "kernel2d", g)
    return {
        "layer": layer.name, "kind": "conv" if layer.is_conv else "linear",
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
        DataFrame with: layer, kind (conv or linear), filters (left), channels (left), filter size (left, mean over
        conv groups), row/column/2D-filter/element sparsity %, weights (left), FLOP (left, per
        sample) and FLOP % (the paper's FLOP column).
    """
    return pd.DataFrame([layer_stats(layer) for layer in trace(model, input_shape)])
