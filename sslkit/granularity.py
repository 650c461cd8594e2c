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
retraining with the zeros frozen is :class:`sslkit.masks.ZeroFreezer`'s job.

Storage model (:func:`storage_bits`): the kept groups of a layer in row-major order, each stored
as its weights (``weight_bits`` each) plus one relative index (``index_bits``): the gap to the
previous kept group (1 for the next one; the first counts from position -1). A gap larger
than 2**index_bits - 1 takes filler entries (an all-zero group stored every 2**index_bits - 1
positions), as in Han et al.'s deep compression, which Mao et al. use. A coarser granularity stores one index per group instead of one per weight.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .groups import LAYER_TYPES

GRANULARITIES = ("fine", "vector", "kernel", "filter")


def _check(granularity: str, density: float) -> None:
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; choose one of {list(GRANULARITIES)}")
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must lie in [0, 1], got {density}")


def grouped(weight: torch.Tensor, granularity: str) -> torch.Tensor:
    """``weight`` as (groups, group size), groups in row-major order (a view where possible)."""
    w = weight.reshape(weight.shape[0], weight.shape[1], 1, 1) if weight.dim() == 2 else weight
    if w.dim() != 4:
        raise ValueError(f"expected a conv (4-D) or linear (2-D) weight, got shape {tuple(weight.shape)}")
    size = {"fine": 1, "vector": w.shape[3], "kernel": w.shape[2] * w.shape[3],
            "filter": w.shape[1] * w.shape[2] * w.shape[3]}[granularity]
    return w.reshape(-1, size)


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
