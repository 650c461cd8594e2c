"""The figures, registered by name. Each takes an :class:`ExperimentResult` and returns a
matplotlib figure; an experiment lists the names it wants in ``result.figures``, and
:func:`draw` makes them.

    @register("my_figure")
    def my_figure(result): ...
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch

from . import paper
from .results import ExperimentResult

FIGURES: dict[str, Callable] = {}


def register(name: str):
    """Register the decorated ``(result) -> figure`` function as figure ``name``."""
    def add(fn):
        FIGURES[name] = fn
        return fn
    return add


def draw(result: ExperimentResult) -> dict:
    """The figures ``result.figures`` names, drawn in seaborn's ``whitegrid`` style:
    ``{name: matplotlib figure}``."""
    import seaborn as sns

    unknown = [n for n in result.figures if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; registered: {sorted(FIGURES)}")
    with sns.axes_style("whitegrid"):
        return {name: FIGURES[name](result) for name in result.figures}


def _first(net: torch.nn.Module, kind: type) -> torch.nn.Module:
    return next(m for m in net.modules() if isinstance(m, kind))


@register("test_error")
def test_error(result: ExperimentResult):
    """Test error against iteration, with the paper's final error as a line."""
    import matplotlib.pyplot as plt

    h = result.tables["history"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(h["iter"], 100 * h["test_error"], marker="o", label="ours")
    if result.meta.get("paper_error") is not None:
        ax.axhline(result.meta["paper_error"], color="k", ls="--", lw=1, label="paper")
    ax.set(xlabel="iteration", ylabel="test error %",
           title=f"{result.meta['model']} baseline ({result.meta['profile']})")
    ax.legend()
    fig.tight_layout()
    return fig


@register("figure3_conv1_filters")
@register("figure5_conv1_filters")
def first_conv_filters(result: ExperimentResult):
    """Figure 3 (Figure 5 for RGB inputs): the first conv layer's filters of the baseline and
    each SSL run, one row per network; all-zero filters are blank."""
    import matplotlib.pyplot as plt

    nets = result.objects["models"]
    n = _first(next(iter(nets.values())), torch.nn.Conv2d).out_channels
    fig, axes = plt.subplots(len(nets), n, figsize=(12, 0.75 * len(nets) + 0.4), squeeze=False)
    for i, (label, net) in enumerate(nets.items()):
        w = _first(net, torch.nn.Conv2d).weight.detach().cpu().numpy()
        lim = np.abs(w).max() or 1.0
        for j in range(n):
            ax = axes[i, j]
            if not w[j].any():
                ax.imshow(np.ones(w[j].shape[1:]), cmap="gray", vmin=0, vmax=1)
            elif w.shape[1] == 3:   # RGB filters, scaled to [0, 1] together
                ax.imshow((w[j].transpose(1, 2, 0) / lim + 1) / 2)
            else:
                ax.imshow(w[j, 0], cmap="gray", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", fontsize=8)
    fig.suptitle("first conv layer's filters (all-zero filters blank)", fontsize=9)
    return fig


@register("figure4b_input_pixels")
def input_pixels(result: ExperimentResult):
    """Figure 4(b): how many connections each input pixel keeps in the first fully connected
    layer of each SSL run, and the share of pixels with none."""
    import matplotlib.pyplot as plt

    nets = {k: v for k, v in result.objects["models"].items() if k != "baseline"}
    fig, axes = plt.subplots(1, len(nets), figsize=(3.2 * len(nets), 3), squeeze=False)
    for ax, (label, net) in zip(axes[0], nets.items()):
        kept = (_first(net, torch.nn.Linear).weight.detach().cpu() != 0).sum(0)
        side = int(round(kept.numel() ** 0.5))
        im = ax.imshow(kept.view(side, side).numpy(), cmap="viridis")
        ax.set_title(f"{label}: {100 * float((kept == 0).float().mean()):.1f}% pixels dead", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle("connections kept per input pixel (first layer)", fontsize=9)
    return fig


@register("figure1_csr_speedup")
def csr_speedup(result: ExperimentResult):
    """Figure 1 (on our device): sparsity bars and CSR speedup of the l1 rows of Table 4 per
    layer, the paper's GPU speedups dotted."""
    import matplotlib.pyplot as plt

    m = result.tables["layers"]
    l1 = m[(m["threads"] == 1) & (m["method"] == "l1")]
    layers = list(dict.fromkeys(l1["layer"]))
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax2 = ax.twinx()
    ax2.grid(False)  # one grid (the left axis's), not two misaligned ones
    for k, (r, grp) in enumerate(l1.groupby("table4 row")):
        xs = [i + 0.38 * (k - 0.5) for i in range(len(grp))]
        ax.bar(xs, grp["element sparsity %"], width=0.36, alpha=0.35, label=f"sparsity, row {r}")
        ax2.plot(range(len(grp)), grp["speedup gemm: csr"], marker="o", label=f"CSR speedup, row {r}")
        ax2.plot(range(len(grp)), paper.table4_row(int(r))["gpu_speedup"], ls=":", marker="x",
                 label=f"paper GPU, row {r}")
    ax2.axhline(1, color="k", lw=0.8)
    ax.set(xticks=range(len(layers)), xticklabels=layers, ylabel="sparsity %", ylim=(0, 100))
    ax2.set(ylabel="speedup over dense")
    ax.set_title(f"CSR vs dense GEMM, l1-sparse AlexNet layers\n{result.meta['torch_device']}", fontsize=9)
    h1, lab1 = ax.get_legend_handles_labels()
    h2, lab2 = ax2.get_legend_handles_labels()
    ax2.legend(h1 + h2, lab1 + lab2, fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


@register("table4_ssl_speedup")
def ssl_speedup(result: ExperimentResult):
    """The SSL rows of Table 4: measured compact-GEMM speedup per layer against the ideal (the
    FLOP ratio) and the paper's CPU speedup."""
    import matplotlib.pyplot as plt

    m = result.tables["layers"]
    ssl_rows = m[(m["threads"] == 1) & (m["method"] == "ssl")]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for r, grp in ssl_rows.groupby("table4 row"):
        ax.plot(grp["layer"], grp["speedup gemm: compact"], marker="o", label=f"ours, row {r}")
        ax.plot(grp["layer"], grp["ideal speedup"], ls="--", label=f"ideal, row {r}")
        ax.plot(grp["layer"], paper.table4_row(int(r))["cpu_speedup"], ls=":", marker="x", label=f"paper CPU, row {r}")
    ax.set(ylabel="speedup over dense GEMM", title="SSL: GEMM on the non-zero rows and columns")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


@register("figure6_depth")
def depth_points(result: ExperimentResult):
    """Figure 6: error against SSL-ResNet-# (layers kept), the baselines as horizontal lines
    (ours solid, the paper's dotted); right, the conv layers kept per output map size."""
    import matplotlib.pyplot as plt

    points = result.tables["points"].sort_values("layers")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(points["layers"], points["our error %"], marker="o", label="SSL (ours)")
    paper_points = points.dropna(subset=["paper error %"])
    if len(paper_points):
        left.plot(paper_points["layers"], paper_points["paper error %"], "kx", label="SSL (paper)")
    for i, (_, row) in enumerate(result.tables["baselines"].iterrows()):
        left.axhline(row["our error %"], color=f"C{i + 1}", lw=1, label=f"{row['network']} (ours)")
        if pd.notna(row["paper error %"]):
            left.axhline(row["paper error %"], color=f"C{i + 1}", lw=1, ls=":", label=f"{row['network']} (paper)")
    left.set(xlabel="SSL-ResNet-#", ylabel="% error", title=f"depth-wise SSL ({result.meta['profile']})")
    left.legend(fontsize=7)
    maps = [c for c in points.columns if c.startswith("conv layers ")]
    width = 0.8 / max(len(maps), 1)
    for k, col in enumerate(maps):
        right.bar([i + k * width for i in range(len(points))], points[col].fillna(0), width=width,
                  label=col.replace("conv layers ", ""))
    right.set(xticks=[i + width * (len(maps) - 1) / 2 for i in range(len(points))],
              xticklabels=points["SSL-ResNet"], ylabel="# conv layers")
    right.legend(fontsize=7, title="output map", title_fontsize=7)
    fig.tight_layout()
    return fig


@register("figure7b_pca")
def pca_curves(result: ExperimentResult):
    """Figure 7(b): reconstruction error of each conv layer's weight against the % of principal
    components kept, one panel per network, baseline dashed and SSL solid (a colour per layer)."""
    import matplotlib.pyplot as plt

    curves = result.tables["curves"]
    networks = list(dict.fromkeys(curves["network"])) or ["(no trained weights found)"]
    fig, axes = plt.subplots(1, len(networks), figsize=(4.2 * len(networks), 3.6), squeeze=False)
    for ax, network in zip(axes[0], networks):
        part = curves[curves["network"] == network]
        for i, layer in enumerate(dict.fromkeys(part["layer"])):
            for run, style in (("baseline", "--"), (None, "-")):
                sel = part[(part["layer"] == layer) & ((part["run"] == "baseline") == (run == "baseline"))]
                label = f"{layer} ({'baseline' if run else sel['run'].iloc[0]})" if len(sel) else None
                ax.plot(sel["% components"], sel["% error"], style, color=f"C{i}", label=label)
        ax.set(xlabel="% principal components kept", ylabel="% reconstruction error", title=network,
               xlim=(0, 100), ylim=(0, 100))
        if len(part):
            ax.legend(fontsize=7)
    fig.suptitle(f"PCA of conv filters: baseline dashed, SSL solid ({result.meta['profile']})", fontsize=9)
    fig.tight_layout()
    return fig
