"""Magnitude pruning at the four granularities of Mao et al. 2017 ("Exploring the granularity of
sparsity in CNNs"), and the storage of what is left.

A conv weight W (N x C x M x K) splits into groups; a linear weight (out x in) is a conv with
M = K = 1:

    granularity   group              group size
    fine          W[n, c, m, k]      1
    vector        W[n, c, m, :]      K
    kernel        W[n, c, :, :]      M*K
    filter        W[n, :, :, :]      C*M*K

Pruning keeps, per layer, the groups with the largest norm so that exactly
round(density * groups) of them stay (the kept weight fraction is that over the group count);
retraining with the zeros frozen is :class:`sslkit.sparsity.masks.ZeroFreezer`'s job.

Storage model (:func:`storage_bits`): the kept groups of a layer in row-major order, each stored
as its weights (``weight_bits`` each) plus one relative index (``index_bits``): the gap to the
previous kept group (1 for the next one; the first counts from position -1). A gap larger
than 2**index_bits - 1 takes filler entries (an all-zero group stored every 2**index_bits - 1
positions), as in Han et al.'s deep compression, which Mao et al. use. A coarser granularity stores one index per group instead of one per weight.

Memory references (:func:`memory_references`): an SCNN-like accelerator (Parashar et al.
2017) in our own counting, since Mao et al.'s rules are not published with the abstract. For
one image and one layer, every access to one value or one index counts 1:

- weights: every stored entry (kept groups and fillers) is read once: its values and its index;
- activations: the non-zero input activations of channel c are read (value and index) once
  per block of ``block`` consecutive filters (SCNN's output-channel group) that holds a
  non-zero weight of channel c; a block with none skips them;
- accumulators: each product is added to an output partial sum (a read and a write), one
  access per product as in SCNN. With ``wide_rows``, our variant: the products of one
  activation with one kernel row W[n, c, m, :] land on consecutive outputs of one row, so
  where the weights are stored in groups of a row or more (vector, kernel, filter) or dense
  they take one wide access; stored one by one (fine) each product still takes its own;
- outputs: each output activation is written once.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from sslkit.sparsity.groups import LAYER_TYPES, canonical, group_size
from sslkit.sparsity.lowering import observe

GRANULARITIES = ("fine", "vector", "kernel", "filter")  # names of entries of sslkit.sparsity.groups' table


def _check(granularity: str, density: float) -> None:
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; choose one of {list(GRANULARITIES)}")
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must lie in [0, 1], got {density}")


def grouped(weight: torch.Tensor, granularity: str) -> torch.Tensor:
    """``weight`` as (groups, group size), groups in row-major order (a view where possible).
    Each granularity's groups lie along W's trailing dimensions (within a conv group for a grouped
    conv, whose weight is N x C/g x M x K), so a row-major reshape cuts them."""
    return weight.reshape(-1, group_size(weight, canonical(granularity)))


def magnitude_mask(weight: torch.Tensor, granularity: str, density: float, *, p: float = 2.0) -> torch.Tensor:
    """Boolean mask (``weight``'s shape) keeping the round(density * groups) groups of largest
    p-norm (ties broken by position)."""
    _check(granularity, density)
    groups = grouped(weight.detach(), granularity)
    keep = round(density * groups.shape[0])
    norms = torch.linalg.vector_norm(groups.double(), ord=p, dim=1)
    order = torch.argsort(norms, descending=True, stable=True)
    kept = torch.zeros(groups.shape[0], dtype=torch.bool, device=weight.device)
    kept[order[:keep]] = True
    return kept[:, None].expand_as(groups).reshape(weight.shape)


@torch.no_grad()
def prune(model: nn.Module, granularity: str, density: float | dict, *, p: float = 2.0,
          skip: tuple[str, ...] = ()) -> dict[str, float]:
    """Zero, in place, all but the largest groups of every conv and linear layer.

    Args:
        model: the network.
        granularity: one of :data:`GRANULARITIES`.
        density: the fraction of groups kept per layer, or ``{layer name: fraction}`` (layers
            not named are left dense).
        p: the norm ranking the groups.
        skip: layer names left dense.
    Returns:
        ``{layer name: weight density after pruning}``.
    """
    out = {}
    for name, m in model.named_modules():
        if not isinstance(m, LAYER_TYPES) or name in skip:
            continue
        d = density.get(name) if isinstance(density, dict) else density
        if d is None:
            continue
        mask = magnitude_mask(m.weight, granularity, d, p=p)
        m.weight.mul_(mask)
        out[name] = float(mask.float().mean())
    return out


def storage_bits(weight: torch.Tensor, granularity: str, *, weight_bits: int = 32, index_bits: int = 4) -> dict:
    """Bits to store ``weight``'s non-zero groups with relative indices (see the module doc).

    Returns:
        ``{"groups kept", "fillers", "weight bits", "index bits", "total bits", "dense bits",
        "compression"}``: ``compression`` is the dense size (every weight at ``weight_bits``)
        over the total.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; choose one of {list(GRANULARITIES)}")
    groups = grouped(weight.detach(), granularity)
    positions = torch.nonzero(groups.ne(0).any(1)).flatten().tolist()
    largest, fillers, previous = 2 ** index_bits - 1, 0, -1
    for pos in positions:
        gap = pos - previous           # 1 for the next group
        fillers += (gap - 1) // largest  # a filler entry covers a gap of `largest`
        previous = pos
    entries = len(positions) + fillers
    wbits = entries * groups.shape[1] * weight_bits
    ibits = entries * index_bits
    dense = weight.numel() * weight_bits
    return {"groups kept": len(positions), "fillers": fillers, "weight bits": wbits, "index bits": ibits,
            "total bits": wbits + ibits, "dense bits": dense, "compression": dense / max(wbits + ibits, 1)}


def _as_conv(weight: torch.Tensor) -> torch.Tensor:
    return weight.reshape(weight.shape[0], weight.shape[1], 1, 1) if weight.dim() == 2 else weight


def memory_references(weight: torch.Tensor, granularity: str, nonzero_inputs: torch.Tensor, outputs: int, *,
                      block: int = 8, index_bits: int = 4, wide_rows: bool = False) -> dict:
    """Memory references of one layer for one image on an SCNN-like accelerator (the counting
    rules are in the module doc).

    Args:
        weight: the (pruned) conv or linear weight.
        granularity: how the weights are stored: one index per weight (``fine``) or per group.
        nonzero_inputs: (C,) the mean number of non-zero input activations of each input
            channel per image (see :func:`nonzero_inputs`).
        outputs: output activations per image.
        block: consecutive filters that one pass over the activations serves.
        index_bits: the relative index width (gaps above 2**index_bits - 1 take fillers).
        wide_rows: one accumulator access per kernel row for grouped storage (our variant;
            default: one per product, as SCNN).
    Returns:
        ``{"weights", "activations", "accumulators", "outputs", "total"}`` (references).
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; choose one of {list(GRANULARITIES)}")
    w = _as_conv(weight.detach()).ne(0)
    n, c = w.shape[:2]
    if nonzero_inputs.shape != (c,):
        raise ValueError(f"nonzero_inputs must hold one count per input channel ({c}), got {tuple(nonzero_inputs.shape)}")
    stored = storage_bits(weight, granularity, weight_bits=1, index_bits=index_bits)
    weights = stored["weight bits"] + stored["groups kept"] + stored["fillers"]   # values + one index per entry
    blocks = torch.stack([w[b:b + block].any(3).any(2).any(0) for b in range(0, n, block)]).sum(0)   # (C,)
    if granularity == "fine" or not wide_rows:
        per_activation = w.sum((0, 2, 3))                    # one access per product
    else:
        per_activation = w.any(3).sum((0, 2))                # one per non-zero kernel row
    nz = nonzero_inputs.double().cpu()
    activations = float(2 * (nz * blocks.cpu()).sum())
    accumulators = float(2 * (nz * per_activation.cpu()).sum())
    total = weights + activations + accumulators + outputs
    return {"weights": float(weights), "activations": activations, "accumulators": accumulators,
            "outputs": float(outputs), "total": total}


@torch.no_grad()
def nonzero_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, int]]:
    """For every conv and linear layer of ``model`` run on the batch ``x``: the mean number of
    non-zero input activations per input channel and image, and the outputs per image.

    Returns:
        ``{layer name: (counts (C,), outputs per image)}``.
    """
    found = {}

    def record(name, module, inputs, output):
        a = inputs[0]
        a = a.reshape(a.shape[0], a.shape[1], -1) if a.dim() > 2 else a[:, :, None]
        found[name] = (a.ne(0).sum(2).double().mean(0), output[0].numel())

    observe(model, x, record)
    return found
