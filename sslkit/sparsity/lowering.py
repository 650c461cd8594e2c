"""Conv and linear layers as the GEMMs Caffe lowers them to: the one description of a layer
that FLOP counting, the sparsity report, timing and compaction share.

A convolution with weight N x C/g x M x K and g groups is computed (im2col) as g GEMMs of a
(N/g) x (C/g*M*K) weight matrix by a (C/g*M*K) x (H_out*W_out) patch matrix. A linear layer
is one GEMM of its (out x in) weight by the batch. FLOPs count a multiply-add as 2, as
``torch.utils.flop_counter`` does; biases, pooling and activations are not counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from sslkit.sparsity.groups import LAYER_TYPES, lowered


def conv_output_size(size, kernel, stride, padding, dilation) -> tuple[int, int]:
    """(height, width) of a convolution's output for an input of ``size`` = (h, w); every
    other argument an (h, w) pair (PyTorch's and Caffe's formula: the one place it is written)."""
    return tuple((s + 2 * p - d * (k - 1) - 1) // st + 1
                 for s, k, st, p, d in zip(size, kernel, stride, padding, dilation))


@dataclass(frozen=True)
class LoweredLayer:
    """One conv or linear layer as a lowered GEMM, per sample.

    Attributes:
        name: the module's qualified name (or any label).
        in_shape: one sample's input, (C, H, W) for a conv, (features,) for a linear layer.
        out_channels: filters (conv) or output features (linear).
        kernel, stride, padding, dilation: (height, width) pairs; (1, 1), (1, 1), (0, 0),
            (1, 1) for a linear layer.
        groups: number of GEMMs (conv groups).
        positions: output positions per sample (H_out*W_out; 1 for a linear layer on a vector).
        module: the layer itself, when traced from a network.
    """

    name: str
    in_shape: tuple[int, ...]
    out_channels: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    positions: int = 1
    module: nn.Module | None = field(default=None, compare=False, repr=False)

    @classmethod
    def conv(cls, name: str, in_shape: tuple[int, int, int], out_channels: int, kernel, stride=1,
             padding=0, dilation=1, groups: int = 1, module: nn.Module | None = None) -> "LoweredLayer":
        """A conv layer from its hyper-parameters (ints or (h, w) pairs)."""
        kernel, stride, padding, dilation = (_pair(v) for v in (kernel, stride, padding, dilation))
        ho, wo = conv_output_size(in_shape[1:], kernel, stride, padding, dilation)
        return cls(name, tuple(in_shape), out_channels, kernel, stride, padding, dilation, groups, ho * wo, module)

    @property
    def is_conv(self) -> bool:
        return len(self.in_shape) == 3

    @property
    def rows(self) -> int:
        """Rows of each GEMM: filters per group, or output neurons."""
        return self.out_channels // self.groups

    @property
    def cols(self) -> int:
        """Columns of each GEMM: C/g*M*K, or input features."""
        return self.in_shape[0] // self.groups * self.kernel[0] * self.kernel[1]

    @property
    def flops(self) -> int:
        """Dense FLOPs per sample: 2 * (weights) * (output positions)."""
        return 2 * self.groups * self.rows * self.cols * self.positions


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def observe(model: nn.Module, x: torch.Tensor, record, kinds=LAYER_TYPES) -> None:
    """Run ``model`` on ``x`` in eval mode without gradients, calling ``record(name, module,
    inputs, output)`` for every layer of the given ``kinds`` as it executes (the one tracer:
    :func:`trace` and :func:`sslkit.sparsity.pruning.nonzero_inputs` are built on it). The
    model's mode is restored and the hooks removed, whatever happens."""
    names = {m: n for n, m in model.named_modules()}
    handles = [m.register_forward_hook(lambda mod, inp, out: record(names[mod], mod, inp, out))
               for m in model.modules() if isinstance(m, kinds)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()


def trace(model: nn.Module, input_shape: tuple[int, ...], kinds=LAYER_TYPES) -> list[LoweredLayer]:
    """The layers of ``model`` of the given ``kinds`` (default: conv and linear) in execution
    order, as :class:`LoweredLayer` s, found by running one zero sample of ``input_shape``
    through it in eval mode."""
    found: list[LoweredLayer] = []

    def record(name, mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            found.append(LoweredLayer(name, tuple(inp[0].shape[1:]), mod.out_channels, mod.kernel_size,
                                      mod.stride, _pair(mod.padding), mod.dilation, mod.groups,
                                      out.shape[-2] * out.shape[-1], mod))
        else:
            found.append(LoweredLayer(name, (mod.in_features,), mod.out_features,
                                      positions=out[0].numel() // mod.out_features, module=mod))

    p = next(model.parameters())
    observe(model, torch.zeros(1, *input_shape, device=p.device, dtype=p.dtype), record, kinds)
    return found


def live(weight: torch.Tensor, groups: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Which rows and columns of each group's lowered weight matrix hold a non-zero weight.

    Returns:
        Boolean ``rows`` (g, N/g) and ``cols`` (g, C/g*M*K): a row is a filter (or a neuron's
        inputs), a column a shape fiber W[:, c, m, k] (or an input feature).
    """
    nonzero = lowered(weight.detach(), groups) != 0
    return nonzero.any(2), nonzero.any(1)
