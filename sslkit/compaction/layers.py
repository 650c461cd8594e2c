"""The modules a compacted network is made of (see :mod:`sslkit.compaction.compact`): each computes exactly
what the layer it replaces computed, with only the weights the sparsity report counts."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from sslkit.sparsity.groups import lowered
from sslkit.sparsity.lowering import conv_output_size, live


class ShortcutBlock(nn.Module):
    """What remains of a residual block whose branch is constant: relu(shortcut(x) + bias)."""

    def __init__(self, shortcut: nn.Module, bias: torch.Tensor):
        super().__init__()
        self.shortcut = shortcut
        self.register_buffer("bias", bias.detach().clone())

    def forward(self, x):
        return F.relu(self.shortcut(x) + self.bias.view(1, -1, 1, 1))


class Select(nn.Module):
    """Keeps the ``index`` entries of the last dimension: the live inputs of the linear layer
    after it (its features are the last dimension, also on an (N, H, W, C) map)."""

    def __init__(self, index: torch.Tensor):
        super().__init__()
        self.register_buffer("index", index.detach().clone())

    def forward(self, x):
        return x.index_select(-1, self.index)


class LoweredLinear(nn.Module):
    """A linear layer computed on its non-zero rows and columns only: the live inputs (of the
    last dimension) times the non-zero rows; a zero row's output is its bias, a constant. For
    zero rows whose outputs stay alive (a ConvNeXt block's last linear layer, whose outputs
    join the residual stream), so that the weights held are the report's "weights left"."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach()
        rows, cols = live(w)
        rows, cols = torch.nonzero(rows[0]).flatten(), torch.nonzero(cols[0]).flatten()
        bias = linear.bias.detach() if linear.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
        self.out_features = w.shape[0]
        self.register_buffer("rows", rows)
        self.register_buffer("cols", cols)
        self.register_buffer("constant", bias.clone())          # what every output is before the live rows
        self.weight = nn.Parameter(w[rows][:, cols].clone())
        self.bias = nn.Parameter(bias[rows].clone())

    def forward(self, x):
        out = self.constant.expand(*x.shape[:-1], self.out_features).clone()
        out[..., self.rows] = F.linear(x.index_select(-1, self.cols), self.weight, self.bias)
        return out


def _out_size(conv, h: int, w: int) -> tuple[int, int]:
    return conv_output_size((h, w), conv.kernel_size, conv.stride, conv.padding, conv.dilation)


