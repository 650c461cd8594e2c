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
  flatten into a linear layer ...), and removes the dead channels from all of them. A grouped
  conv loses channels group by group (a :class:`GroupedConv` when its groups end up unequal,
  one grouped conv again when they stay equal); a depthwise conv loses a channel together
  with the filter feeding it.
- columns and rows: a conv whose lowered weight still has all-zero columns (shape fibers) or
  rows (zero filters whose channel stays alive, e.g. through a shortcut) becomes a
  :class:`LoweredConv`, which gathers only the needed rows of the im2col matrix and computes
  only the non-zero filters, group by group, padding nothing; a linear layer with all-zero columns reads only its live inputs
  through a :class:`Select` (a fully connected network's first layer thus drops the pixels
  that lost every connection).

Channels are left alone (not removed) where removal would not be exact: where the channel
mixes with others (a cross-channel LRN, a group norm, a softmax over channels, a squeeze-and-
excitation gate), does not reach its consumers as zeros, or passes a layer sslkit does not
know; and a conv or linear layer always keeps at least one input and one output channel.
The parameter and FLOP counts of the result are the sparsity report's "weights left" and
"FLOP left" once :func:`propagate_zeros` has zeroed what removal makes useless.
"""
from __future__ import annotations

import copy
import warnings

import torch
import torch.nn as nn

from sslkit.compaction.layers import GroupedConv, LoweredConv, LoweredLinear, Select, ShortcutBlock
from sslkit.sparsity.groups import LAYER_TYPES, zero_groups
from sslkit.sparsity.lowering import live

__all__ = ["GroupedConv", "LoweredConv", "LoweredLinear", "Select", "ShortcutBlock", "compact", "depth", "kept_constants", "propagate_zeros",
           "remove_dead_blocks", "remove_dead_channels", "lower_sparse_columns", "residual_blocks",
           "branch_convs", "shortcut_layers"]


# ---------------------------------------------------------------------------- helpers
def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, new)


def _bn_constant(bn: nn.modules.batchnorm._BatchNorm) -> torch.Tensor:
    """What ``bn`` outputs (eval mode) for an all-zero input channel."""
    scale = (bn.weight if bn.affine else 1.0) / torch.sqrt(bn.running_var + bn.eps)
    return (bn.bias if bn.affine else 0.0) - bn.running_mean * scale


def _zero_filters(m: nn.Module) -> torch.Tensor:
    """Per output channel: all weights are zero (the bias aside)."""
    if isinstance(m, GroupedConv):
        return torch.cat([_zero_filters(c) for c in m.convs])
    return zero_groups(m.weight, "filter", getattr(m, "groups", 1))


def _zero_rows(m: nn.Module) -> torch.Tensor:
    """Per output channel: all weights and the bias are zero."""
    if isinstance(m, GroupedConv):
        return torch.cat([_zero_rows(c) for c in m.convs])
    dead = _zero_filters(m)
    return dead & (m.bias.detach() == 0) if m.bias is not None else dead


def _zero_cols(m: nn.Module) -> torch.Tensor:
    """Per input channel / feature: all weights reading it are zero (ungrouped layers)."""
    if isinstance(m, GroupedConv):
        return torch.cat([_zero_cols(c) for c in m.convs])
    return zero_groups(m.weight, "channel")


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and 1 < m.groups == m.in_channels == m.out_channels


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv / linear layers, a :class:`GroupedConv` as one (not its parts)."""
    inside = {id(c) for m in model.modules() if isinstance(m, GroupedConv) for c in m.convs.modules()}
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, (*LAYER_TYPES, GroupedConv, LoweredConv)) and id(m) not in inside]


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
    :class:`LoweredConv` or :class:`GroupedConv` is one conv), projection shortcuts not counted."""
    return len(_layers(model)) - len(shortcut_layers(model))


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
def _grouped_conv_pruner():
    """torch-pruning's pruner for :class:`GroupedConv`: removes input or output channels from the
    groups that hold them (torch-pruning's own grouped-conv pruning assumes every group loses
    the same channels)."""
    from torch_pruning.pruner.function import BasePruningFunc

    def remove(layer, idxs, out):
        offset, drop = 0, set(idxs)
        for conv in layer.convs:
            size = conv.out_channels if out else conv.in_channels
            keep = [k for k in range(size) if k + offset not in drop]
            if len(keep) < size:
                index = torch.as_tensor(keep, dtype=torch.long, device=conv.weight.device)
                conv.weight = nn.Parameter(conv.weight.detach().index_select(0 if out else 1, index))
                if out:
                    conv.out_channels = len(keep)
                    if conv.bias is not None:
                        conv.bias = nn.Parameter(conv.bias.detach().index_select(0, index))
                else:
                    conv.in_channels = len(keep)
            offset += size
        return layer

    class Pruner(BasePruningFunc):
        TARGET_MODULES = (GroupedConv,)

        def prune_out_channels(self, layer, idxs):
            return remove(layer, idxs, True)

        def prune_in_channels(self, layer, idxs):
            return remove(layer, idxs, False)

        def get_out_channels(self, layer):
            return layer.out_channels

        def get_in_channels(self, layer):
            return layer.in_channels

    return Pruner()


def _graph(model: nn.Module, example: torch.Tensor):
    """torch-pruning's dependency graph of ``model``, or None (with one warning naming the
    network) where it cannot be traced: every channel is then kept."""
    import torch_pruning as tp

    GroupedConv.opaque = True   # one node of the graph, pruned by its own pruner
    try:
        with torch.enable_grad():  # the graph is traced through autograd
            return tp.DependencyGraph().build_dependency(model, example_inputs=example,
                                                         customized_pruners={GroupedConv: _grouped_conv_pruner()})
    except Exception as exc:    # torch-pruning's index mapping fails on some reshapes (ShuffleNet's shuffle)
        warnings.warn(f"compaction keeps every channel of {type(model).__name__}: torch-pruning cannot trace its "
                      f"graph ({type(exc).__name__}: {exc}); zero columns are still skipped", stacklevel=3)
        return None
    finally:
        GroupedConv.opaque = False


def _channel_groups(dg, model: nn.Module):
    """(layer name, its output-channel group) for every conv and linear layer the graph can
    group; a layer it cannot (an index mapping torch-pruning gets wrong) keeps its channels,
    with one warning naming it."""
    for name, m in _layers(model):
        try:
            yield name, m, _out_channel_group(dg, m)
        except Exception as exc:
            warnings.warn(f"compaction keeps the output channels of {name} ({type(m).__name__}): torch-pruning "
                          f"cannot group them ({type(exc).__name__}: {exc})", stacklevel=3)


def _each_group_once(dg, model: nn.Module):
    """:func:`_channel_groups` (none when ``dg`` is None), less the groups already seen with
    another producer of the same channels (a residual add joins several)."""
    seen = set()
    for name, m, group in ([] if dg is None else _channel_groups(dg, model)):
        if id(m) in seen:
            continue
        seen |= {id(item.dep.target.module) for item in group if dg.is_out_channel_pruning_fn(item.dep.handler)}
        yield name, m, group


def _split_grouped(model: nn.Module) -> None:
    """Replace (in place) every grouped conv that is not depthwise by a :class:`GroupedConv`,
    so that its groups can lose different channels."""
    for name, m in list(model.named_modules()):
        if isinstance(m, nn.Conv2d) and m.groups > 1 and not _is_depthwise(m):
            _set(model, name, GroupedConv.split(m))


def _merge_grouped(model: nn.Module) -> None:
    """Turn (in place) every :class:`GroupedConv` whose groups stayed equal back into one conv."""
    for name, m in list(model.named_modules()):
        if isinstance(m, GroupedConv):
            _set(model, name, m.merged())


class _Probe:
    """Random inputs through the network (eval mode), to see what a channel becomes on the way
    to its consumers: whether it reaches them as exact zeros, and whether it changes any other
    channel (a sigmoid, a softmax over channels, a group norm ...). Removal is exact only when
    a dead channel arrives as zeros, or unused, and mixes into no other channel."""

    class _Done(Exception):
        pass

    def __init__(self, model: nn.Module, example: torch.Tensor):
        self.model = model
        self.x, self.other = (torch.randn(1, *example.shape[1:], generator=torch.Generator().manual_seed(seed)).to(example)
                              for seed in (0, 2))

    def inputs(self, want: list[nn.Module], perturb: dict) -> tuple[dict, dict]:
        """The inputs (``id(module)`` -> tensor) of the layers ``want``, as they are and when
        ``perturb`` (``{module: output channels}``) adds noise to those output channels of those
        layers. Two forward passes of the same shape (so the same kernels: bitwise comparable;
        clean and perturbed copies in one batch can differ in the last bit), each stopped once
        every wanted input is seen."""
        return self._run(want, {}), self._run(want, {id(m): idx for m, idx in perturb.items()})

    def elsewhere(self, want: list[nn.Module]) -> dict:
        """The inputs of the layers ``want`` for another random input (whether a channel's
        value there depends on the network's input)."""
        return self._run(want, {}, self.other)

    def _run(self, want: list[nn.Module], perturb: dict, x: torch.Tensor | None = None) -> dict:
        seen, hooks, left = {}, [], {id(m) for m in want}

        def record(mod, args):
            if id(mod) in left:
                seen[id(mod)] = args[0].detach().clone()
                left.discard(id(mod))
                if not left:
                    raise _Probe._Done

        def disturb(mod, _args, out):
            dim = _channel_dim(mod, out)
            index = torch.as_tensor(perturb[id(mod)], dtype=torch.long, device=out.device)
            noise = torch.rand(out.index_select(dim, index).shape, generator=torch.Generator().manual_seed(1)).to(out)
            return out.index_add(dim, index, 1.0 + noise)

        for m in self.model.modules():
            if id(m) in left:
                hooks.append(m.register_forward_pre_hook(record))
            if id(m) in perturb:
                hooks.append(m.register_forward_hook(disturb))
        try:
            self.model(self.x if x is None else x)
        except _Probe._Done:
            pass
        finally:
            for h in hooks:
                h.remove()
        return seen


def _channel_dim(mod: nn.Module, t: torch.Tensor) -> int:
    """The channel dimension of ``mod``'s input or output ``t``: the last for a linear layer
    (also on an (N, H, W, C) map, as in ConvNeXt's blocks), 1 otherwise."""
    return t.dim() - 1 if isinstance(mod, nn.Linear) else 1


def _channels_of(mod: nn.Module, t: torch.Tensor, idx: list[int]) -> torch.Tensor:
    return t.index_select(_channel_dim(mod, t), torch.as_tensor(idx, dtype=torch.long, device=t.device))


def _out_channel_group(dg, m: nn.Module, idxs: list[int] | None = None):
    """The dependency-graph group of pruning ``idxs`` (default: all) of ``m``'s outputs."""
    pruner = dg.get_pruner_of_module(m)
    n = pruner.get_out_channels(m)
    return dg.get_pruning_group(m, pruner.prune_out_channels, list(range(n)) if idxs is None else idxs)


def _dead_channels(dg, group, probe: _Probe) -> tuple[list[int], dict, dict]:
    """Root indices of the channels in ``group`` whose removal provably changes nothing:

    - produced as zeros (every producer's filter and bias zero, a BN after it adding nothing,
      a depthwise conv on the way adding no bias) and reaching every consumer as exact zeros, or
    - read by no consumer (all their columns zero; a depthwise conv reading them only passes
      them on to the consumers), or
    - constant: produced by zero filters whose bias (or the BN after them) is not zero, so
      that the channel reaches every consumer as one value, whatever the input; where that
      value is not zero, each consumer is a linear layer or an ungrouped conv with a bias, and
      a conv pads nothing or pads without zeros (replicate, reflect, circular keep a constant
      map constant), so that the channel's contribution is the same at every output position
      and folds into the bias (a value of zero, e.g. a negative bias after a ReLU, needs no fold),

    and in all cases mixing into no other channel on the way (checked on ``probe``: noise
    added to them at the producers changes only their own entries of the consumers' inputs).
    Otherwise they are kept. Layers sslkit does not know are left alone.

    Returns:
        (roots, folds, kept): the removable roots; for each constant one ``[(consumer, input
        index, value), ...]``, what :func:`_fold` adds to the consumers' biases before removal;
        and for each constant that stays, why (``{root: reason}``).
    """
    producers, consumers, depthwise, bns, blocked = [], [], [], [], ""
    for item in group:
        mod, handler = item.dep.target.module, item.dep.handler
        if isinstance(mod, (*LAYER_TYPES, GroupedConv)):
            if _is_depthwise(mod):
                depthwise.append((mod, item))
            elif getattr(mod, "groups", 1) > 1:
                blocked = f"it reaches a grouped conv ({type(mod).__name__}) compaction did not split"
            else:
                (producers if dg.is_out_channel_pruning_fn(handler) else consumers).append((mod, item))
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            bns.append((mod, item))
        elif isinstance(mod, nn.Module) and any(True for _ in mod.parameters(recurse=False)):
            blocked = f"it passes a layer sslkit does not know ({type(mod).__name__})"
    if not producers or not consumers:          # the network's input or output
        return [], {}, {}
    roots = sorted({r for _, item in producers for r in item.root_idxs})
    prod_dead = {r: True for r in roots}
    cons_dead = {r: True for r in roots}
    flat = {r: True for r in roots}             # zero filters: input-independent, perhaps constant
    for mod, item in producers:
        rows, filters = _zero_rows(mod), _zero_filters(mod)
        for i, r in zip(item.idxs, item.root_idxs):
            prod_dead[r] &= bool(rows[i])
            flat[r] &= bool(filters[i])
    for mod, item in depthwise:                 # zero in, zero out: only its bias could add
        for i, r in zip(item.idxs, item.root_idxs):
            prod_dead[r] &= mod.bias is None or bool(mod.bias[i] == 0)
            flat[r] = False
    for bn, item in bns:
        const = _bn_constant(bn)
        for i, r in zip(item.idxs, item.root_idxs):
            prod_dead[r] &= bool(const[i] == 0)
    for mod, item in consumers:
        cols = _zero_cols(mod)
        for i, r in zip(item.idxs, item.root_idxs):
            cons_dead[r] &= bool(cols[i])
    constant = {r for r in roots if flat[r] and not prod_dead[r] and not cons_dead[r]}
    if blocked:
        return [], {}, dict.fromkeys(sorted(constant), blocked)
    candidates = {r for r in roots if prod_dead[r] or cons_dead[r]} | constant
    if not candidates:
        return [], {}, {}
    readers = consumers + depthwise             # the layers the channel reaches
    base, disturbed = probe.inputs([mod for mod, _ in readers],
                                   {mod: [i for i, r in zip(item.idxs, item.root_idxs) if r in candidates]
                                    for mod, item in producers + depthwise})
    if any(id(mod) not in base for mod, _ in readers):
        return [], {}, dict.fromkeys(sorted(constant), "the probe did not reach all of its consumers")
    for mod, item in readers:                   # produced as zeros, but do they arrive as zeros?
        for i, r in zip(item.idxs, item.root_idxs):
            if prod_dead[r]:
                prod_dead[r] = not bool(_channels_of(mod, base[id(mod)], [i]).any())
    for mod, item in readers:                   # does noise on them change any other channel?
        own = {i for i, r in zip(item.idxs, item.root_idxs) if r in candidates}
        before, after = base[id(mod)], disturbed[id(mod)]
        others = [i for i in range(before.shape[_channel_dim(mod, before)]) if i not in own]
        if others and not torch.equal(_channels_of(mod, before, others), _channels_of(mod, after, others)):
            return [], {}, dict.fromkeys(sorted(constant), f"it mixes with other channels on the way to "
                                                          f"{type(mod).__name__} (e.g. a cross-channel LRN)")
    folds, kept = {r: [] for r in constant}, {}
    if constant:                                # one value everywhere, for any input?
        other = probe.elsewhere([mod for mod, _ in consumers])
        for mod, item in consumers:
            for i, r in zip(item.idxs, item.root_idxs):
                if r not in folds:
                    continue
                seen, again = _channels_of(mod, base[id(mod)], [i]), _channels_of(mod, other[id(mod)], [i])
                value = seen.flatten()[0]
                if not (torch.equal(seen, again) and bool((seen == value).all())):
                    kept[r] = f"its value at {type(mod).__name__} changes with the position or the input"
                elif value != 0 and not _folds_into(mod):
                    kept[r] = _why_no_fold(mod)
                else:
                    if value != 0:              # a zero adds nothing (and the consumer may have no bias)
                        folds[r].append((mod, i, value))
                    continue
                folds.pop(r)
    dead = [r for r in roots if prod_dead[r] or cons_dead[r] or r in folds]
    return dead, folds, kept                    # constants are neither produced as zeros nor unread


def _folds_into(mod: nn.Module) -> bool:
    """Whether a constant input channel of ``mod`` adds the same to every output position,
    so that it can fold into ``mod``'s bias (see :func:`_dead_channels`)."""
    if isinstance(mod, GroupedConv) or mod.bias is None:
        return False
    if isinstance(mod, nn.Linear):
        return True
    return mod.groups == 1 and (mod.padding_mode != "zeros" or not any(mod._reversed_padding_repeated_twice))


def _why_no_fold(mod: nn.Module) -> str:
    """Why a constant input channel of ``mod`` cannot fold into its bias (``_folds_into`` is False)."""
    if isinstance(mod, GroupedConv) or getattr(mod, "groups", 1) > 1:
        return f"its consumer is a grouped conv ({type(mod).__name__})"
    if mod.bias is None:
        return f"its consumer ({type(mod).__name__}) has no bias to fold it into"
    return "its consumer conv pads with zeros, so the constant differs at the border"


def _fold(folds: dict, roots: list[int]) -> None:
    """Add the constant channels ``roots`` to their consumers' biases (see :func:`_dead_channels`):
    a linear layer gets column × value, a conv each filter's kernel sum for that channel × value."""
    for r in roots:
        for mod, i, value in folds.get(r, ()):
            w = mod.weight[:, i]
            mod.bias += value * (w if w.dim() == 1 else w.sum(dim=(-2, -1)))


def _leave_one(dg, group, dead: list[int]) -> list[int]:
    """``dead`` less what would leave a conv or linear layer with no output or no input channel
    at all (a :class:`GroupedConv`'s groups may empty: they are then skipped or add their bias)."""
    dead = set(dead)
    for item in group:
        mod = item.dep.target.module
        if not isinstance(mod, LAYER_TYPES):
            continue
        out = dg.is_out_channel_pruning_fn(item.dep.handler)
        size = mod.weight.shape[0] if out or _is_depthwise(mod) else mod.weight.shape[1] * getattr(mod, "groups", 1)
        hit = [r for i, r in zip(item.idxs, item.root_idxs) if r in dead]
        if hit and len(hit) >= size:
            dead.discard(hit[0])
    return sorted(dead)


@torch.no_grad()
def remove_dead_channels(model: nn.Module, example: torch.Tensor) -> int:
    """Remove dead channels from every producer and consumer (in place). Returns how many.

    Grouped convs lose channels group by group (a :class:`GroupedConv` where the groups end up
    unequal); a depthwise conv loses a channel together with the filter that feeds it."""
    # One pass removes what is dead now; a removal can leave new dead channels (a grouped
    # conv's group that lost all its filters no longer reads its inputs), so compact() repeats
    # it until a pass removes nothing. The graph stays valid across removals (torch-pruning re-maps concatenation indices for
    # every new group), and the probe runs the network as it is at each call.
    _split_grouped(model)
    removed = 0
    dg, probe = _graph(model, example), _Probe(model, example)
    for _, m, group in _each_group_once(dg, model):
        dead, folds, _ = _dead_channels(dg, group, probe)
        dead = _leave_one(dg, group, dead)
        if dead:
            _fold(folds, dead)
            _out_channel_group(dg, m, dead).prune()
            removed += len(dead)
    _merge_grouped(model)
    return removed


@torch.no_grad()
def kept_constants(model: nn.Module, input_shape: tuple[int, ...]) -> list[dict]:
    """The constant channels :func:`compact` keeps, and why: zero filters whose bias (or the
    BN after them) is not zero, whose constant cannot be folded into the consumers' biases
    exactly (see :func:`_dead_channels`). Run it on the network :func:`propagate_zeros` has
    seen (what can fold is folded there, so what is left is kept).

    Args:
        model: the sparse network (not changed).
        input_shape: one sample's shape (C, H, W) or (features,).
    Returns:
        One ``{"layer", "channel", "kept because"}`` per kept channel: the producing layer's
        name, the channel's index among its outputs and the reason.
    """
    work = copy.deepcopy(model).eval()
    _split_grouped(work)
    p = next(work.parameters())
    example = torch.zeros(1, *input_shape, device=p.device, dtype=p.dtype)
    dg, probe, out = _graph(work, example), _Probe(work, example), []
    for name, _, group in _each_group_once(dg, work):
        out += [{"layer": name, "channel": r, "kept because": why} for r, why in _dead_channels(dg, group, probe)[2].items()]
    return out


@torch.no_grad()
def lower_sparse_columns(model: nn.Module) -> list[str]:
    """Layers whose lowered weight still has all-zero columns (or, for convs, rows) compute on
    the non-zero ones only (in place): a conv becomes a :class:`LoweredConv`; a linear layer reads its live inputs
    through a :class:`Select` (for a fully connected network's first layer: the pixels that kept a connection).
    Returns the changed layers' names."""
    changed = []
    for name, m in list(model.named_modules()):
        if isinstance(m, nn.Conv2d) and m.weight.numel():
            rows, cols = live(m.weight, m.groups)
            if not (rows.all() and cols.all()):              # a zero column or a zero row left
                _set(model, name, LoweredConv(m))
                changed.append(name)
        elif isinstance(m, nn.Linear) and m.weight.numel():
            inputs = torch.nonzero(~_zero_cols(m)).flatten()
            if zero_groups(m.weight, "filter").any() and len(inputs):   # zero rows whose outputs stay alive
                _set(model, name, LoweredLinear(m))
                changed.append(name)
            elif 0 < len(inputs) < m.in_features:
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
        for _ in range(20):                     # to a fixpoint (see remove_dead_channels)
            if not remove_dead_channels(model, example):
                break
    if columns:
        lower_sparse_columns(model)
    return model


@torch.no_grad()
def propagate_zeros(model: nn.Module, input_shape: tuple[int, ...], *, max_passes: int = 20) -> nn.Module:
    """Zero, in place, every weight that :func:`compact` would remove anyway: the consumers'
    columns of dead channels and the producers' rows (bias included) of unused ones. The
    network computes the same function; its sparsity report then predicts the compacted size.

    Zeroing can make more channels dead (a grouped conv whose filters of one group are all
    zero no longer reads that group's inputs, so their producers become unused), so passes
    repeat until one zeroes nothing (at most ``max_passes``). Where ``model`` has grouped convs
    the dead channels are found on a copy whose grouped convs are split (as :func:`compact`
    does); the weights are zeroed (and constants folded) in ``model`` itself, which keeps its
    modules and parameters."""
    was = model.training
    model.eval()
    for _ in range(max_passes):
        before = _zeros(model)
        _propagate_once(model, input_shape)
        if _zeros(model) == before:
            break
    model.train(was)
    return model


def _zeros(model: nn.Module) -> int:
    return sum(p.numel() - int(torch.count_nonzero(p)) for p in model.parameters())


def _propagate_once(model: nn.Module, input_shape: tuple[int, ...]) -> None:
    p = next(model.parameters())
    grouped = any(isinstance(m, nn.Conv2d) and m.groups > 1 and not _is_depthwise(m) for m in model.modules())
    work = copy.deepcopy(model) if grouped else model   # split on a copy; else zeroing as it goes keeps the function
    _split_grouped(work)
    example = torch.zeros(1, *input_shape, device=p.device, dtype=p.dtype)
    dg, probe = _graph(work, example), _Probe(work, example)
    names = {id(m): n for n, m in work.named_modules()}
    for _, m, group in _each_group_once(dg, work):
        dead, folds, _ = _dead_channels(dg, group, probe)
        _fold({r: [(model.get_submodule(names[id(mod)]), i, v) for mod, i, v in f] for r, f in folds.items()}, dead)
        dead = set(dead)
        for item in group if dead else ():
            name = names.get(id(item.dep.target.module))
            if name is None:                    # an operation (add, concat ...), no weights
                continue
            mod = model.get_submodule(name)
            idx = [i for i, r in zip(item.idxs, item.root_idxs) if r in dead]
            if isinstance(mod, LAYER_TYPES):
                _zero_channels(mod, idx, dg.is_out_channel_pruning_fn(item.dep.handler))
            elif isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.affine:
                mod.weight[idx] = 0
                mod.bias[idx] = 0


def _zero_channels(mod: nn.Module, idx: list[int], out: bool) -> None:
    """Zero the rows (``out``: filters with their bias) or the columns (input channels, counted
    over all groups) ``idx`` of a conv or linear layer."""
    if out or _is_depthwise(mod):
        mod.weight[idx] = 0
        if mod.bias is not None:
            mod.bias[idx] = 0
        return
    g = getattr(mod, "groups", 1)
    per_in, per_out = mod.weight.shape[1], mod.weight.shape[0] // g
    for i in idx:
        j = i // per_in
        mod.weight[j * per_out:(j + 1) * per_out, i % per_in] = 0
