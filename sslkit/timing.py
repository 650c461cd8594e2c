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
Times are medians from ``torch.utils.benchmark`` (warm-up, blocked autorange, fixed thread
count); on CUDA the benchmark synchronizes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils.benchmark as benchmark

from . import groups as G


@dataclass
class ConvSpec:
    """A conv layer's shape: input (C, H, W), N filters of M x K, stride, padding, groups."""

    name: str
    in_shape: tuple[int, int, int]
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1

    @property
    def rows(self) -> int:
        return self.out_channels // self.groups

    @property
    def cols(self) -> int:
        return self.in_shape[0] // self.groups * self.kernel * self.kernel

    @property
    def positions(self) -> int:
        h = (self.in_shape[1] + 2 * self.padding - self.kernel) // self.stride + 1
        w = (self.in_shape[2] + 2 * self.padding - self.kernel) // self.stride + 1
        return h * w


# CaffeNet's conv layers (227 x 227 input), for the paper's Table 4 and Figure 1.
CAFFENET = [
    ConvSpec("conv1", (3, 227, 227), 96, 11, stride=4),
    ConvSpec("conv2", (96, 27, 27), 256, 5, padding=2, groups=2),
    ConvSpec("conv3", (256, 13, 13), 384, 3, padding=1),
    ConvSpec("conv4", (384, 13, 13), 384, 3, padding=1, groups=2),
    ConvSpec("conv5", (384, 13, 13), 256, 3, padding=1, groups=2),
]


def specs_from_model(model: torch.nn.Module, input_shape: tuple[int, ...]) -> tuple[list[ConvSpec], list[torch.Tensor]]:
    """The conv layers of a (trained) model as :class:`ConvSpec` s with their actual weights."""
    found = []

    def hook(mod, inp, _out):
        found.append((mod, tuple(inp[0].shape[1:])))
    names = {m: n for n, m in model.named_modules()}
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    handles = [m.register_forward_hook(hook) for m in convs]
    p = next(model.parameters())
    with torch.no_grad():
        model.eval()(torch.zeros(1, *input_shape, device=p.device, dtype=p.dtype))
    for h in handles:
        h.remove()
    specs = [ConvSpec(names[m], s, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0], m.groups)
             for m, s in found]
    return specs, [m.weight.detach() for m, _ in found]


def sparse_weight(spec: ConvSpec, *, element: float = 0.0, rows: float = 0.0, cols: float = 0.0,
                  seed: int = 0, device="cpu") -> torch.Tensor:
    """A random weight (N, C/g, M, K) for ``spec`` with the given sparsities (fractions): random
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
    return w.view(spec.out_channels, c, spec.kernel, spec.kernel).to(device)


def _lowered(spec: ConvSpec, weight: torch.Tensor):
    """Per group: the lowered weight, its non-zero rows and columns."""
    w = G.lowered(weight, spec.groups)
    nz = w != 0
    rows = [torch.nonzero(nz[i].any(1)).flatten() for i in range(spec.groups)]
    cols = [torch.nonzero(nz[i].any(0)).flatten() for i in range(spec.groups)]
    return w, rows, cols


def _csr(w: torch.Tensor) -> list[torch.Tensor]:
    import warnings

    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return [wi.to_sparse_csr() for wi in w]


def operands(spec: ConvSpec, weight: torch.Tensor, x: torch.Tensor | None = None, seed: int = 0) -> dict:
    """Everything the timed statements need, prepared ahead (format conversions are not timed)."""
    dev = weight.device
    if x is None:
        x = torch.randn(1, *spec.in_shape, generator=torch.Generator().manual_seed(seed + 1)).to(dev)
    w, rows, cols = _lowered(spec, weight)
    patches = F.unfold(x, spec.kernel, padding=spec.padding, stride=spec.stride)[0]  # (C*M*K, L)
    patches = patches.view(spec.groups, spec.cols, -1)
    ops = {
        "x": x, "weight": weight, "spec": spec, "w": list(w), "patches": list(patches),
        "csr": _csr(w),
        "w_compact": [w[i][rows[i]][:, cols[i]].contiguous() for i in range(spec.groups)],
        "p_compact": [patches[i][cols[i]].contiguous() for i in range(spec.groups)],
        "col_index": torch.cat([cols[i] + i * spec.cols for i in range(spec.groups)]),
    }
    # The thinned native conv: zero filters and all-zero input channels removed.
    live_f = torch.nonzero(weight.reshape(spec.out_channels, -1).any(1)).flatten()
    live_c = torch.nonzero(weight.transpose(0, 1).reshape(weight.shape[1], -1).any(1)).flatten()
    if spec.groups == 1:
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
    cols = F.unfold(o["x"], s.kernel, padding=s.padding, stride=s.stride)[0].view(s.groups, s.cols, -1)
    return torch.bmm(torch.stack(o["w"]), cols)


def layer_im2col_compact(o):
    s = o["spec"]
    cols = F.unfold(o["x"], s.kernel, padding=s.padding, stride=s.stride)[0].index_select(0, o["col_index"])
    out, start = [], 0
    for w in o["w_compact"]:
        out.append(torch.mm(w, cols[start:start + w.shape[1]]))
        start += w.shape[1]
    return out


def layer_conv_dense(o):
    s = o["spec"]
    return F.conv2d(o["x"], o["weight"], stride=s.stride, padding=s.padding, groups=s.groups)


def layer_conv_thin(o):
    s = o["spec"]
    return F.conv2d(o["thin_x"], o["thin_w"], stride=s.stride, padding=s.padding)


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


def time_fn(fn, arg, *, threads: int = 1, min_run_time: float = 0.2, label: str = "") -> float:
    """Median seconds of ``fn(arg)`` with ``threads`` intra-op threads (torch.utils.benchmark
    warms up, repeats in blocks and synchronizes CUDA)."""
    fn(arg)  # warm-up (lazy init, MKL handles)
    t = benchmark.Timer(stmt="fn(arg)", globals={"fn": fn, "arg": arg}, num_threads=threads, label=label)
    return t.blocked_autorange(min_run_time=min_run_time).median


def time_layer(spec: ConvSpec, weight: torch.Tensor, *, threads: int = 1, min_run_time: float = 0.2,
               methods: list[str] | None = None) -> dict:
    """Median time (s) of each method on one layer, with the counts that explain them.

    Returns:
        dict: layer, threads, density, rows/cols kept, ideal speedup (the FLOP ratio of the
        compact GEMM), and ``time <method>`` for each method run.
    """
    o = operands(spec, weight)
    row = {"layer": spec.name, "threads": threads, "device": weight.device.type,
           "element sparsity %": 100 * float((weight == 0).float().mean()),
           "rows kept": o["rows_kept"], "rows": spec.groups * spec.rows,
           "cols kept": o["cols_kept"], "cols": spec.groups * spec.cols, "ideal speedup": o["flop_ratio"]}
    for name in methods or METHODS:
        if name == "layer: conv thinned" and "thin_w" not in o:
            continue
        row[f"time {name}"] = time_fn(METHODS[name], o, threads=threads, min_run_time=min_run_time)
    semi = semi_structured_24(o) if methods is None or "gemm: 2:4" in methods else None
    if semi is not None:
        row["time gemm: dense fp16"] = time_fn(lambda s: [torch.mm(w, p) for w, _, p in s["pairs"]], semi,
                                               threads=threads, min_run_time=min_run_time)
        row["time gemm: 2:4"] = time_fn(lambda s: [torch.mm(sw, p) for _, sw, p in s["pairs"]], semi,
                                        threads=threads, min_run_time=min_run_time)
    return row


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