class LoweredConv(nn.Module):
    """A convolution computed as Caffe does (im2col + GEMM) on the non-zero rows and columns
    of each group's lowered weight only: the GEMM of the paper's structured speedup.

    Groups with the same number of non-zero rows and columns are computed by one batched GEMM
    (a bucket); a group with no non-zero weight is not computed at all (its outputs are their
    bias). So the weights held are exactly the report's "weights left", nothing padded.

    ``weights[b]`` is bucket b's (groups, rows, cols); buffer ``cols{b}`` the rows of the
    unfolded input its groups read, ``rows{b}`` the output channels they compute.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        g, n = conv.groups, conv.out_channels
        w = lowered(conv.weight.detach(), g)                                  # (g, N/g, C/g*M*K)
        live_rows, live_cols = live(conv.weight, g)
        buckets: dict[tuple[int, int], list[int]] = {}
        for j in range(g):
            shape = (int(live_rows[j].sum()), int(live_cols[j].sum()))
            if shape[0] and shape[1]:
                buckets.setdefault(shape, []).append(j)
        self.weights = nn.ParameterList()
        for b, members in enumerate(buckets.values()):
            rows = torch.stack([torch.nonzero(live_rows[j]).flatten() for j in members])  # (n_b, R)
            cols = torch.stack([torch.nonzero(live_cols[j]).flatten() for j in members])  # (n_b, K)
            sel = torch.as_tensor(members, device=w.device)
            wb = w[sel].gather(1, rows[:, :, None].expand(-1, -1, w.shape[2]))
            self.weights.append(nn.Parameter(wb.gather(2, cols[:, None, :].expand(-1, rows.shape[1], -1))))
            self.register_buffer(f"cols{b}", (cols + sel[:, None] * w.shape[2]).flatten())
            self.register_buffer(f"rows{b}", (rows + sel[:, None] * (n // g)).flatten())
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone())
        self.groups, self.in_channels, self.out_channels = g, conv.in_channels, n
        self.kernel_size, self.stride, self.padding, self.dilation = (conv.kernel_size, conv.stride,
                                                                      conv.padding, conv.dilation)
        self.padding_mode = conv.padding_mode                   # reflect, replicate, circular: padded first
        self.pads = tuple(conv._reversed_padding_repeated_twice)
        self._dense = len(self.weights) == 1 and torch.equal(self.rows0.cpu(), torch.arange(n))  # all rows, in order

    def forward(self, x):
        b, padding = x.shape[0], self.padding
        if self.padding_mode != "zeros":
            x, padding = F.pad(x, self.pads, mode=self.padding_mode), (0, 0)
        ho, wo = conv_output_size(x.shape[-2:], self.kernel_size, self.stride, padding, self.dilation)
        cols = F.unfold(x, self.kernel_size, self.dilation, padding, self.stride)  # (B, C*M*K, L)
        parts = []
        for i, weight in enumerate(self.weights):
            sel = cols.index_select(1, getattr(self, f"cols{i}")).view(b, weight.shape[0], weight.shape[2], -1)
            parts.append(torch.matmul(weight.unsqueeze(0), sel).reshape(b, -1, cols.shape[-1]))
        if self._dense:
            out = parts[0]
        else:
            out = cols.new_zeros(b, self.out_channels, cols.shape[-1])
            for i, part in enumerate(parts):
                out = out.index_copy(1, getattr(self, f"rows{i}"), part)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1)
        return out.view(b, self.out_channels, ho, wo)


class _Opaque(torch.autograd.Function):
    """A :class:`GroupedConv` as one node of the autograd graph (for graph tracing only)."""

    @staticmethod
    def forward(ctx, x, module, *params):
        with torch.no_grad():
            return module.compute(x)

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("GroupedConv is opaque only while a dependency graph is traced")


class GroupedConv(nn.Module):
    """A grouped convolution whose groups may hold different numbers of channels: the input's
    channels split into consecutive blocks, each convolved by its own conv (``convs[j]``, a
    plain conv or a :class:`LoweredConv`), the outputs concatenated in order. What a grouped
    conv becomes when its groups lose different channels. A group with no input channel
    outputs its bias; a group with no output channel is skipped."""

    opaque = False   # True while torch-pruning traces the graph: one node, its parts hidden

    def __init__(self, convs: list[nn.Module]):
        super().__init__()
        self.convs = nn.ModuleList(convs)

    @classmethod
    def split(cls, conv: nn.Conv2d) -> "GroupedConv":
        """``conv`` (groups g) as g convs of one group each (same function)."""
        g = conv.groups
        n, c = conv.out_channels // g, conv.in_channels // g
        parts = []
        for j in range(g):
            part = nn.Conv2d(c, n, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                             bias=conv.bias is not None, padding_mode=conv.padding_mode,
                             device=conv.weight.device, dtype=conv.weight.dtype)
            with torch.no_grad():
                part.weight.copy_(conv.weight[j * n:(j + 1) * n])
                if conv.bias is not None:
                    part.bias.copy_(conv.bias[j * n:(j + 1) * n])
            parts.append(part)
        return cls(parts)

    @property
    def in_channels(self) -> int:
        return sum(c.in_channels for c in self.convs)

    @property
    def out_channels(self) -> int:
        return sum(c.out_channels for c in self.convs)

    def merged(self) -> nn.Module:
        """One grouped ``nn.Conv2d`` when every group (with any channel) has the same numbers of
        input and output channels, else ``self``."""
        convs = [c for c in self.convs if c.in_channels or c.out_channels]
        shapes = {(c.in_channels, c.out_channels) for c in convs}
        if len(shapes) != 1 or 0 in next(iter(shapes)) or not all(isinstance(c, nn.Conv2d) for c in convs):
            return self
        first, g = convs[0], len(convs)
        conv = nn.Conv2d(first.in_channels * g, first.out_channels * g, first.kernel_size, first.stride,
                         first.padding, first.dilation, groups=g, bias=first.bias is not None,
                         padding_mode=first.padding_mode, device=first.weight.device, dtype=first.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(torch.cat([c.weight for c in convs]))
            if first.bias is not None:
                conv.bias.copy_(torch.cat([c.bias for c in convs]))
        return conv

    def forward(self, x):
        if GroupedConv.opaque:
            return _Opaque.apply(x, self, *self.parameters())
        return self.compute(x)

    def compute(self, x):
        parts = torch.split(x, [c.in_channels for c in self.convs], 1)
        outs = []
        for conv, part in zip(self.convs, parts):
            if not conv.out_channels:
                continue
            if conv.in_channels:
                outs.append(conv(part))
            else:                                   # no input left: the group's bias
                ho, wo = _out_size(conv, *x.shape[-2:])
                bias = conv.bias if conv.bias is not None else x.new_zeros(conv.out_channels)
                outs.append(bias.view(1, -1, 1, 1).expand(x.shape[0], -1, ho, wo))
        return torch.cat(outs, 1)
