"""Timing of convolution layers lowered to GEMM as in Caffe (im2col), dense vs sparse.

Per layer (one image, as Caffe lowers one image at a time; a grouped conv is g GEMMs):

    gemm: dense      W (N/g x C/g*M*K) @ X (C/g*M*K x H_out*W_out)        MKL / cuBLAS
    gemm: csr        CSR(W) @ X, for non-structured sparsity                MKL / cuSPARSE
    gemm: compact    W[rows, cols] @ X[cols]: the GEMM on the concatenated  MKL / cuBLAS
                     non-zero rows and columns (SSL)
    gemm: 2:4        semi-structured sparse W (CUDA only)                   cuSPARSELt / CUTLASS
    layer: im2col+dense, layer: im2col+compact (gathering only needed columns),
    layer: conv dense, layer: conv thinned (native conv, cuDNN/oneDNN, on the layer with its
    zero filters and zero input channels removed: what a thinned dense network runs)

The paper timed the GEMM alone; the layer timings show what the lowering costs around it.
Times are medians from ``torch.utils.benchmark`` (warm-up, fixed thread count; on CUDA the
benchmark synchronizes); the methods of one layer are timed interleaved, round-robin, and each
median comes with its spread (interquartile range over the rounds).
"""
from __future__ import annotations

import copy
import logging

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

# torch.utils.benchmark imports torch.utils.cpp_extension, which warns "No CUDA runtime is
# found" on every machine with a CUDA toolkit and no GPU; nothing here compiles an extension.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
import torch.utils.benchmark as benchmark  # noqa: E402

from sslkit.sparsity.groups import lowered, zero_groups
from sslkit.sparsity.lowering import LoweredLayer, live, trace
from sslkit.training.runtime import device_name
from sslkit.util.profiles import Timing


