"""The SSL recipe of the paper, for any network with a record and any experiment:

    baseline  ->  SSL (regularized training from the baseline)  ->  removal of what the zero
    groups make useless  ->  fine-tuning with the zeros frozen  ->  report  ->  compaction

    context = pipeline.setup("lenet", "quick")
    base = pipeline.baseline(context)
    run = pipeline.ssl(context, pipeline.Regularization({"filter": 5e-3, "channel": 5e-3}), base)
    run.report, run.compact, run.error

Every training stage is kept in the stage store (:mod:`sslkit.pipeline.store`), keyed by
everything that decides its outcome: network, solver, sizes, precision, seed, data,
regularization, and the baseline it starts from. The profile's strength multiplier
(``sizes.strength_factor``) is applied here, once, in :func:`ssl`.
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn

from sslkit import models
from sslkit.compaction.compact import compact, kept_constants, propagate_zeros
from sslkit.models import Network, Sizes
from sslkit.pipeline import store
from sslkit.sparsity.masks import ZeroFreezer
from sslkit.sparsity.regularizers import GroupLasso
from sslkit.sparsity.stats import sparsity_report
from sslkit.training.data import Splits, TensorData, load
from sslkit.training.loop import Result, evaluate, seed_everything
from sslkit.training.runtime import Runtime, default_device
from sslkit.training.solver import Schedule
from sslkit.util import profiles


@dataclass(frozen=True)
class Context:
    """What every stage of one experiment shares: the network's record, how long the profile
    trains it, its data (on the training device), and the run options."""

    network: Network
    profile: str
    sizes: Sizes
    data: Splits
    seed: int = 0
    force: bool = False
    progress: bool = True
    runtime: Runtime | None = None
    baselines: dict = field(default_factory=dict, compare=False)   # filled by baseline(): what was used
    stage_precisions: dict = field(default_factory=dict, compare=False)   # filled by stage_dir(): folder -> precision

    @property
    def device(self) -> torch.device:
        return self.data.train.device

    @property
    def precision(self) -> str:
        """The precision stages train in (``fp32`` or ``bf16``, after any fall-back)."""
        return self.runtime.precision if self.runtime else "fp32"

    @property
    def precision_note(self) -> str:
        """The provenance's precision: the runtime's note, or, where stages from the store were
        trained in another precision than this device's (bf16 ones on a CPU without bf16, see
        :func:`stage_dir`), which precisions the stages used had."""
        runtime = self.runtime or Runtime(self.device)
        used = sorted(set(self.stage_precisions.values()), key=lambda p: p != runtime.requested)
        if set(used) <= {runtime.precision}:
            return runtime.note
        parts = [Runtime(self.device, p, p).note + (" (stages from the store)" if p != runtime.precision
                                                    else " (stages in this device's precision)") for p in used]
        return "; ".join(parts) + f"; this {self.device.type} has no native bfloat16, so a stage it trains is fp32"

    def build(self) -> nn.Module:
        """A fresh network of this profile's sizes (see :meth:`Sizes.build_kwargs`) on the device."""
        return self.network.build(**self.sizes.build_kwargs()).to(self.device)

    def schedule(self, stage: str, iters: int | None = None) -> Schedule:
        """The network's solver of ``stage`` under this profile, run for ``iters`` (None: the
        profile's size of that stage)."""
        return self.network.schedule(stage, getattr(self.sizes, stage) if iters is None else iters,
                                     profile=self.profile)

    def schedule_note(self, stages: tuple[str, ...] = ("baseline", "ssl", "finetune")) -> str:
        """For every result's provenance: whether ``stages`` run as long as in the paper
        profile, or a label saying the schedule is shortened and by how much."""
        paper_sizes = self.network.sizes.get("paper")
        names = " / ".join(stages)
        ours = " / ".join(str(getattr(self.sizes, k)) for k in stages)
        if paper_sizes is not None and all(getattr(self.sizes, k) >= getattr(paper_sizes, k) for k in stages):
            return f"the paper profile's: {ours} iterations ({names})"
        theirs = " / ".join(str(getattr(paper_sizes, k)) for k in stages) if paper_sizes else "unknown"
        return f"shortened schedule: {ours} iterations ({names}; paper profile: {theirs})"


def setup(model: str, profile: str = profiles.DEFAULT, *, data_root=None, device: str | None = None, seed: int = 0,
          force: bool = False, progress: bool = True, precision: str | None = None, **sizes) -> Context:
    """The :class:`Context` of network ``model`` under ``profile``: its data loaded on
    ``device`` (default: CUDA when available) and the profile's sizes with ``sizes`` overrides
    (``baseline``, ``ssl``, ``finetune``, ``train``, ``test``; None: the profile's), trained in
    ``precision`` (None: the profile's, see :mod:`sslkit.training.runtime`).

    Raises:
        ValueError: an unknown network, profile or size. DataNotFoundError: missing data.
    """
    network = models.get(model)
    chosen = network.profile_sizes(profile, **sizes)
    dev = torch.device(device) if device else default_device()
    runtime = Runtime.resolve(dev, precision or chosen.precision)
    data = load(network.dataset, network.normalize, train=chosen.train, test=chosen.test,
                data_root=data_root, device=dev, resize=chosen.resize)
    runtime.activate()
    if runtime.channels_last:
        data = data._replace(train=_laid_out(data.train, runtime), test=_laid_out(data.test, runtime))
    return Context(network, profile, chosen, data, seed, force, progress, runtime)


