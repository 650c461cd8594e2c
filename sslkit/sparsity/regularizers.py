"""Group Lasso (SSL), and the non-structured l1 penalty as its one-weight groups, as the
authors' Caffe code applies them.

The default ``subgradient`` update adds lambda * w / ||w_g|| to each weight's gradient (0 where
the group is zero) before the SGD step, and after the step sets every weight with
``|w| < threshold`` (1e-4) to exactly zero. The ``proximal`` option instead shrinks each group
after the step: w_g <- max(0, 1 - lr*lambda/||w_g||) * w_g (group soft-thresholding).

    reg = GroupLasso.from_spec(model, {"conv1": {"filter": 5e-3, "channel": 5e-3}, "conv2": {...}})
    train(model, data, schedule, hooks=[reg])       # reg is a trainer hook (after_backward, post_step)
    l1 = GroupLasso.from_spec(model, {"l1": 1e-4})  # non-structured: sum |w|
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from sslkit.sparsity.groups import LAYER_TYPES, canonical, group_norms, group_size, module_groups, view5


@dataclass
class Term:
    """lambda * sum_g c_g ||w_g|| over the ``structure`` groups of one layer's weight.

    Attributes:
        name: the layer's qualified name.
        module: the conv or linear layer.
        structure: see :mod:`sslkit.sparsity.groups`.
        strength: lambda.
        weighted: multiply each group's norm by sqrt(group size) (c_g); else c_g = 1.
    """

    name: str
    module: nn.Module
    structure: str
    strength: float
    weighted: bool = False

    @property
    def coef(self) -> float:
        w = self.module.weight
        return self.strength * (math.sqrt(group_size(w, self.structure, module_groups(self.module)))
                                if self.weighted else 1.0)


def _layers(model: nn.Module, names=None) -> dict[str, nn.Module]:
    found = {n: m for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)}
    if names is None:
        return found
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"no conv/linear layer named {missing}; layers are {list(found)}")
    return {n: found[n] for n in names}


def _default_layers(model: nn.Module, layers=None) -> dict[str, nn.Module]:
    """``layers`` by name; by default the conv layers, or the linear ones in a network without convs."""
    chosen = _layers(model, layers)
    if layers is None and any(isinstance(m, nn.Conv2d) for m in chosen.values()):
        chosen = {n: m for n, m in chosen.items() if isinstance(m, nn.Conv2d)}
    return chosen


def _check_strength(value, where: str) -> float:
    if not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
        raise ValueError(f"strength for {where} must be a finite number >= 0, got {value!r}")
    return float(value)


class GroupLasso:
    """A sum of group-Lasso :class:`Term` s over a model's layers.

    Args:
        terms: the terms.
        threshold: after each step, weights with ``|w| < threshold`` become exactly 0 (None: off).
        mode: ``"subgradient"`` (the authors') or ``"proximal"``.
    """

    def __init__(self, terms: list[Term], *, threshold: float | None = 1e-4, mode: str = "subgradient"):
        if mode not in ("subgradient", "proximal"):
            raise ValueError(f"mode must be 'subgradient' or 'proximal', got {mode!r}")
        self.terms = [t for t in terms if t.strength > 0]
        self.threshold, self.mode = threshold, mode
        for t in self.terms:
            canonical(t.structure)

    @classmethod
    def from_spec(cls, model: nn.Module, spec: dict, *, layers: list[str] | None = None,
                  weighted: bool = False, **kwargs) -> "GroupLasso":
        """Terms from a spec: either ``{structure: strength}`` for every conv/linear layer in
        ``layers`` (default: all conv layers; all linear layers if there are none), or ``{layer: {structure: strength}}`` per layer.
        Other keyword arguments go to the constructor."""
        terms = []
        if spec and all(isinstance(v, dict) for v in spec.values()):
            for name, module in _layers(model, list(spec)).items():
                for structure, lam in spec[name].items():
                    terms.append(Term(name, module, canonical(structure), _check_strength(lam, f"{name}.{structure}"), weighted))
        else:
            chosen = _default_layers(model, layers)
            for structure, lam in spec.items():
                lam = _check_strength(lam, structure)
                terms += [Term(n, m, canonical(structure), lam, weighted) for n, m in chosen.items()]
        return cls(terms, **kwargs)

    def penalty(self) -> torch.Tensor:
        """R = sum over terms of lambda * sum_g c_g ||w_g|| (differentiable)."""
        total = torch.zeros((), device=self.terms[0].module.weight.device) if self.terms else torch.zeros(())
        for t in self.terms:
            w = t.module.weight
            total = total + t.coef * group_norms(w, t.structure, module_groups(t.module)).sum()
        return total

    @torch.no_grad()
    def subgradient(self, term: Term) -> torch.Tensor:
        """d R_term / d w = lambda * c_g * w / ||w_g||, and 0 on all-zero groups."""
        w = term.module.weight
        norms = group_norms(w, term.structure, module_groups(term.module), keepdim=True)
        scale = torch.where(norms > 0, term.coef / norms, torch.zeros_like(norms))
        return (view5(w, module_groups(term.module)) * scale).reshape(w.shape)

    @torch.no_grad()
    def add_subgradient(self, model: nn.Module | None = None) -> None:
        """Add every term's subgradient to its weight's ``.grad`` (the after-backward hook)."""
        for t in self.terms:
            w = t.module.weight
            g = self.subgradient(t)
            if w.grad is None:
                w.grad = g
            else:
                w.grad.add_(g)

    @torch.no_grad()
    def prox(self, lr: float) -> None:
        """Group soft-thresholding with step ``lr`` (the proximal variant's post-step)."""
        for t in self.terms:
            w, g = t.module.weight, module_groups(t.module)
            norms = group_norms(w, t.structure, g, keepdim=True)
            shrink = torch.clamp(1 - lr * t.coef / norms.clamp_min(1e-30), min=0)
            view5(w, g).mul_(shrink)

    @torch.no_grad()
    def zero_small(self) -> None:
        """Set weights with ``|w| < threshold`` to exactly 0 (only the regularized layers)."""
        if self.threshold is None:
            return
        for w in {id(t.module.weight): t.module.weight for t in self.terms}.values():
            w.masked_fill_(w.abs() < self.threshold, 0.0)

    def after_backward(self, model: nn.Module) -> None:
        """The trainer hook: the subgradient mode adds the penalty's subgradient to ``.grad``."""
        if self.mode == "subgradient":
            self.add_subgradient()

    def post_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, it: int) -> None:
        """The trainer hook: the proximal step (proximal mode), then zeroing below the threshold."""
        if self.mode == "proximal":
            self.prox(optimizer.param_groups[0]["lr"])
        self.zero_small()


def edge_strength(layers: nn.Module | list[nn.Module], structure: str, fraction: float, shrink: float, *,
                  weighted: bool = False) -> float:
    """The one strength at which the proximal update alone zeroes ``fraction`` of the groups of
    ``layers`` (a conv or linear layer, or several sharing one strength).

    Each proximal step shrinks a group's norm by ``lr * lambda * c_g`` (see :meth:`GroupLasso.prox`),
    so a stage whose learning rates sum to ``shrink`` zeroes, with no data gradient, every group
    whose norm is at most ``shrink * lambda * c_g``. The data gradient holds some of them up, so a
    trained stage reaches less sparsity than ``fraction``: it is a calibration of the strength, not
    a prediction of the result.

    Args:
        layers: conv or linear layers (their conv groups are respected).
        structure: see :mod:`sslkit.sparsity.groups` (``depth``: one group per layer).
        fraction: the share of all their groups to zero, in [0, 1].
        shrink: the sum of the learning rates of the stage's steps (``sum(schedule.lr_at(t))``).
        weighted: whether each group's norm is weighted by sqrt(group size) (c_g), as in :class:`Term`.
    Returns:
        lambda: the ``fraction`` quantile of norm / c_g over all the groups, divided by ``shrink``.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    if not shrink > 0:
        raise ValueError(f"shrink (the sum of the stage's learning rates) must be > 0, got {shrink!r}")
    scaled = []
    for m in ([layers] if isinstance(layers, nn.Module) else list(layers)):
        w, g = m.weight.detach().double(), module_groups(m)
        c = math.sqrt(group_size(w, structure, g)) if weighted else 1.0
        scaled.append(group_norms(w, structure, g).flatten() / c)
    return float(torch.quantile(torch.cat(scaled), fraction)) / shrink