def sparse_weight(spec: LoweredLayer, *, element: float = 0.0, rows: float = 0.0, cols: float = 0.0,
                  seed: int = 0, device="cpu") -> torch.Tensor:
    """A random weight (N, C/g, M, K) for the conv ``spec`` with the given sparsities (fractions): random
    single weights (``element``, non-structured), or whole rows (filters) and columns (shape
    fibers) of each group's lowered matrix (structured). Exactly round(f * n) are zeroed."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(spec.groups, spec.rows, spec.cols, generator=g)
    for grp in range(spec.groups):
        if rows:
            w[grp, torch.randperm(spec.rows, generator=g)[:round(rows * spec.rows)]] = 0
        if cols:
            w[grp, :, torch.randperm(spec.cols, generator=g)[:round(cols * spec.cols)]] = 0
        if element:
            flat = w[grp].view(-1)
            flat[torch.randperm(flat.numel(), generator=g)[:round(element * flat.numel())]] = 0
    c = spec.in_shape[0] // spec.groups
    return w.view(spec.out_channels, c, *spec.kernel).to(device)


def _lowered(spec: LoweredLayer, weight: torch.Tensor):
    """Per group: the lowered weight, the indices of its non-zero rows and columns."""
    live_rows, live_cols = live(weight, spec.groups)
    rows = [torch.nonzero(r).flatten() for r in live_rows]
    cols = [torch.nonzero(c).flatten() for c in live_cols]
    return lowered(weight, spec.groups), rows, cols


def _csr(w: torch.Tensor) -> list[torch.Tensor]:
    import warnings

    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return [wi.to_sparse_csr() for wi in w]


def operands(spec: LoweredLayer, weight: torch.Tensor, x: torch.Tensor | None = None, seed: int = 0) -> dict:
    """Everything the timed statements need, prepared ahead (format conversions are not timed)."""
    dev = weight.device
    if x is None:
        x = torch.randn(1, *spec.in_shape, generator=torch.Generator().manual_seed(seed + 1)).to(dev)
    w, rows, cols = _lowered(spec, weight)
    patches = F.unfold(x, spec.kernel, spec.dilation, spec.padding, spec.stride)[0]  # (C*M*K, L)
    patches = patches.view(spec.groups, spec.cols, -1)
    ops = {
        "x": x, "weight": weight, "spec": spec, "w": list(w), "patches": list(patches),
        "csr": _csr(w),
        "w_compact": [w[i][rows[i]][:, cols[i]].contiguous() for i in range(spec.groups)],
        "p_compact": [patches[i][cols[i]].contiguous() for i in range(spec.groups)],
        "col_index": torch.cat([cols[i] + i * spec.cols for i in range(spec.groups)]),
    }
    # The thinned native conv: zero filters and all-zero input channels removed.
    live_f = torch.nonzero(~zero_groups(weight, "filter")).flatten()
    live_c = torch.nonzero(~zero_groups(weight, "channel")).flatten()
    if spec.groups == 1 and len(live_f) and len(live_c):
        ops["thin_w"], ops["thin_x"] = weight[live_f][:, live_c].contiguous(), x[:, live_c].contiguous()
    ops["rows_kept"] = sum(len(r) for r in rows)
    ops["cols_kept"] = sum(len(c) for c in cols)
    ops["flop_ratio"] = (spec.groups * spec.rows * spec.cols) / max(sum(len(r) * len(c) for r, c in zip(rows, cols)), 1)
    return ops


# The timed statements: each takes the operands and returns the layer's (lowered) output.
def gemm_dense(o):
    return [torch.mm(w, p) for w, p in zip(o["w"], o["patches"])]


def gemm_csr(o):
    return [torch.sparse.mm(w, p) for w, p in zip(o["csr"], o["patches"])]


def gemm_compact(o):
    return [torch.mm(w, p) for w, p in zip(o["w_compact"], o["p_compact"])]


def layer_im2col_dense(o):
    s = o["spec"]
    cols = F.unfold(o["x"], s.kernel, s.dilation, s.padding, s.stride)[0].view(s.groups, s.cols, -1)
    return torch.bmm(torch.stack(o["w"]), cols)


def layer_im2col_compact(o):
    s = o["spec"]
    cols = F.unfold(o["x"], s.kernel, s.dilation, s.padding, s.stride)[0].index_select(0, o["col_index"])
    out, start = [], 0
    for w in o["w_compact"]:
        out.append(torch.mm(w, cols[start:start + w.shape[1]]))
        start += w.shape[1]
    return out


def layer_conv_dense(o):
    s = o["spec"]
    return F.conv2d(o["x"], o["weight"], stride=s.stride, padding=s.padding, dilation=s.dilation, groups=s.groups)


def layer_conv_thin(o):
    s = o["spec"]
    return F.conv2d(o["thin_x"], o["thin_w"], stride=s.stride, padding=s.padding, dilation=s.dilation)


METHODS = {
    "gemm: dense": gemm_dense, "gemm: csr": gemm_csr, "gemm: compact": gemm_compact,
    "layer: im2col+dense": layer_im2col_dense, "layer: im2col+compact": layer_im2col_compact,
    "layer: conv dense": layer_conv_dense, "layer: conv thinned": layer_conv_thin,
}


def semi_structured_24(o) -> dict | None:
    """Operands for 2:4 semi-structured sparsity (CUDA, fp16): the dense weight pruned to 2 of
    every 4 by magnitude; None where unsupported."""
    if o["x"].device.type != "cuda":
        return None
    try:
        from torch.sparse import to_sparse_semi_structured
        out = []
        for w, p in zip(o["w"], o["patches"]):
            w16 = w.half()
            r, c = w16.shape
            if r % 64 or c % 64:
                return None
            g4 = w16.view(r, c // 4, 4)
            keep = g4.abs().topk(2, dim=-1).indices
            mask = torch.zeros_like(g4, dtype=torch.bool).scatter_(-1, keep, True).view(r, c)
            pruned = w16 * mask
            out.append((pruned, to_sparse_semi_structured(pruned), p.half().contiguous()))
        return {"pairs": out}
    except (RuntimeError, ImportError, ValueError):
        return None


def time_interleaved(fns: dict, arg, *, threads: int = 1, min_run_time: float = 0.2, rounds: int | None = None) -> dict:
    """Time several statements on the same operands round-robin: ``rounds`` rounds, each timing
    one block of every statement in turn, so a machine that slows down or speeds up meanwhile
    affects all of them alike and their ratios stay trustworthy.

    Args:
        fns: name -> ``fn(arg)``.
        arg: the operands.
        threads: intra-op threads.
        min_run_time: about how long each statement is timed in all (seconds).
        rounds: blocks per statement (at least 3; default 7, and 3 under a ``min_run_time``
            below 0.1 s, the smoke profile's, whose timings mean nothing).
    Returns:
        name -> ``{"median", "min", "max", "iqr"}``, seconds per call over the blocks.
    """
    rounds = max(rounds or (3 if min_run_time < 0.1 else 7), 3)
    timers, number = {}, {}
    for name, fn in fns.items():
        fn(arg)  # warm-up (lazy init, MKL handles)
        timers[name] = benchmark.Timer(stmt="fn(arg)", globals={"fn": fn, "arg": arg}, num_threads=threads)
        once = min(timers[name].timeit(1).median for _ in range(3))
        number[name] = max(1, int(min_run_time / rounds / max(once, 1e-7)))
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(number[name]).median)
    out = {}
    for name, xs in samples.items():
        q = torch.tensor(xs, dtype=torch.float64).quantile(torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
        out[name] = {"median": float(q[1]), "min": min(xs), "max": max(xs), "iqr": float(q[2] - q[0])}
    return out


def time_layer(spec: LoweredLayer, weight: torch.Tensor, *, threads: int = 1, min_run_time: float = 0.2,
               methods: list[str] | None = None) -> dict:
    """Median time (s) of each method on one layer, timed interleaved (:func:`time_interleaved`),
    with its spread and the counts that explain them.

    A layer whose weight is all zero (depth-wise SSL removes such layers) has no compact GEMM
    and no thinned conv: those are not timed, and ``removed`` is True.

    Returns:
        dict: layer, threads, density, rows/cols kept, ideal speedup (the FLOP ratio of the
        compact GEMM), ``removed``, and for each method run ``time <method>`` (median) and
        ``spread <method>`` (the interquartile range over the rounds, % of the median).
    """
    o = operands(spec, weight)
    removed = o["rows_kept"] == 0 or o["cols_kept"] == 0
    row = {"layer": spec.name, "threads": threads, "device": weight.device.type,
           "element sparsity %": 100 * float((weight == 0).float().mean()),
           "rows kept": o["rows_kept"], "rows": spec.groups * spec.rows,
           "cols kept": o["cols_kept"], "cols": spec.groups * spec.cols,
           "ideal speedup": float("inf") if removed else o["flop_ratio"], "removed": removed}
    skip = {"gemm: compact", "layer: im2col+compact", "layer: conv thinned"} if removed else set()
    if "thin_w" not in o:
        skip.add("layer: conv thinned")
    chosen = {name: METHODS[name] for name in (methods or METHODS) if name not in skip and name in METHODS}
    _record(row, time_interleaved(chosen, o, threads=threads, min_run_time=min_run_time))
    semi = semi_structured_24(o) if methods is None or "gemm: 2:4" in methods else None
    if semi is not None:
        pair = {"gemm: dense fp16": lambda s: [torch.mm(w, p) for w, _, p in s["pairs"]],
                "gemm: 2:4": lambda s: [torch.mm(sw, p) for _, sw, p in s["pairs"]]}
        _record(row, time_interleaved(pair, semi, threads=threads, min_run_time=min_run_time))
    return row


def _record(row: dict, timed: dict) -> None:
    """Put each method's median (``time <method>``) and spread (``spread <method>``, the IQR in
    % of the median) of :func:`time_interleaved` into ``row``."""
    for name, t in timed.items():
        row[f"time {name}"] = t["median"]
        row[f"spread {name}"] = 100 * t["iqr"] / t["median"] if t["median"] else float("nan")


def speedups(row: dict) -> dict:
    """Speedup of each method over ``gemm: dense`` (and 2:4 over dense fp16), and the efficiency
    of the compact GEMM (measured / ideal speedup)."""
    out = {}
    base = row.get("time gemm: dense")
    for key, t in row.items():
        if key.startswith("time ") and base and t:
            ref = row.get("time gemm: dense fp16") if key == "time gemm: 2:4" else \
                row.get("time layer: im2col+dense") if key.startswith("time layer: im2col") else \
                row.get("time layer: conv dense") if key.startswith("time layer: conv") else base
            out["speedup " + key[5:]] = ref / t
    if "speedup gemm: compact" in out:
        out["efficiency"] = out["speedup gemm: compact"] / row["ideal speedup"]
    return out


def answering_speedup(method: str) -> str:
    """The speedup column that answers the paper's for a Table 4 method: CSR over dense for
    ``l1`` rows, the compact GEMM over dense for SSL rows."""
    return "speedup gemm: csr" if method == "l1" else "speedup gemm: compact"


def conv_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[LoweredLayer]:
    """The conv layers of ``model`` (input ``input_shape``) as :class:`LoweredLayer` s."""
    return trace(model, input_shape, kinds=nn.Conv2d)


def compact_speedups(model: nn.Module, input_shape: tuple[int, ...], *, min_run_time: float = 0.2) -> dict[str, float]:
    """Measured speedup of each conv layer's compact GEMM (non-zero rows and columns) over the
    dense GEMM with the layer's weights, one CPU thread, as the paper timed Tables 1-3.

    Returns:
        ``{layer name: speedup}``.
    """
    out = {}
    for layer in conv_layers(model, input_shape):
        line = time_layer(layer, layer.module.weight.detach().cpu(), threads=1, min_run_time=min_run_time,
                          methods=["gemm: dense", "gemm: compact"])
        out[layer.name] = speedups(line).get("speedup gemm: compact", float("inf"))
    return out


# ---------------------------------------------------------------------------- whole networks
def network_latency(model: nn.Module, input_shape: tuple[int, ...], *, batches: tuple[int, ...] = (1, 64),
                    threads: tuple[int, ...] = (1,), min_run_time: float = 0.2, device: str = "cpu",
                    seed: int = 0) -> pd.DataFrame:
    """Forward latency of a sparse network (``model``: dense layers holding its zeros) against
    what compaction makes of it, each on the device's own kernels, timed interleaved:

    - ``dense``: ``model`` as it is (native conv through oneDNN / cuDNN, dense GEMM);
    - ``compact (native)``: dead channels, neurons and blocks removed, every layer still a
      native conv or linear layer (``compact(..., columns=False)``);
    - ``compact (lowered)``: also the zero shape fibers and rows skipped through the
      lowered-GEMM :class:`~sslkit.compaction.compact.LoweredConv` (``compact(...)``), which shape
      sparsity needs.

    Args:
        model: the network (not changed; copied to ``device`` in eval mode).
        input_shape: one sample's shape.
        batches, threads: the batch sizes and intra-op thread counts to time.
        min_run_time: seconds each variant is timed per (batch, threads).
    Returns:
        One row per (batch, threads): each variant's median ms and spread (IQR %), the best
        compact variant, its speedup over dense, the FLOP ratio (dense FLOPs / FLOPs left, the
        ideal speedup) and the efficiency (speedup / FLOP ratio).
    """
    from sslkit.compaction.compact import compact
    from sslkit.sparsity.stats import sparsity_report

    dense = copy.deepcopy(model).to(device).eval()
    report = sparsity_report(dense, input_shape)
    variants = {"dense": dense, "compact (native)": compact(dense, input_shape, columns=False),
                "compact (lowered)": compact(dense, input_shape)}
    flop_ratio = float(report["FLOP"].sum() / max(report["FLOP left"].sum(), 1))

    def forward(net):
        def fn(x):
            with torch.inference_mode():
                return net(x)
        return fn
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for b in batches:
        x = torch.randn(b, *input_shape, generator=gen).to(device)
        for t in threads:
            timed = time_interleaved({k: forward(m) for k, m in variants.items()}, x, threads=t,
                                     min_run_time=min_run_time)
            best = min((k for k in timed if k != "dense"), key=lambda k: timed[k]["median"])
            speedup = timed["dense"]["median"] / timed[best]["median"]
            row = {"batch": b, "threads": t}
            for k, v in timed.items():
                row[f"{k} ms"] = 1e3 * v["median"]
                row[f"spread {k} %"] = 100 * v["iqr"] / v["median"] if v["median"] else float("nan")
            rows.append({**row, "best compact": best, "speedup": speedup, "FLOP ratio": flop_ratio,
                         "efficiency": speedup / flop_ratio})
    return pd.DataFrame(rows)


def end_to_end(label: str, model, shape: tuple[int, ...], device, budget: Timing) -> pd.DataFrame:
    """Forward latency of ``model`` dense vs compacted (:func:`network_latency`) at the
    profile's batch sizes (1 and 64; smoke 1 and 8): on the CPU at its thread counts, and on
    ``device`` too when it is a GPU."""
    parts = [network_latency(model, shape, batches=budget.batches, threads=budget.threads,
                             min_run_time=budget.min_run_time).assign(device=device_name("cpu"))]
    if torch.device(device).type == "cuda":
        parts.append(network_latency(model, shape, batches=budget.batches, min_run_time=budget.min_run_time,
                                     device=str(device))
                     .assign(device=device_name(str(device))))
    out = pd.concat(parts, ignore_index=True)
    return out[["device"] + [c for c in out.columns if c != "device"]].assign(row=label)
