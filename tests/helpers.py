"""Small computations only the tests need (kept out of the package, which never calls them)."""
import torch
import torch.nn as nn

from sslkit.sparsity import groups as G
from sslkit.sparsity.lowering import trace


def expand(mask_or_scale: torch.Tensor, weight: torch.Tensor, structure: str, groups: int = 1) -> torch.Tensor:
    """A per-group tensor (laid out as :func:`sslkit.sparsity.groups.group_norms`) broadcast to ``weight``'s shape."""
    keep = G.group_norms(weight.detach(), structure, groups, keepdim=True)
    return mask_or_scale.reshape(keep.shape).expand(G.view5(weight, groups).shape).reshape(weight.shape)


def total_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Dense conv + linear FLOPs of one sample, from the lowered layers."""
    return sum(layer.flops for layer in trace(model, input_shape))


def num_weights(lowered_conv: nn.Module) -> int:
    """The weights a compacted :class:`~sslkit.compaction.layers.LoweredConv` holds."""
    return sum(w.numel() for w in lowered_conv.weights)
