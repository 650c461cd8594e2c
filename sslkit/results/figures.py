"""The figures by name (:data:`FIGURES`, at the end of this file). Each takes an
:class:`ExperimentResult` and returns a matplotlib figure; an experiment lists the names it
wants in ``result.figures``, and :func:`draw` makes them. A new figure is a function here and
a line in :data:`FIGURES`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch

from sslkit.analysis import timing
from sslkit.results import paper
from sslkit.results.record import ExperimentResult

def draw(result: ExperimentResult) -> dict:
    """The figures ``result.figures`` names, drawn in seaborn's ``whitegrid`` style:
    ``{name: matplotlib figure}``."""
    import seaborn as sns

    unknown = [n for n in result.figures if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; registered: {sorted(FIGURES)}")
    with sns.axes_style("whitegrid"):
        return {name: FIGURES[name](result) for name in result.figures}


def _finish(fig, title: str):
    """``fig`` with its suptitle, laid out."""
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _first(net: torch.nn.Module, kind: type) -> torch.nn.Module:
    return next(m for m in net.modules() if isinstance(m, kind))


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


def platform_speedups(result: ExperimentResult):
    """Figure 7(c) from our own training: per platform (CPU thread counts, GPUs), the mean
    speedup over conv1-conv5 of each trained row (CSR for l1, compact GEMM for SSL), and the
    paper's Table 4 row 1 / row 2 averages on its Xeon (1 thread) for reference."""
    import matplotlib.pyplot as plt

    speed = result.tables["speed"]
    speed = speed.assign(speedup=speed.apply(lambda line: line[timing.answering_speedup(line["method"])], axis=1))
    mean = speed.groupby(["platform", "table4 row", "method"], sort=False)["speedup"].mean().reset_index()
    platforms = list(dict.fromkeys(mean["platform"]))
    rows = list(dict.fromkeys(zip(mean["table4 row"], mean["method"])))
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(platforms), 3.4))
    width = 0.8 / max(len(rows), 1)
    for k, (r, method) in enumerate(rows):
        part = mean[mean["table4 row"] == r].set_index("platform")
        ax.bar([i + width * (k - (len(rows) - 1) / 2) for i in range(len(platforms))],
               [part["speedup"].get(p, np.nan) for p in platforms], width=width, label=f"row {r} ({method}), ours")
    for r, ls in ((1, ":"), (2, "--")):
        prow = paper.table4_row(r)
        ax.axhline(np.mean(prow["cpu_speedup"]), color="gray", ls=ls, lw=1,
                   label=f"paper row {r} ({prow['method']}), Xeon 1 thread")
    ax.axhline(1, color="k", lw=0.8)
    ax.set(xticks=range(len(platforms)), xticklabels=platforms, ylabel="mean speedup, conv1-conv5")
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7)
    return _finish(fig, f"l1 (CSR) vs SSL (compact GEMM) per platform, learned sparsity ({result.meta['profile']})")


def filters2d_sweep(result: ExperimentResult):
    """Figure 7(a): per conv layer, the 2-D filter sparsity (left) and the FLOP of 2-D
    convolutions saved as a share of all conv FLOP, with the total (right), against the top-1
    error of each point of the sweep; the baseline's error as a dashed vertical line."""
    import matplotlib.pyplot as plt

    points = result.tables["points"]
    swept = points.iloc[1:].sort_values("error %")
    layers = [c[len("2D-filter sparsity % "):] for c in points if c.startswith("2D-filter sparsity % ")]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, prefix, ylabel in ((axes[0], "2D-filter sparsity % ", "% 2-D filter sparsity"),
                               (axes[1], "FLOP saved % ", "% FLOP saved (of all conv FLOP)")):
        for layer in layers:
            ax.plot(swept["error %"], swept[prefix + layer], marker="o", label=layer)
        if prefix.startswith("FLOP"):
            ax.plot(swept["error %"], swept["FLOP saved %"], marker="s", color="k", label="total")
        ax.axvline(points.iloc[0]["error %"], color="k", ls="--", lw=1, label="baseline error")
        ax.set(xlabel="% top-1 error", ylabel=ylabel)
        ax.legend(fontsize=7)
    return _finish(fig, f"2-D-filter-wise SSL on {result.meta['model']} ({result.meta['profile']}; "
                        f"{result.meta['data'].split(' from ')[0]})")


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


def precision_errors(result: ExperimentResult):
    """Test error of each seed in fp32 and bf16, per network (one panel each), with the means."""
    import matplotlib.pyplot as plt

    runs = result.tables["runs"]
    names = list(dict.fromkeys(runs["network"]))
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.0), squeeze=False)
    for ax, name in zip(axes[0], names):
        mine = runs[runs["network"] == name]
        for i, (precision, group) in enumerate(mine.groupby("precision", sort=False)):
            ax.scatter([i] * len(group), group["error %"], color=f"C{i}", zorder=3)
            ax.hlines(group["error %"].mean(), i - 0.25, i + 0.25, color=f"C{i}")
        ax.set(xticks=range(mine["precision"].nunique()), xticklabels=list(dict.fromkeys(mine["precision"])),
               xlim=(-0.6, mine["precision"].nunique() - 0.4), ylabel="% test error",
               title=f"{name}, {int(mine['iterations'].iloc[0])} iterations")
    return _finish(fig, f"fp32 vs bf16, one point per seed ({result.meta['profile']})")


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
    return _finish(fig, f"PCA of conv filters: baseline dashed, SSL solid ({result.meta['profile']})")


