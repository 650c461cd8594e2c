"""How a weight splits into the groups of Structured Sparsity Learning.

A conv weight N x C/g x M x K with g groups is viewed as (g, N/g, C/g, M, K): one lowered
GEMM matrix (N/g rows, C/g*M*K columns) per group. A linear weight (out, in) is (1, out, in, 1, 1).

    structure   group                                   lowered GEMM        group count
    filter      W[n, :, :, :]                           a row               N
    channel     W[:, c, :, :] (within c's conv group)   M*K columns         C
    shape       W[:, c, m, k] (within a conv group)     a column            g*C/g*M*K
    kernel2d    W[n, c, :, :]                           M*K cells of a row  N*C/g
    vector      W[n, c, m, :]: one kernel row           K cells of a row    N*C/g*M
    depth       the whole W                             everything          1
    element     W[n, c, m, k]: one weight (l1)          one cell            N*C/g*M*K

For a linear layer ``filter`` is a neuron's input connections (a row) and ``channel`` an input
neuron's output connections (a column); ``neuron_in`` and ``neuron_out`` are their aliases.
Group Lasso over ``element`` groups (alias ``l1``) is the non-structured l1 penalty, as
the paper's comparison uses it: sum |w|, subgradient sign(w). Mao et al.'s granularities
(:mod:`sslkit.sparsity.pruning`) are entries of the same table: ``fine`` = ``element``,
``vector``, ``kernel`` = ``kernel2d``, ``filter``.
"""
from __future__ import annotations

import torch
import torch.nn as nn

STRUCTURES = ("filter", "channel", "shape", "kernel2d", "vector", "depth", "element")
ALIASES = {"neuron_in": "filter", "neuron_out": "channel", "row": "filter", "column": "shape", "l1": "element",
           "fine": "element", "kernel": "kernel2d"}
# Dimensions of the (g, N/g, C/g, M, K) view that one group spans.
_REDUCE = {"filter": (2, 3, 4), "channel": (1, 3, 4), "shape": (1,), "kernel2d": (3, 4), "vector": (4,),
           "depth": (0, 1, 2, 3, 4), "element": ()}


def canonical(structure: str) -> str:
    """The structure's canonical name (resolving aliases); ValueError for unknown names."""
    name = ALIASES.get(structure, structure)
    if name not in STRUCTURES:
        raise ValueError(f"unknown structure {structure!r}; choose from {STRUCTURES + tuple(ALIASES)}")
    return name


def view5(weight: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """``weight`` (conv 4-D or linear 2-D) as the (g, N/g, C/g, M, K) view (no copy)."""
    if weight.dim() == 2:
        return weight.view(1, weight.shape[0], weight.shape[1], 1, 1)
    if weight.dim() != 4:
        raise ValueError(f"expected a conv (4-D) or linear (2-D) weight, got shape {tuple(weight.shape)}")
    n, c, m, k = weight.shape
    if n % groups:
        raise ValueError(f"{n} filters do not split into {groups} groups")
    return weight.view(groups, n // groups, c, m, k)


LAYER_TYPES = (nn.Conv2d, nn.Linear)  # the layers whose weights form groups


def lowered(weight: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """``weight`` as its lowered GEMM matrices: (g, N/g, C/g*M*K), or (1, out, in) for a
    linear weight (no copy)."""
    v = view5(weight, groups)
    return v.reshape(v.shape[0], v.shape[1], -1)


def module_groups(module: nn.Module) -> int:
    """A layer's conv groups (1 for a linear layer)."""
    return getattr(module, "groups", 1)


def group_norms(weight: torch.Tensor, structure: str, groups: int = 1, keepdim: bool = False) -> torch.Tensor:
    """The L2 norm of every group of ``structure`` in ``weight``.

    Returns:
        With ``keepdim``, a tensor broadcastable against :func:`view5`; otherwise the norms laid
        out as the structure indexes them: (N,) filters, (C,) input channels, (g*C/g*M*K,) shape
        fibers, (N, C/g) 2-D kernels, or a scalar for depth.
    """
    s = canonical(structure)
    v = view5(weight, groups)
    norms = torch.linalg.vector_norm(v, dim=_REDUCE[s], keepdim=True) if _REDUCE[s] else v.abs()
    return norms if keepdim else _laid_out(norms, s, weight.shape)


def _laid_out(per_group: torch.Tensor, s: str, shape: torch.Size) -> torch.Tensor:
    """Per-group values (reduced :func:`view5` layout) as structure ``s`` indexes them."""
    if s == "element":
        return per_group.reshape(shape)
    if s in ("kernel2d", "vector"):
        return per_group.reshape(shape[0], -1)
    return per_group.reshape(-1) if s != "depth" else per_group.reshape(())


def group_size(weight: torch.Tensor, structure: str, groups: int = 1) -> int:
    """Number of weights in one group of ``structure``."""
    shape = view5(weight, groups).shape
    size = 1
    for d in _REDUCE[canonical(structure)]:
        size *= shape[d]
    return size


def zero_groups(weight: torch.Tensor, structure: str, groups: int = 1) -> torch.Tensor:
    """Boolean tensor (laid out as :func:`group_norms`): True where a group is entirely zero."""
    s = canonical(structure)
    v = view5(weight.detach() != 0, groups)     # exact (no norm to underflow), and no float copy
    live = v.any(dim=_REDUCE[s], keepdim=True) if _REDUCE[s] else v
    return ~_laid_out(live, s, weight.shape)

