"""The record that holds every fact about one network, kept beside its code (as timm keeps a
model's config beside the model): how to build it, what it reads and how, the authors'
solvers, how long each profile trains it, and the paper's baseline error."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from typing import Callable

import torch.nn as nn

from sslkit.training.solver import Schedule, Solver
from sslkit.util.profiles import check_profile

STAGES = ("baseline", "ssl", "finetune")


@dataclass(frozen=True)
class Sizes:
    """How long one profile trains a network, in Caffe iterations (one mini-batch each), how
    much data it uses (``train``/``test``: n samples spread over the split; None: all of it),
    how often each stage is evaluated on the test split (``evals`` times, the last at its end),
    by how much a shortened SSL stage multiplies every group-Lasso strength λ
    (``strength_factor``), so that groups reach zero within it (recorded with every result), for
    ImageNet-layout data the size images are warped to before cropping (``resize``;
    None: 256), the precision it trains in (``precision``, see :mod:`sslkit.training.runtime`),
    and the width of the hidden fc layers where a profile narrows them (``hidden``; None: the
    network's own; only the smoke profile sets it, so that a CaffeNet run takes seconds)."""

    baseline: int
    ssl: int
    finetune: int
    train: int | None = None
    test: int | None = None
    evals: int = 10
    strength_factor: float = 1.0
    resize: int | None = None
    precision: str = "fp32"
    hidden: int | None = None

    def key(self) -> dict:
        """The fields that key a cached stage. The precision is keyed as used (after any
        fall-back) by :mod:`sslkit.pipeline`, so it is left out here, and every key made
        before it existed stays as it was; ``strength_factor`` is keyed under its first
        name, ``strength``, and ``hidden`` only where it is set, for the same reason."""
        return {("strength" if k == "strength_factor" else k): v for k, v in vars(self).items()
                if k != "precision" and not (k == "hidden" and v is None)}

    def build_kwargs(self) -> dict:
        """What the network's ``build`` takes from these sizes (``hidden``, where set)."""
        return {} if self.hidden is None else {"hidden": self.hidden}

    def override(self, **changes) -> "Sizes":
        """A copy with ``changes`` applied; ``None`` values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class Multiplier:
    """Caffe's per-parameter ``lr_mult`` and ``decay_mult`` for the parameters whose qualified
    name matches ``pattern`` (``fnmatch``, e.g. ``"*.bias"``); the first matching rule wins."""

    pattern: str
    lr_mult: float = 1.0
    decay_mult: float = 1.0


@dataclass(frozen=True)
class Network:
    """One network of the papers and everything the suite needs to know about it.

    Attributes:
        name: the name used everywhere (``models.build(name)``, notebooks, the command line).
        build: ``(**kwargs) -> nn.Module``, initialised as the authors' Caffe model.
        input_shape: one sample, (C, H, W).
        dataset: ``mnist``, ``cifar10`` or ``imagenet`` (see :func:`sslkit.training.data.load`).
        normalize: how its pixels become inputs (the ``normalize`` of that data set's loader).
        solvers: the authors' solver per stage (``baseline``, ``ssl``, ``finetune``).
        sizes: per profile (``smoke``, ``quick``, ``paper``), how long each stage trains.
        paper_error: the paper's baseline top-1 test error, %.
        augment: ``(x, generator, part=None) -> x`` on each training batch (None: none; see
            :func:`sslkit.training.loop.train`).
        multipliers: per-parameter lr and weight-decay multipliers (none: all 1).
        profile_solvers: ``{profile: {stage: Solver}}``, where a profile trains a stage with
            another solver than the authors' (a short schedule's lr policy); the record says why.
        flush_denormal: train with denormal floats flushed to zero on the CPU (where tiny
            initial weights make them common and slow).
    """

    name: str
    build: Callable[..., nn.Module]
    input_shape: tuple[int, ...]
    dataset: str
    normalize: str
    solvers: dict[str, Solver] = field(default_factory=dict)
    sizes: dict[str, Sizes] = field(default_factory=dict)
    paper_error: float | None = None
    augment: Callable | None = None
    multipliers: tuple[Multiplier, ...] = ()
    flush_denormal: bool = False
    profile_solvers: dict[str, dict[str, Solver]] = field(default_factory=dict)

    def schedule(self, stage: str, iters: int, profile: str | None = None) -> Schedule:
        """The solver of ``stage`` run for ``iters`` iterations: the authors', or the one
        ``profile`` puts in its place (:attr:`profile_solvers`)."""
        solver = self.profile_solvers.get(profile, {}).get(stage) or self.solvers.get(stage)
        if solver is None:
            raise ValueError(f"{self.name} has no {stage!r} solver; it has {sorted(self.solvers)}")
        return solver.schedule(iters)

    def profile_sizes(self, profile: str, **overrides) -> Sizes:
        """How long ``profile`` trains this network, with ``overrides`` (None: keep)."""
        check_profile(profile)
        if profile not in self.sizes:
            raise ValueError(f"{self.name} has no schedule sizes for profile {profile!r}; "
                             f"it is not trained by this suite")
        return self.sizes[profile].override(**overrides)

    def param_groups(self, model: nn.Module) -> list[dict] | None:
        """Optimizer parameter groups carrying ``lr_mult``/``decay_mult`` (None: no multipliers)."""
        if not self.multipliers:
            return None
        groups: dict[tuple[float, float], list] = {}
        for name, p in model.named_parameters():
            rule = next((m for m in self.multipliers if fnmatch.fnmatchcase(name, m.pattern)), Multiplier("*"))
            groups.setdefault((rule.lr_mult, rule.decay_mult), []).append(p)
        return [{"params": ps, "lr_mult": lr, "decay_mult": decay} for (lr, decay), ps in groups.items()]
