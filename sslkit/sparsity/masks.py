"""Keeping removed groups at zero while fine-tuning (the third stage of SSL).

Each conv/linear weight gets a ``weight_mask`` buffer (1 where the weight is non-zero at the
time of freezing). A gradient hook zeroes masked gradients, and after each optimizer step the
weight and every per-weight tensor of its optimizer state (SGD's momentum buffer, Adam's
moments) are multiplied by the mask, so masked weights and their optimizer state stay exactly
zero whatever the optimizer, its weight decay or the momentum it held before freezing.

The bias of a filter whose weights are all zero is frozen too, at its value at the time of
freezing: the filter is removed, and its channel stays the constant that compaction folds
into the next layer (or zero, after :func:`sslkit.compaction.compact.propagate_zeros`), instead of
drifting while the rest fine-tunes.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from sslkit.sparsity.groups import LAYER_TYPES, module_groups, zero_groups


class ZeroFreezer:
    """Freeze the current zeros of every conv/linear weight of ``model``, and the biases of its
    zero filters.

    Args:
        model: the network; masks are registered as ``<layer>.weight_mask`` buffers.
        layers: only these layer names (default: all conv and linear layers).
    """

    def __init__(self, model: nn.Module, layers: list[str] | None = None):
        self.modules = [m for n, m in model.named_modules()
                        if isinstance(m, LAYER_TYPES) and (layers is None or n in layers)]
        self._handles = []
        for m in self.modules:
            if "weight_mask" in m._buffers:
                m.weight_mask.copy_(m.weight.detach() != 0)
            else:
                m.register_buffer("weight_mask", (m.weight.detach() != 0).to(m.weight.dtype))
            self._handles.append(m.weight.register_hook(lambda g, mask=m.weight_mask: g * mask))
        # (layer, live filters, frozen bias) for every layer with a bias and a zero filter
        self._biases = []
        for m in self.modules:
            if m.bias is not None:
                dead = zero_groups(m.weight.detach(), "filter", module_groups(m))
                if dead.any():
                    live = (~dead).to(m.bias.dtype)
                    self._biases.append((m, live, m.bias.detach().clone()))
                    self._handles.append(m.bias.register_hook(lambda g, live=live: g * live))

    @torch.no_grad()
    def enforce(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Re-apply the masks to the weights and (when given) to the optimizer's state tensors
        shaped like them (momentum buffers, Adam's first and second moments)."""
        for m in self.modules:
            m.weight.mul_(m.weight_mask)
            _mask_state(optimizer, m.weight, m.weight_mask)
        for m, live, frozen in self._biases:
            m.bias.copy_(torch.where(live.bool(), m.bias, frozen))
            _mask_state(optimizer, m.bias, live)

    def post_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, it: int) -> None:
        """The trainer's post-step hook."""
        self.enforce(optimizer)

    def remove(self) -> None:
        """Detach the gradient hooks and drop the mask buffers."""
        for h in self._handles:
            h.remove()
        for m in self.modules:
            m._buffers.pop("weight_mask", None)
        self._handles, self._biases = [], []


def _mask_state(optimizer: torch.optim.Optimizer | None, param: torch.Tensor, mask: torch.Tensor) -> None:
    """Multiply by ``mask`` every tensor of ``param``'s optimizer state shaped like ``param``
    (momentum buffers, Adam's first and second moments)."""
    state = optimizer.state.get(param, {}) if optimizer is not None else {}
    for value in state.values():
        if torch.is_tensor(value) and value.shape == param.shape:
            value.mul_(mask)
