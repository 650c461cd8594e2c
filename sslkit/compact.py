"""Compaction: a trained sparse network becomes a physically smaller dense one, with the same
outputs (in eval mode).

Three removals, each exact:
- depth: a residual block whose last conv is all zero computes relu(shortcut(x) + b), b the
  constant its last BN outputs; it becomes :class:`ShortcutBlock`.
- channels (filters, channels, neurons): a channel of an activation tensor is dead when every
  layer producing it outputs exactly zero there (zero filter, zero bias, BN constant zero) and
  it reaches every consumer as zeros, or when every layer consuming it has all-zero weights
  for it; and, either way, it mixes into no other channel on the way (a sigmoid turns a zero
  channel into 0.5, a softmax over channels or a group norm mixes it with the others: such
  channels are kept). Both are checked by running random inputs through the network.
  torch-pruning's dependency graph finds producers and consumers on any graph (residual adds,
  flatten into a linear layer ...), and removes the dead channels from all of them.
- columns and rows: a conv whose lowered weight still has all-zero columns (shape fibers) or
  rows (zero filters whose channel stays alive, e.g. through a shortcut) becomes a
  :class:`LoweredConv`, which gathers only the needed rows of the im2col matrix and computes
  only the non-zero filters; a linear layer with all-zero columns reads only its live inputs
  through a :class:`Select` (a fully connected network's first layer thus drops the pixels
  that lost every connection).

Channels are left alone (not removed) where removal would not be exact or is not supported:
across grouped convolutions, and where the channel mixes with others (a cross-channel LRN, a
group norm, a softmax over channels) or does not reach its consumers as zeros.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from .groups import LAYER_TYPES, lowered, zero_groups
from .lowering import live


# ---------------------------------------------------------------------------- modules
class ShortcutBlock(nn.Module):
    """What remains of a residual block whose branch is constant: relu(shortcut(x) + bias)."""

    def __init__(self, shortcut: nn.Module, bias: torch.Tensor):
        super().__init__()
        self.shortcut = shortcut
        self.register_buffer("bias", bias.detach().clone())

    def forward(self, x):
        return F.relu(self.shortcut(x) + self.bias.view(1, -1, 1, 1))


class Select(nn.Module):
    """Keeps the ``index`` entries of dimension 1 (the live inputs of a linear layer)."""

    def __init__(self, index: torch.Tensor):
        super().__init__()
        self.register_buffer("index", index.detach().clone())

    def forward(self, x):
        return x.index_select(1, self.index)


def _kept(mask: torch.Tensor) -> torch.Tensor:
    """Per group (rows of ``mask``), the indices where ``mask`` is True, padded with False
    positions up to the largest count so every group keeps the same number (sorted)."""
    n = max(int(mask.sum(1).max()), 1)
    return torch.stack([torch.cat([torch.nonzero(m).flatten(), torch.nonzero(~m).flatten()])[:n].sort().values
                        for m in mask])


class LoweredConv(nn.Module):
    """A convolution computed as Caffe does (im2col + GEMM) on the non-zero rows and columns
    of each group's lowered weight only: the GEMM of the paper's structured speedup.

    ``weight`` is (groups, rows kept, cols kept); ``col_index`` the rows of the unfolded input
    each group needs, ``row_index`` the output channels computed (the others are zero, plus
    their bias). Groups with fewer non-zero rows or columns than others keep a few zero ones.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        g, n = conv.groups, conv.out_channels
        w = lowered(conv.weight.detach(), g)
        live_rows, live_cols = live(conv.weight, g)
        rows, cols = _kept(live_rows), _kept(live_cols)                      # (g, R), (g, K)
        w = torch.gather(w, 1, rows[:, :, None].expand(g, rows.shape[1], w.shape[2]))
        self.weight = nn.Parameter(torch.gather(w, 2, cols[:, None, :].expand(g, rows.shape[1], cols.shape[1])))
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone())
        self.register_buffer("col_index", (cols + torch.arange(g)[:, None] * w.shape[2]).flatten())
        self.register_buffer("row_index", (rows + torch.arange(g)[:, None] * (n // g)).flatten())
        self.groups, self.out_channels = g, n
        self.kernel_size, self.stride, self.padding, self.dilation = (conv.kernel_size, conv.stride,
                                                                      conv.padding, conv.dilation)

    def forward(self, x):
        b, _, h, w = x.shape
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)  # (B, C*M*K, L)
        cols = cols.index_select(1, self.col_index).view(b, self.groups, -1, cols.shape[-1])
        out = torch.matmul(self.weight.unsqueeze(0), cols).reshape(b, -1, cols.shape[-1])
        if out.shape[1] < self.out_channels:
            full = out.new_zeros(b, self.out_channels, out.shape[-1])
            out = full.index_copy(1, self.row_index, out)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1)
        ho = (h + 2 * self.padding[0] - self.dilation[0] * (self.kernel_size[0] - 1) - 1) // self.stride[0] + 1
        return out.view(b, self.out_channels, ho, -1)


# ---------------------------------------------------------------------------- helpers
def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, new)


