"""Table 4's speed rows and Figure 1: lowered-GEMM time of CaffeNet's conv layers with the
paper's per-layer sparsity, dense (MKL/cuBLAS) vs CSR (MKL/cuSPARSE) vs the compact GEMM of
the non-zero rows and columns (SSL); measured on this machine, the paper's value beside."""
from __future__ import annotations

import time

import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import paper, profiles, timing
from ..results import ExperimentResult, device_name, provenance

LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5"]


def measure(rows=(1, 2, 4, 5), *, threads=(1,), device: str = "cpu", min_run_time: float = 0.2,
            seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Time every CaffeNet conv layer at the sparsity of each Table 4 row.

    Returns:
        One line per (row, layer, threads): times of every method, speedups over dense,
        the ideal speedup (FLOP ratio) and the efficiency of the compact GEMM.
    """
    out = []
    jobs = [(r, i, t) for r in rows for i in range(len(LAYERS)) for t in (threads if device == "cpu" else (1,))]
    for r, i, t in tqdm(jobs, desc="timing", disable=not progress or None, leave=False):
        prow = paper.table4_row(r)
        spec = timing.CAFFENET[i]
        if "sparsity" in prow:
            w = timing.sparse_weight(spec, element=prow["sparsity"][i] / 100, seed=seed + i, device=device)
        else:
            w = timing.sparse_weight(spec, rows=prow["row_sparsity"][i] / 100, cols=prow["column_sparsity"][i] / 100,
                                     seed=seed + i, device=device)
        line = timing.time_layer(spec, w, threads=t, min_run_time=min_run_time)
        out.append({"row": r, "method": prow["method"], **line, **timing.speedups(line)})
    return pd.DataFrame(out)


def compare(measured: pd.DataFrame, device: str) -> pd.DataFrame:
    """Table 4's speed rows: paper (CPU, GPU) beside ours (this device, 1 thread on CPU). The
    speedup that answers the paper's is CSR for l1 rows and the compact GEMM for SSL rows."""
    out = []
    kind = "gpu" if device == "cuda" else "cpu"
    for r in sorted(measured["row"].unique()):
        prow = paper.table4_row(int(r))
        m = measured[(measured["row"] == r) & (measured["threads"] == 1)].set_index("layer")
        key = "speedup gemm: csr" if prow["method"] == "l1" else "speedup gemm: compact"
        stat = "sparsity" if prow["method"] == "l1" else "column sparsity"
        out.append({"row": r, "method": prow["method"], "statistic": stat + " % (paper)",
                    **dict(zip(LAYERS, prow.get("sparsity", prow.get("column_sparsity"))))})
        out.append({"row": r, "method": prow["method"], "statistic": "paper CPU speedup", **dict(zip(LAYERS, prow["cpu_speedup"]))})
        out.append({"row": r, "method": prow["method"], "statistic": "paper GPU speedup", **dict(zip(LAYERS, prow["gpu_speedup"]))})
        out.append({"row": r, "method": prow["method"], "statistic": f"our {kind.upper()} speedup",
                    **{l: round(m.loc[l, key], 2) for l in LAYERS}})
        if prow["method"] == "ssl":
            out.append({"row": r, "method": prow["method"], "statistic": "ideal (FLOP ratio)",
                        **{l: round(m.loc[l, "ideal speedup"], 2) for l in LAYERS}})
            out.append({"row": r, "method": prow["method"], "statistic": "our efficiency (measured/ideal)",
                        **{l: round(m.loc[l, "efficiency"], 2) for l in LAYERS}})
        other = "GPU" if kind == "cpu" else "CPU"
        out.append({"row": r, "method": prow["method"], "statistic": f"our {other} speedup",
                    **{l: f"not measured (no {'CUDA' if other == 'GPU' else 'CPU run'} here)" for l in LAYERS}})
    return pd.DataFrame(out)


def run(*, profile: str = "quick", device: str | None = None, rows: list = [1, 2, 4, 5],  # noqa: B006
        threads: list | None = None, seed: int = 0, name: str = "table4_speed", data_root=None,
        force: bool = False, progress: bool = True) -> ExperimentResult:
    """Measure Table 4's speed rows on ``device`` (default: CUDA when available).

    Args:
        profile: sets the timing budget per measurement and the thread sweep (bench sizes).
        device: ``cpu`` or ``cuda``.
        rows: Table 4 rows (1, 2, 4, 5 have speeds).
        threads: CPU thread counts to sweep (default: the profile's, capped at the cores here).
        seed: seeds the random sparsity patterns.
        name: the results folder's name (``<name>_cpu`` or ``<name>_gpu`` under figures/).
        data_root, force: accepted for a uniform interface (no data, nothing cached).
    Returns:
        Tables ``table4`` (paper beside ours) and ``layers`` (every measurement).
    """
    import os

    t0 = time.perf_counter()
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    sizes = profiles.sizes(profile, "bench")
    sweep = tuple(t for t in (threads or sizes["threads"]) if t <= (os.cpu_count() or 1)) or (1,)
    if 1 not in sweep:
        sweep = (1, *sweep)
    measured = measure(tuple(rows), threads=sweep, device=dev, min_run_time=sizes["min_run_time"], seed=seed,
                       progress=progress)
    meta = provenance(profile=profile, device=dev, data="none: CaffeNet layer shapes with Table 4's sparsity "
                      "(random patterns)", wall_s=time.perf_counter() - t0, seed=seed, threads=list(sweep),
                      paper_devices=paper.TABLE4_DEVICES, torch_device=device_name(dev))
    suffix = "gpu" if dev == "cuda" else "cpu"
    return ExperimentResult(f"{name}_{suffix}", {"table4": compare(measured, dev), "layers": measured}, meta)


def plot(result: ExperimentResult) -> dict:
    """Figure 1 (our device): sparsity bars and CSR speedup of the l1 rows per layer; and the
    SSL rows' compact-GEMM speedup against the ideal."""
    import matplotlib.pyplot as plt

    m = result.tables["layers"]
    m1 = m[m["threads"] == 1]
    figs = {}
    l1 = m1[m1["method"] == "l1"]
    if len(l1):
        fig, ax = plt.subplots(figsize=(6.5, 3.4))
        ax2 = ax.twinx()
        for k, (r, grp) in enumerate(l1.groupby("row")):
            xs = [i + 0.38 * (k - 0.5) for i in range(len(grp))]
            ax.bar(xs, grp["element sparsity %"], width=0.36, alpha=0.35, label=f"sparsity, row {r}")
            ax2.plot(range(len(grp)), grp["speedup gemm: csr"], marker="o", label=f"CSR speedup, row {r}")
            prow = paper.table4_row(int(r))
            ax2.plot(range(len(grp)), prow["gpu_speedup"], ls=":", marker="x", label=f"paper GPU, row {r}")
        ax2.axhline(1, color="k", lw=0.8)
        ax.set(xticks=range(len(LAYERS)), xticklabels=LAYERS, ylabel="sparsity %", ylim=(0, 100))
        ax2.set(ylabel="speedup over dense")
        ax.set_title(f"CSR vs dense GEMM, l1-sparse AlexNet layers\n{result.meta['torch_device']}", fontsize=9)
        h1, lab1 = ax.get_legend_handles_labels()
        h2, lab2 = ax2.get_legend_handles_labels()
        ax2.legend(h1 + h2, lab1 + lab2, fontsize=7, loc="upper left")
        fig.tight_layout()
        figs["figure1_csr_speedup"] = fig
    ssl = m1[m1["method"] == "ssl"]
    if len(ssl):
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        for r, grp in ssl.groupby("row"):
            ax.plot(grp["layer"], grp["speedup gemm: compact"], marker="o", label=f"ours, row {r}")
            ax.plot(grp["layer"], grp["ideal speedup"], ls="--", label=f"ideal, row {r}")
            ax.plot(grp["layer"], paper.table4_row(int(r))["cpu_speedup"], ls=":", marker="x", label=f"paper CPU, row {r}")
        ax.set(ylabel="speedup over dense GEMM", title="SSL: GEMM on the non-zero rows and columns")
        ax.legend(fontsize=7)
        fig.tight_layout()
        figs["table4_ssl_speedup"] = fig
    return figs