def granularity_curves(result: ExperimentResult):
    """Mao et al.'s study: per network (columns), test error, compression ratio (the first
    weight width) and memory references relative to the dense layers (SCNN's counting solid,
    the row-wide variant dotted) against sparsity, one line per granularity; the baseline's
    error dashed, the tolerance dotted."""
    import matplotlib.pyplot as plt

    curves = result.tables["curves"]
    networks = list(dict.fromkeys(curves["network"]))
    compression = next(c for c in curves.columns if c.startswith("compression"))
    fig, axes = plt.subplots(3, len(networks), figsize=(4.2 * len(networks), 9), squeeze=False)
    for j, network in enumerate(networks):
        part = curves[curves["network"] == network]
        dense = part[part["granularity"] == "dense"].iloc[0]
        for i, g in enumerate(dict.fromkeys(part.loc[part["granularity"] != "dense", "granularity"])):
            sel = pd.concat([dense.to_frame().T, part[part["granularity"] == g]])
            sparsity = sel["sparsity %"].astype(float)
            axes[0, j].plot(sparsity, sel["error %"].astype(float), marker="o", ms=3, color=f"C{i}", label=g)
            axes[1, j].plot(sparsity, sel[compression].astype(float), marker="o", ms=3, color=f"C{i}", label=g)
            for key, style in (("memory refs: total", "-"), ("memory refs (row-wide): total", ":")):
                axes[2, j].plot(sparsity, 100 * sel[key].astype(float) / dense[key], style, marker="o", ms=3,
                                color=f"C{i}", label=g if style == "-" else None)
        axes[0, j].axhline(dense["error %"], color="k", ls="--", lw=1, label="baseline")
        tolerance = result.meta["tolerance_pp"][network]
        axes[0, j].axhline(dense["error %"] + tolerance, color="k", ls=":", lw=1, label=f"+{tolerance:g} pp")
        axes[0, j].set(title=network, ylabel="test error %")
        axes[1, j].set(ylabel=f"{compression}\n(with indices)")
        axes[2, j].set(ylabel="memory refs, % of dense\n(SCNN solid, row-wide dotted)",
                       xlabel="sparsity of the conv layers %")
        for ax in axes[:, j]:
            ax.legend(fontsize=7)
    return _finish(fig, f"Pruning granularity (Mao et al. 2017), {result.meta['profile']} profile")


def tradeoff_curves(result: ExperimentResult):
    """Test error against FLOP left, one row per sweep (paper table), the total then each
    layer in columns: our points by strength (a line), the paper's rows as black stars and the
    points picked for them ringed in red."""
    import matplotlib.pyplot as plt

    points, picked = result.tables["points"], result.tables["picked"]
    tables = list(dict.fromkeys(points["table"]))
    layer_cols = {t: [c for c in points.columns if c.startswith("FLOP % ") and points.loc[points["table"] == t, c].notna().all()]
                  for t in tables}
    ncols = 1 + max(len(v) for v in layer_cols.values())
    fig, axes = plt.subplots(len(tables), ncols, figsize=(3.4 * ncols, 3.2 * len(tables)), squeeze=False)
    for i, t in enumerate(tables):
        part = points[points["table"] == t].sort_values("strength")
        prows = paper.table(t).rows[1:]
        chosen = picked[picked["row"].isin([r["row"] for r in prows])]
        cols = ["total FLOP %"] + layer_cols[t]
        for j, col in enumerate(cols):
            ax = axes[i, j]
            ax.plot(part[col], part["error %"], marker="o", ms=4, label="ours (by strength)")
            for _, p in part.iterrows():
                ax.annotate(f"{p['strength']:g}", (p[col], p["error %"]), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
            for k, prow in enumerate(prows):
                x = (chosen.iloc[k]["paper total FLOP %"] if col == "total FLOP %"
                     else prow["flop"][j - 1])
                ax.plot(x, prow["error"], "k*", ms=9, label="paper" if k == 0 else None)
                ax.annotate(prow["row"], (x, prow["error"]), fontsize=7, xytext=(4, -9), textcoords="offset points")
                mine = part[part["strength"] == chosen.iloc[k]["strength"]].iloc[0]
                ax.plot(mine[col], mine["error %"], "o", mfc="none", mec="r", ms=11, label="picked" if k == 0 else None)
            ax.set(xlabel=col.replace("FLOP % ", "FLOP left % ") if j else "total FLOP left %", ylabel="test error %",
                   title=f"{t} ({paper.table(t).network}): {col.replace('FLOP % ', '') if j else 'total'}")
            ax.legend(fontsize=6)
        for ax in axes[i, len(cols):]:
            ax.axis("off")
    return _finish(fig, f"Error vs FLOP left over a sweep of group-Lasso strengths ({result.meta['profile']})")


# name -> (result) -> figure
FIGURES: dict[str, Callable] = {
    "test_error": test_error,
    "figure3_conv1_filters": first_conv_filters,
    "figure5_conv1_filters": first_conv_filters,
    "figure4b_input_pixels": input_pixels,
    "figure1_csr_speedup": csr_speedup,
    "table4_ssl_speedup": ssl_speedup,
    "figure7c_platforms": platform_speedups,
    "figure7a_2d_filters": filters2d_sweep,
    "figure6_depth": depth_points,
    "precision": precision_errors,
    "figure7b_pca": pca_curves,
    "granularity": granularity_curves,
    "tradeoff": tradeoff_curves,
}