def _bn_constant(bn: nn.modules.batchnorm._BatchNorm) -> torch.Tensor:
    """What ``bn`` outputs (eval mode) for an all-zero input channel."""
    scale = (bn.weight if bn.affine else 1.0) / torch.sqrt(bn.running_var + bn.eps)
    return (bn.bias if bn.affine else 0.0) - bn.running_mean * scale


def _zero_rows(m: nn.Module) -> torch.Tensor:
    """Per output channel: all weights (and the bias) are zero."""
    dead = zero_groups(m.weight, "filter", getattr(m, "groups", 1))
    return dead & (m.bias.detach() == 0) if m.bias is not None else dead


def _zero_cols(m: nn.Module) -> torch.Tensor:
    """Per input channel / feature: all weights reading it are zero (ungrouped layers)."""
    return zero_groups(m.weight, "channel")


# ---------------------------------------------------------------------------- depth
def residual_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The basic residual blocks of ``model``: modules with ``conv1``/``bn1``/``conv2``/``bn2`` (and
    no ``conv3``) and a ``shortcut`` or ``downsample`` (None: identity), like sslkit's and
    torchvision's BasicBlock, which compute relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
    return [(name, m) for name, m in model.named_modules()
            if all(hasattr(m, a) for a in ("conv1", "bn1", "conv2", "bn2")) and not hasattr(m, "conv3")
            and (hasattr(m, "shortcut") or hasattr(m, "downsample"))]


def _shortcut(block: nn.Module) -> nn.Module | None:
    return getattr(block, "shortcut", None) or getattr(block, "downsample", None)


def branch_convs(model: nn.Module) -> list[str]:
    """The convs between the shortcut endpoints of every residual block (its ``conv1`` and
    ``conv2``): the layers depth-wise SSL regularizes, never the first conv of the network nor
    a projection shortcut."""
    return [f"{name}.{conv}" for name, _ in residual_blocks(model) for conv in ("conv1", "conv2")]


def shortcut_layers(model: nn.Module) -> list[str]:
    """The layers inside the projection shortcuts of residual blocks (also of those already
    replaced by a :class:`ShortcutBlock`)."""
    shortcuts = [_shortcut(b) for _, b in residual_blocks(model)]
    shortcuts += [m.shortcut for m in model.modules() if isinstance(m, ShortcutBlock)]
    inside = {id(m) for sc in shortcuts if sc is not None for m in sc.modules()}
    return [n for n, m in model.named_modules() if id(m) in inside and isinstance(m, (*LAYER_TYPES, LoweredConv))]


def depth(model: nn.Module) -> int:
    """The layer count as the paper counts it: conv and fully connected layers (a
    :class:`LoweredConv` is a conv), projection shortcuts not counted."""
    layers = sum(1 for m in model.modules() if isinstance(m, (*LAYER_TYPES, LoweredConv)))
    return layers - len(shortcut_layers(model))


@torch.no_grad()
def remove_dead_blocks(model: nn.Module) -> list[str]:
    """Replace residual blocks whose branch computes a constant by :class:`ShortcutBlock` (in
    place): those whose ``conv2`` is all zero (the branch is then ``bn2``'s constant). Returns
    the replaced blocks' names."""
    replaced = []
    for name, block in residual_blocks(model):
        if block.conv2.weight.detach().any() or getattr(block.conv2, "bias", None) is not None:
            continue
        _set(model, name, ShortcutBlock(_shortcut(block) or nn.Identity(), _bn_constant(block.bn2)))
        replaced.append(name)
    return replaced


# ---------------------------------------------------------------------------- channels
def _graph(model: nn.Module, example: torch.Tensor):
    import torch_pruning as tp

    with torch.enable_grad():  # the graph is traced through autograd
        return tp.DependencyGraph().build_dependency(model, example_inputs=example)