def _laid_out(split: TensorData, runtime: Runtime) -> TensorData:
    if not isinstance(split, TensorData):   # a FolderData is made channels-last per batch
        return split
    return TensorData(runtime.memory_format(split.x), split.y)


def _precision_key(precision: str) -> dict:
    """The precision's part of a stage key: none for fp32 (every stage trained before precisions
    existed was fp32, and keeps its key), ``{"precision": ...}`` otherwise."""
    return {} if precision == "fp32" else {"precision": precision}


def stage_dir(context: Context, stage: str, key: dict, filename: str, *, precision: str | None = None) -> Path:
    """The store folder (see :func:`sslkit.pipeline.store.run_dir`) of stage ``stage`` keyed by
    ``key`` and the precision. Where the device falls back from the precision asked for (bf16
    on a CPU without it), a stage the store holds in the precision asked for (``filename``
    there, the last file of the stage, e.g. trained and committed on a CPU with bf16) is the
    one used; else, and always under ``context.force`` (a retrain), the folder of the
    precision used, where a stage trained here goes. ``precision`` fixes the folder's precision
    instead (for a chain of stages that must share one). The precision chosen is kept in
    ``context.stage_precisions`` (folder name -> precision) for the provenance
    (:attr:`Context.precision_note`)."""
    runtime = context.runtime or Runtime(context.device)

    def folder(p: str) -> Path:
        return store.run_dir(stage, {**key, **_precision_key(p)})
    if precision is None:
        candidates = [runtime.requested] if runtime.requested != runtime.precision and not context.force else []
        precision = next((p for p in candidates if store.holds(folder(p), filename)), runtime.precision)
    chosen = folder(precision)
    context.stage_precisions[chosen.name] = precision
    return chosen


# ---------------------------------------------------------------------------- cached stages
# ---------------------------------------------------------------------------- baseline
def scale_spec(spec: dict, factor: float) -> dict:
    """A group-Lasso spec with every strength multiplied by ``factor``, to 12 significant digits
    (so that 3 x 8e-4 is the 0.0024 a user would write, and both find the same cached run)."""
    return {k: scale_spec(v, factor) if isinstance(v, dict) else float(f"{v * factor:.12g}") for k, v in spec.items()}


def baseline_dir(context: Context) -> Path:
    """The cache folder of the network's baseline: what it is trained on, how and for how long.
    SSL runs key on this folder's name, so they follow it."""
    s = context.sizes
    return stage_dir(context, "baseline", dict(
        model=context.network.name, sizes={"baseline": s.baseline, "train": s.train, "test": s.test,
                                           **s.build_kwargs()},
        seed=context.seed, data=context.data.identity,
        solver=context.schedule("baseline"), multipliers=context.network.multipliers), "baseline.pt")


def baseline(context: Context) -> tuple[nn.Module, Result]:
    """The network trained from scratch with the authors' baseline solver (cached, shared by
    every experiment that starts from it). Returns the network and its training result."""
    seed_everything(context.seed)
    net = context.build()
    folder = baseline_dir(context)
    res = store.train_stage(folder, "baseline", net, context, context.schedule("baseline"), seed=context.seed)
    _note_baseline(context, folder, res)
    return net, res


def baseline_result(context: Context) -> Result:
    """The baseline's training result alone, for a study that reads no weights (the precision
    table): from its stage or its result-only render record (see
    :func:`sslkit.pipeline.store.render_record`), with training on or off; where neither is
    held, :func:`baseline` trains it."""
    folder = baseline_dir(context)
    res = None if context.force else store.stage_result(folder, "baseline")
    if res is None:
        return baseline(context)[1]
    _note_baseline(context, folder, res)
    return res


def _note_baseline(context: Context, folder: Path, res: Result) -> None:
    context.baselines[context.network.name] = {"stage": folder.name, "test error %": round(100 * res.test_error, 2),
                                               "precision": context.stage_precisions[folder.name]}


# ---------------------------------------------------------------------------- SSL
@dataclass(frozen=True)
class Regularization:
    """How the SSL stage regularizes.

    Attributes:
        spec: the group-Lasso spec of :meth:`GroupLasso.from_spec`: ``{structure: strength}``
            for every conv layer (or every linear layer of a network without convs), or
            ``{layer: {structure: strength}}``; structure ``l1`` is the non-structured penalty.
        weighted: weight each group's norm by sqrt(group size).
        mode: ``subgradient`` (the authors' update) or ``proximal``.
        threshold: after each step, weights with ``|w| < threshold`` become exactly 0.
    """

    spec: dict
    _: KW_ONLY
    weighted: bool = False
    mode: str = "subgradient"
    threshold: float = 1e-4


