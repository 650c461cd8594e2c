"""Table 4's speed rows and Figure 1: lowered-GEMM time of the conv layers of Table 4's
network (AlexNet as CaffeNet) with the paper's per-layer sparsity, dense (MKL/cuBLAS) vs CSR
(MKL/cuSPARSE) vs the compact GEMM of the non-zero rows and columns (SSL); measured on this
machine, the paper's value beside."""
from __future__ import annotations

import time

import pandas as pd

from sslkit import models
from sslkit.analysis import timing
from sslkit.results import paper
from sslkit.results.record import ExperimentResult, provenance
from sslkit.sparsity.lowering import LoweredLayer
from sslkit.training.runtime import default_device, device_name
from sslkit.util import profiles
from sslkit.util.progress import bar


def table4_layers() -> list[LoweredLayer]:
    """The conv layers of Table 4's network at its input size (shapes traced from the model)."""
    network = models.get(paper.TABLE4_NETWORK)
    return timing.conv_layers(network.build(), network.input_shape)


def measure(table4_rows=(1, 2, 4, 5), *, threads=(1,), device: str = "cpu", min_run_time: float = 0.2,
            seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Time every conv layer of Table 4's network at the sparsity of each Table 4 row.

    Returns:
        One line per (Table 4 row, layer, threads): times of every method, speedups over
        dense, the ideal speedup (FLOP ratio) and the efficiency of the compact GEMM.
    """
    out = []
    layers = table4_layers()
    jobs = [(r, i, t) for r in table4_rows for i in range(len(layers))
            for t in (threads if device == "cpu" else (1,))]
    for r, i, t in bar(jobs, desc="timing", enabled=progress):
        prow = paper.table4_row(r)
        spec = layers[i]
        if "sparsity" in prow:
            w = timing.sparse_weight(spec, element=prow["sparsity"][i] / 100, seed=seed + i, device=device)
        else:
            w = timing.sparse_weight(spec, rows=prow["row_sparsity"][i] / 100, cols=prow["column_sparsity"][i] / 100,
                                     seed=seed + i, device=device)
        line = timing.time_layer(spec, w, threads=t, min_run_time=min_run_time)
        out.append({"table4 row": r, "method": prow["method"], **line, **timing.speedups(line)})
    return pd.DataFrame(out)


def compare(measured: pd.DataFrame, device: str) -> pd.DataFrame:
    """Table 4's speed rows: paper (CPU, GPU) beside ours (this device, 1 thread on CPU). The
    speedup that answers the paper's is CSR for l1 rows and the compact GEMM for SSL rows."""
    out = []
    kind = "gpu" if device == "cuda" else "cpu"
    layers = list(dict.fromkeys(measured["layer"]))
    for r in sorted(measured["table4 row"].unique()):
        prow = paper.table4_row(int(r))
        m = measured[(measured["table4 row"] == r) & (measured["threads"] == 1)].set_index("layer")
        key = timing.answering_speedup(prow["method"])
        stat = "sparsity" if prow["method"] == "l1" else "column sparsity"
        out.append({"table4 row": r, "method": prow["method"], "statistic": stat + " % (paper)",
                    **dict(zip(layers, prow.get("sparsity", prow.get("column_sparsity"))))})
        out.append({"table4 row": r, "method": prow["method"], "statistic": "paper CPU speedup", **dict(zip(layers, prow["cpu_speedup"]))})
        out.append({"table4 row": r, "method": prow["method"], "statistic": "paper GPU speedup", **dict(zip(layers, prow["gpu_speedup"]))})
        out.append({"table4 row": r, "method": prow["method"], "statistic": f"our {kind.upper()} speedup",
                    **{l: round(m.loc[l, key], 2) for l in layers}})
        if prow["method"] == "ssl":
            out.append({"table4 row": r, "method": prow["method"], "statistic": "ideal (FLOP ratio)",
                        **{l: round(m.loc[l, "ideal speedup"], 2) for l in layers}})
            out.append({"table4 row": r, "method": prow["method"], "statistic": "our efficiency (measured/ideal)",
                        **{l: round(m.loc[l, "efficiency"], 2) for l in layers}})
        other = "GPU" if kind == "cpu" else "CPU"
        out.append({"table4 row": r, "method": prow["method"], "statistic": f"our {other} speedup",
                    **{l: f"not measured (no {'CUDA' if other == 'GPU' else 'CPU run'} here)" for l in layers}})
    return pd.DataFrame(out)


def run(*, profile: str = profiles.DEFAULT, device: str | None = None, table4_rows: list = [1, 2, 4, 5],  # noqa: B006
        threads: list | None = None, seed: int = 0, name: str = "table4_speed", figures: list | None = None,
        data_root: str | None = None, force: bool = False, progress: bool = True) -> ExperimentResult:
    """Measure Table 4's speed rows on ``device`` (default: CUDA when available).

    Args:
        profile: sets the timing budget per measurement and the thread sweep (bench sizes).
        device: ``cpu`` or ``cuda``.
        table4_rows: Table 4 rows (1, 2, 4, 5 have speeds).
        threads: CPU thread counts to sweep (default: the profile's, capped at the cores here).
        seed: seeds the random sparsity patterns.
        name: the results folder's name (``<name>_cpu`` or ``<name>_gpu`` under figures/).
        figures: registered figures to draw (default: Figure 1 and the SSL speedups).
        data_root, force: accepted for a uniform interface (no data, nothing cached).
    Returns:
        Tables ``table4`` (paper beside ours) and ``layers`` (every measurement).
    """
    import os

    t0 = time.perf_counter()
    dev = device or str(default_device())
    budget = profiles.timing(profile)
    sweep = tuple(t for t in (threads or budget.threads) if t <= (os.cpu_count() or 1)) or (1,)
    if 1 not in sweep:
        sweep = (1, *sweep)
    measured = measure(tuple(table4_rows), threads=sweep, device=dev, min_run_time=budget.min_run_time, seed=seed,
                       progress=progress)
    meta = provenance(profile=profile, device=dev, data=f"none: {paper.TABLE4_NETWORK} layer shapes with Table 4's "
                      "sparsity (random patterns)", wall_s=time.perf_counter() - t0, seed=seed, threads=list(sweep),
                      paper_devices=paper.TABLE4_DEVICES, torch_device=device_name(dev))
    suffix = "gpu" if dev == "cuda" else "cpu"
    methods = set(measured["method"])
    default = tuple(f for f, m in (("figure1_csr_speedup", "l1"), ("table4_ssl_speedup", "ssl")) if m in methods)
    return ExperimentResult(f"{name}_{suffix}", {"table4": compare(measured, dev), "layers": measured}, meta,
                            figures=tuple(figures) if figures is not None else default)