class _Probe:
    """Random inputs through the network (eval mode), to see what a channel becomes on the way
    to its consumers: whether it reaches them as exact zeros, and whether it changes any other
    channel (a sigmoid, a softmax over channels, a group norm ...). Removal is exact only when
    a dead channel arrives as zeros, or unused, and mixes into no other channel."""

    class _Done(Exception):
        pass

    def __init__(self, model: nn.Module, example: torch.Tensor):
        self.model = model
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, *example.shape[1:], generator=gen).to(example)
        self.x = torch.cat([x, x])              # the second half is the perturbed copy

    def inputs(self, want: list[nn.Module], perturb: dict) -> tuple[dict, dict]:
        """The inputs (``id(module)`` -> tensor) of the layers ``want``, as they are and when
        ``perturb`` (``{module: output channels}``) adds noise to those output channels of those
        layers: one forward pass of both, stopped once every wanted input is seen."""
        perturb = {id(m): idx for m, idx in perturb.items()}
        seen, hooks, left = {}, [], {id(m) for m in want}

        def record(mod, args):
            if id(mod) in left:
                seen[id(mod)] = args[0].detach().clone()
                left.discard(id(mod))
                if not left:
                    raise _Probe._Done

        def disturb(mod, _args, out):
            out = out.clone()
            idx = perturb[id(mod)]
            half = out.shape[0] // 2
            noise = torch.rand(out[half:, idx].shape, generator=torch.Generator().manual_seed(1)).to(out)
            out[half:, idx] += 1.0 + noise
            return out

        for m in self.model.modules():
            if id(m) in left:
                hooks.append(m.register_forward_pre_hook(record))
            if id(m) in perturb:
                hooks.append(m.register_forward_hook(disturb))
        try:
            self.model(self.x)
        except _Probe._Done:
            pass
        finally:
            for h in hooks:
                h.remove()
        half = self.x.shape[0] // 2
        return {k: v[:half] for k, v in seen.items()}, {k: v[half:] for k, v in seen.items()}


def _channels_of(t: torch.Tensor, idx: list[int]) -> torch.Tensor:
    return t.index_select(1, torch.as_tensor(idx, dtype=torch.long, device=t.device))


def _out_channel_group(dg, m: nn.Module, idxs: list[int] | None = None):
    """The dependency-graph group of pruning ``idxs`` (default: all) of ``m``'s outputs."""
    import torch_pruning as tp

    if isinstance(m, nn.Conv2d):
        fn, n = tp.prune_conv_out_channels, m.out_channels
    else:
        fn, n = tp.prune_linear_out_channels, m.out_features
    return dg.get_pruning_group(m, fn, list(range(n)) if idxs is None else idxs)


def _dead_channels(dg, group, probe: _Probe) -> list[int]:
    """Root indices of the channels in ``group`` whose removal provably changes nothing:

    - produced as zeros (every producer's filter and bias zero, a BN after it adding nothing)
      and reaching every consumer as exact zeros, or
    - read by no consumer (all their columns zero),

    and in both cases mixing into no other channel on the way (checked on ``probe``: noise
    added to them at the producers changes only their own entries of the consumers' inputs).
    Otherwise they are kept. Grouped convs and layers sslkit does not know are left alone."""
    producers, consumers, bns = [], [], []
    for item in group:
        mod, handler = item.dep.target.module, item.dep.handler
        if isinstance(mod, LAYER_TYPES):
            if getattr(mod, "groups", 1) > 1:
                return []                       # grouped conv: removal would unbalance groups
            (producers if dg.is_out_channel_pruning_fn(handler) else consumers).append((mod, item))
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            bns.append((mod, item))
        elif isinstance(mod, nn.Module) and any(True for _ in mod.parameters(recurse=False)):
            return []                           # an unknown layer with parameters: leave it
    if not producers or not consumers:          # the network's input or output
        return []
    roots = sorted({r for _, item in producers for r in item.root_idxs})
    prod_dead = {r: True for r in roots}
    cons_dead = {r: True for r in roots}
    for mod, item in producers:
        rows = _zero_rows(mod)
        for i, r in zip(item.idxs, item.root_idxs):
            prod_dead[r] &= bool(rows[i])
    for bn, item in bns:
        const = _bn_constant(bn)
        for i, r in zip(item.idxs, item.root_idxs):
            prod_dead[r] &= bool(const[i] == 0)
    for mod, item in consumers:
        cols = _zero_cols(mod)
        for i, r in zip(item.idxs, item.root_idxs):
            cons_dead[r] &= bool(cols[i])
    candidates = {r for r in roots if prod_dead[r] or cons_dead[r]}
    if not candidates:
        return []
    base, disturbed = probe.inputs([mod for mod, _ in consumers],
                                   {mod: [i for i, r in zip(item.idxs, item.root_idxs) if r in candidates]
                                    for mod, item in producers})
    if any(id(mod) not in base for mod, _ in consumers):
        return []                               # a consumer the probe did not reach: leave it
    for mod, item in consumers:                 # produced as zeros, but do they arrive as zeros?
        for i, r in zip(item.idxs, item.root_idxs):
            if prod_dead[r]:
                prod_dead[r] = not bool(_channels_of(base[id(mod)], [i]).any())
    for mod, item in consumers:                 # does noise on them change any other channel?
        own = {i for i, r in zip(item.idxs, item.root_idxs) if r in candidates}
        before, after = base[id(mod)], disturbed[id(mod)]
        others = [i for i in range(before.shape[1]) if i not in own]
        if others and not torch.equal(_channels_of(before, others), _channels_of(after, others)):
            return []
    return [r for r in roots if prod_dead[r] or cons_dead[r]]