@dataclass
class SSLRun:
    """One SSL run: the fine-tuned network (zeros propagated), its compacted copy, the
    per-layer sparsity report, errors (fractions), the training time of its stages, the
    device that fine-tuned it and the constant channels compaction kept (zero filters whose
    bias could not be folded exactly, see :func:`sslkit.compaction.compact.kept_constants`)."""

    model: nn.Module
    compact: nn.Module
    report: pd.DataFrame
    baseline_error: float
    ssl_error: float
    error: float
    compact_error: float
    wall_s: float
    trained_on: str = ""
    kept: list = field(default_factory=list)

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def compact_parameters(self) -> int:
        return sum(p.numel() for p in self.compact.parameters())


def ssl_dir(context: Context, regularization: Regularization) -> Path:
    """The cache folder of one SSL run (its SSL and fine-tuning stages)."""
    network, sizes = context.network, context.sizes
    key = dict(model=network.name, spec=regularization.spec, sizes=sizes.key(), seed=context.seed,
               data=context.data.identity, weighted=regularization.weighted,
               mode=regularization.mode, threshold=regularization.threshold,
               solvers=(context.schedule("ssl"), context.schedule("finetune")),
               baseline=baseline_dir(context).name)
    return stage_dir(context, "ssl", key, "finetune.pt")


def is_trained(context: Context, regularization: Regularization | None = None) -> bool:
    """Whether a run root already holds the baseline (and, given ``regularization``, that SSL
    run's fine-tuned stage), so that :func:`baseline` / :func:`ssl` would only load it."""
    folders = [(baseline_dir(context), "baseline.pt")]
    if regularization is not None:
        folders.append((ssl_dir(context, regularization), "finetune.pt"))
    return all(store.find(folder, name) is not None for folder, name in folders)   # full stages only


def _kept_finetune(context: Context, folder: Path) -> tuple[nn.Module, Result, Result] | None:
    """Where the store keeps an SSL run's fine-tuned stage, the fine-tuned network and the results
    of SSL and fine-tuning: fine-tuning's saved state replaces every weight and mask, so SSL's
    weights are not read, only its result (``ssl.pt`` may be a result-only render record, see
    :func:`sslkit.pipeline.store.slim`). None where either is missing or ``finetune.pt`` does not
    load: the run then goes the whole way (nothing is ever fine-tuned from the baseline)."""
    ssl_res = store.stage_result(folder, "ssl")
    if ssl_res is None:
        return None
    net = context.build()
    masks = ZeroFreezer(net)   # the weight_mask buffers the stage holds
    finetune_res = store.load_stage(folder, "finetune", net, context)
    masks.remove()
    return None if finetune_res is None else (net, ssl_res, finetune_res)


def ssl(context: Context, regularization: Regularization, base: tuple[nn.Module, Result]) -> SSLRun:
    """SSL from the baseline ``base`` (the pair :func:`baseline` returns), removal of what the
    zero groups make useless, fine-tuning with the zeros frozen, report and compaction. The
    strengths are multiplied by the profile's ``sizes.strength_factor`` (1 but in shortened profiles)."""
    network, sizes = context.network, context.sizes
    base_net, base_res = base
    ssl_schedule, finetune_schedule = context.schedule("ssl"), context.schedule("finetune")
    folder = ssl_dir(context, regularization)
    net = context.build()
    net.load_state_dict(base_net.state_dict())
    spec = scale_spec(regularization.spec, sizes.strength_factor)   # a shortened profile's stronger regularization
    reg = GroupLasso.from_spec(net, spec, weighted=regularization.weighted,
                               mode=regularization.mode, threshold=regularization.threshold)
    kept = None if context.force else _kept_finetune(context, folder)
    if kept is not None:
        net, ssl_res, finetune_res = kept
    else:
        ssl_res = store.train_stage(folder, "ssl", net, context, ssl_schedule, seed=context.seed + 1, hooks=[reg])
        propagate_zeros(net, network.input_shape)   # zero what the zero groups make useless
        freezer = ZeroFreezer(net)
        finetune_res = store.train_stage(folder, "finetune", net, context, finetune_schedule,
                                         seed=context.seed + 2, hooks=[freezer])
        freezer.remove()
    small = compact(net, network.input_shape)
    return SSLRun(model=net, compact=small, report=sparsity_report(net, network.input_shape),
                  baseline_error=base_res.test_error, ssl_error=ssl_res.test_error, error=finetune_res.test_error,
                  compact_error=evaluate(small, context.data.test)[0],
                  wall_s=base_res.wall_s + ssl_res.wall_s + finetune_res.wall_s, trained_on=finetune_res.device,
                  kept=kept_constants(net, network.input_shape))
