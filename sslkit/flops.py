"""Layer shapes as Caffe lowers them, and FLOP counts (dense, and what a sparse weight leaves).

A convolution with weight N x C/g x M x K and g groups is computed (im2col) as g GEMMs of a
(N/g) x (C/g*M*K) weight matrix by a (C/g*M*K) x (H_out*W_out) patch matrix. A linear layer
is one GEMM of its (out x in) weight by the batch. FLOPs count a multiply-add as 2, as
``torch.utils.flop_counter`` does; biases, pooling and activations are not counted.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class Layer:
    """One conv or linear layer as a lowered GEMM (per sample).

    Attributes:
        name: the module's qualified name.
        module: the module.
        groups: number of GEMMs (conv groups).
        rows: rows per GEMM (filters per group, or output neurons).
        cols: columns per GEMM (C/g*M*K, or input features).
        positions: output positions per sample (H_out*W_out; 1 for a linear layer).
    """

    name: str
    module: nn.Module
    groups: int
    rows: int
    cols: int
    positions: int

    @property
    def gemm_shape(self) -> tuple[int, int, int, int]:
        return self.groups, self.rows, self.cols, self.positions

    @property
    def flops(self) -> int:
        """Dense FLOPs per sample: 2 * (weights) * (output positions)."""
        return 2 * self.groups * self.rows * self.cols * self.positions


def layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[Layer]:
    """The conv and linear layers of ``model`` in execution order, with their lowered GEMM
    shapes, found by running one zero sample of ``input_shape`` (C, H, W) through it."""
    found: list[Layer] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(mod, _inp, out):
        if isinstance(mod, nn.Conv2d):
            g = mod.groups
            found.append(Layer(names[mod], mod, g, mod.out_channels // g, mod.weight[0].numel(),
                               out.shape[-2] * out.shape[-1]))
        else:
            found.append(Layer(names[mod], mod, 1, mod.out_features, mod.in_features,
                               out[0].numel() // mod.out_features))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=p.device, dtype=p.dtype))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return found


def total_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Dense conv + linear FLOPs of one sample (see :func:`layers`)."""
    return sum(layer.flops for layer in layers(model, input_shape))