@torch.no_grad()
def remove_dead_channels(model: nn.Module, example: torch.Tensor) -> int:
    """Remove dead channels from every producer and consumer (in place). Returns how many."""
    # One pass: removing a channel zeroes no other weight, so it leaves no new dead channel.
    # The graph stays valid across removals (torch-pruning re-maps concatenation indices for
    # every new group), and the probe runs the network as it is at each call.
    removed = 0
    dg, probe = _graph(model, example), _Probe(model, example)
    for m in [m for m in model.modules() if isinstance(m, LAYER_TYPES)]:
        dead = _dead_channels(dg, _out_channel_group(dg, m), probe)
        if dead and len(dead) < m.weight.shape[0]:
            _out_channel_group(dg, m, dead).prune()
            removed += len(dead)
    return removed


@torch.no_grad()
def lower_sparse_columns(model: nn.Module) -> list[str]:
    """Layers whose lowered weight still has all-zero columns (or, for convs, rows) compute on
    the non-zero ones only (in place): a conv becomes a :class:`LoweredConv`; a linear layer reads its live inputs
    through a :class:`Select` (for a fully connected network's first layer: the pixels that kept a connection).
    Returns the changed layers' names."""
    changed = []
    for name, m in list(model.named_modules()):
        if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros":
            rows, cols = live(m.weight, m.groups)
            if not (rows.all() and cols.all()):              # a zero column or a zero row left
                _set(model, name, LoweredConv(m))
                changed.append(name)
        elif isinstance(m, nn.Linear):
            inputs = torch.nonzero(~_zero_cols(m)).flatten()
            if 0 < len(inputs) < m.in_features:
                new = nn.Linear(len(inputs), m.out_features, bias=m.bias is not None,
                                device=m.weight.device, dtype=m.weight.dtype)
                new.weight.copy_(m.weight[:, inputs])
                if m.bias is not None:
                    new.bias.copy_(m.bias)
                _set(model, name, nn.Sequential(Select(inputs), new))
                changed.append(name)
    return changed


# ---------------------------------------------------------------------------- all together
@torch.no_grad()
def compact(model: nn.Module, input_shape: tuple[int, ...], *, depth: bool = True, channels: bool = True,
            columns: bool = True) -> nn.Module:
    """A compacted copy of ``model`` (in eval mode): dead residual blocks, dead channels and
    neurons removed, and remaining zero columns (shape fibers, inputs) skipped.

    Args:
        model: the sparse network (not changed).
        input_shape: one sample's shape (C, H, W) or (features,).
        depth, channels, columns: which removals to make.
    Returns:
        The smaller network; in eval mode its outputs equal ``model``'s (up to float rounding).
    """
    model = copy.deepcopy(model).eval()
    p = next(model.parameters())
    example = torch.zeros(1, *input_shape, device=p.device, dtype=p.dtype)
    if depth:
        remove_dead_blocks(model)
    if channels:
        remove_dead_channels(model, example)
    if columns:
        lower_sparse_columns(model)
    return model


@torch.no_grad()
def propagate_zeros(model: nn.Module, input_shape: tuple[int, ...]) -> nn.Module:
    """Zero, in place, every weight that :func:`compact` would remove anyway: the consumers'
    columns of dead channels and the producers' rows (bias included) of unused ones. The
    network computes the same function; its sparsity report then predicts the compacted size."""
    p = next(model.parameters())
    was = model.training
    model.eval()
    example = torch.zeros(1, *input_shape, device=p.device, dtype=p.dtype)
    dg, probe = _graph(model, example), _Probe(model, example)
    for m in [m for m in model.modules() if isinstance(m, LAYER_TYPES)]:
        group = _out_channel_group(dg, m)
        dead = set(_dead_channels(dg, group, probe))
        if not dead:
            continue
        for item in group:
            mod = item.dep.target.module
            idx = [i for i, r in zip(item.idxs, item.root_idxs) if r in dead]
            if isinstance(mod, LAYER_TYPES):
                if dg.is_out_channel_pruning_fn(item.dep.handler):
                    mod.weight[idx] = 0
                    if mod.bias is not None:
                        mod.bias[idx] = 0
                else:
                    mod.weight[:, idx] = 0
            elif isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.affine:
                mod.weight[idx] = 0
                mod.bias[idx] = 0
    model.train(was)
    return model
