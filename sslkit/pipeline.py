"""The SSL pipeline of the paper, for any network with a record and any experiment:

    baseline  ->  SSL (regularized training from the baseline)  ->  removal of what the zero
    groups make useless  ->  fine-tuning with the zeros frozen  ->  report  ->  compaction

    context = pipeline.setup("lenet", "quick")
    base = pipeline.baseline(context)
    run = pipeline.ssl(context, pipeline.Regularization({"filter": 5e-3, "channel": 5e-3}), base)
    run.report, run.compact, run.error

Every training stage is kept under ``<runs>/<stage>/<key>/`` (see :mod:`sslkit.settings`),
keyed by everything that decides its outcome (network, solver, sizes, seed, data,
regularization, and the baseline it starts from) but not by the machine or the data's path,
so a stage trained on a GPU and committed to the run store serves a notebook on a laptop. It
resumes from its last checkpoint when interrupted (or stopped at ``$SSLKIT_DEADLINE``).
Under ``torchrun`` only rank 0 writes stages (:mod:`sslkit.distributed`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn
from filelock import FileLock

from . import distributed, models, profiles
from .compact import compact, propagate_zeros
from .data import Splits, TensorData, load
from .io import atomic_torch_save, load_cached
from .masks import ZeroFreezer
from .models import Network, Sizes
from .regularizers import GroupLasso
from .report import sparsity_report
from .results import device_name
from .runtime import Runtime
from .settings import cache_dir, deadline, run_roots, runs_dir
from .train import Result, Schedule, default_device, evaluate, seed_everything, train


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

    @property
    def device(self) -> torch.device:
        return self.data.train.device

    @property
    def precision(self) -> str:
        """The precision stages train in (``fp32`` or ``bf16``, after any fall-back)."""
        return self.runtime.precision if self.runtime else "fp32"

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
    ``precision`` (None: the profile's, see :mod:`sslkit.runtime`).

    Raises:
        ValueError: an unknown network, profile or size. DataNotFoundError: missing data.
    """
    network = models.get(model)
    chosen = network.profile_sizes(profile, **sizes)
    dev = torch.device(device) if device else default_device()
    runtime = Runtime.resolve(dev, precision or chosen.precision)
    data = load(network.dataset, network.normalize, train=chosen.train, test=chosen.test,
                data_root=data_root, device=dev, resize=chosen.resize)
    if dev.type == "cuda":   # TF32 matrix units (recorded in the provenance)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    if runtime.channels_last:
        data = data._replace(train=_laid_out(data.train, runtime), test=_laid_out(data.test, runtime))
    return Context(network, profile, chosen, data, seed, force, progress, runtime)


def _laid_out(split: TensorData, runtime: Runtime) -> TensorData:
    if not isinstance(split, TensorData):   # a FolderData is made channels-last per batch
        return split
    return TensorData(runtime.memory_format(split.x), split.y)


def _precision_key(context: Context) -> dict:
    """The precision's part of a stage key: none for fp32 (every stage trained before precisions
    existed was fp32, and keeps its key), ``{"precision": ...}`` otherwise."""
    return {} if context.precision == "fp32" else {"precision": context.precision}


# ---------------------------------------------------------------------------- cached stages
def run_dir(stage: str, key: dict) -> Path:
    """The folder, relative to a run root, of one stage's parameter set ``key`` (solvers as
    :class:`Schedule` objects are keyed by their fields, so a changed recipe retrains instead
    of reusing)."""
    text = json.dumps(key, sort_keys=True, default=str)
    return Path(stage) / hashlib.sha256(text.encode()).hexdigest()[:16]


def _find(folder: Path, filename: str) -> Path | None:
    """``folder/filename`` in the first run root that has it (see :func:`sslkit.settings.run_roots`)."""
    return next((root / folder / filename for root in run_roots() if (root / folder / filename).exists()), None)


def train_stage(folder: Path, name: str, model: nn.Module, context: Context, schedule: Schedule, *,
                seed: int, hooks=None, evals: int | None = None) -> Result:
    """Train one stage of ``context``'s network, or load it if a run root holds it (``folder``
    is relative to the roots). Finished stages are kept as ``<name>.pt`` (weights, result, and
    the device that trained them); an interrupted one resumes from its ``<name>.ckpt``. The
    test split is evaluated ``evals`` times (default: the profile's), the last at the end."""
    final = runs_dir() / folder / f"{name}.pt"
    with _stage_lock(final):   # another process training the same stage: wait for it, then load it
        return _train_stage(folder, name, final, model, context, schedule, seed=seed, hooks=hooks, evals=evals)


def _stage_lock(final: Path):
    """An inter-process lock on one stage (a file under ``<cache>/locks``, outside the run store),
    so that concurrent runs of a sweep (``headless --jobs``) train a shared baseline once. Under
    ``torchrun`` the ranks train a stage together and take no lock."""
    if distributed.active():
        return contextlib.nullcontext()
    locks = cache_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    return FileLock(locks / (hashlib.sha256(str(final.resolve()).encode()).hexdigest()[:24] + ".lock"))


def _train_stage(folder: Path, name: str, final: Path, model: nn.Module, context: Context, schedule: Schedule, *,
                 seed: int, hooks, evals: int | None) -> Result:
    ckpt = final.with_suffix(".ckpt")
    if context.force:
        for p in (final, ckpt):
            p.unlink(missing_ok=True)
    found = None if context.force else _find(folder, f"{name}.pt")
    saved = None if found is None else load_cached(found, keys=("model", "result"), map_location=context.device,
                                                   weights_only=False)
    if saved is not None:
        model.load_state_dict(saved["model"])
        return Result(**saved["result"])
    if context.runtime is not None:
        context.runtime.prepare(model)
    earlier = None if context.force else _find(folder, f"{name}.ckpt")
    if earlier is not None and earlier != ckpt and distributed.is_main():   # resume from the store's checkpoint
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(earlier, ckpt)
    distributed.barrier()
    res = train(model, context.data.train, schedule, seed=seed, test=context.data.test, hooks=hooks,
                augment=context.network.augment, eval_every=max(schedule.iters // (evals or context.sizes.evals), 1),
                checkpoint=ckpt, checkpoint_every=max(min(1000, schedule.iters // 4), 1),
                param_groups=context.network.param_groups(model), progress=context.progress, desc=name,
                deadline=deadline(), flush_denormal=context.network.flush_denormal, precision=context.precision)
    res.device = device_name(context.device) + (f" x{distributed.world()[1]} processes" if distributed.active() else "")
    if distributed.is_main():
        atomic_torch_save({"model": model.state_dict(), "result": res.as_dict()}, final)
        ckpt.unlink(missing_ok=True)
    distributed.barrier()
    return res


# ---------------------------------------------------------------------------- baseline
def scale_spec(spec: dict, factor: float) -> dict:
    """A group-Lasso spec with every strength multiplied by ``factor``, to 12 significant digits
    (so that 3 x 8e-4 is the 0.0024 a user would write, and both find the same cached run)."""
    return {k: scale_spec(v, factor) if isinstance(v, dict) else float(f"{v * factor:.12g}") for k, v in spec.items()}


def baseline_dir(context: Context) -> Path:
    """The cache folder of the network's baseline: what it is trained on, how and for how long.
    SSL runs key on this folder's name, so they follow it."""
    s = context.sizes
    return run_dir("baseline", dict(
        model=context.network.name, sizes={"baseline": s.baseline, "train": s.train, "test": s.test},
        seed=context.seed, data=context.data.identity,
        solver=context.schedule("baseline"), multipliers=context.network.multipliers, **_precision_key(context)))


def baseline(context: Context) -> tuple[nn.Module, Result]:
    """The network trained from scratch with the authors' baseline solver (cached, shared by
    every experiment that starts from it). Returns the network and its training result."""
    seed_everything(context.seed)
    net = context.network.build().to(context.device)
    res = train_stage(baseline_dir(context), "baseline", net, context, context.schedule("baseline"), seed=context.seed)
    return net, res


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
    weighted: bool = False
    mode: str = "subgradient"
    threshold: float = 1e-4


@dataclass
class SSLRun:
    """One SSL run: the fine-tuned network (zeros propagated), its compacted copy, the
    per-layer sparsity report, errors (fractions), the training time of its stages and the
    device that fine-tuned it."""

    model: nn.Module
    compact: nn.Module
    report: pd.DataFrame
    baseline_error: float
    ssl_error: float
    error: float
    compact_error: float
    wall_s: float
    trained_on: str = ""

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
               baseline=baseline_dir(context).name, **_precision_key(context))
    return run_dir("ssl", key)


def is_trained(context: Context, regularization: Regularization | None = None) -> bool:
    """Whether a run root already holds the baseline (and, given ``regularization``, that SSL
    run's fine-tuned stage), so that :func:`baseline` / :func:`ssl` would only load it."""
    folders = [(baseline_dir(context), "baseline.pt")]
    if regularization is not None:
        folders.append((ssl_dir(context, regularization), "finetune.pt"))
    return all(_find(folder, name) is not None for folder, name in folders)


def ssl(context: Context, regularization: Regularization, base: tuple[nn.Module, Result]) -> SSLRun:
    """SSL from the baseline ``base`` (the pair :func:`baseline` returns), removal of what the
    zero groups make useless, fine-tuning with the zeros frozen, report and compaction. The
    strengths are multiplied by the profile's ``sizes.strength`` (1 but in shortened profiles)."""
    network, sizes, dev = context.network, context.sizes, context.device
    base_net, base_res = base
    ssl_schedule, finetune_schedule = context.schedule("ssl"), context.schedule("finetune")
    folder = ssl_dir(context, regularization)
    net = network.build().to(dev)
    net.load_state_dict(base_net.state_dict())
    spec = scale_spec(regularization.spec, sizes.strength)   # a shortened profile's stronger regularization
    reg = GroupLasso.from_spec(net, spec, weighted=regularization.weighted,
                               mode=regularization.mode, threshold=regularization.threshold)
    ssl_res = train_stage(folder, "ssl", net, context, ssl_schedule, seed=context.seed + 1, hooks=[reg])
    propagate_zeros(net, network.input_shape)   # zero what the zero groups make useless
    freezer = ZeroFreezer(net)
    finetune_res = train_stage(folder, "finetune", net, context, finetune_schedule, seed=context.seed + 2,
                               hooks=[freezer])
    freezer.remove()
    small = compact(net, network.input_shape)
    return SSLRun(model=net, compact=small, report=sparsity_report(net, network.input_shape),
                  baseline_error=base_res.test_error, ssl_error=ssl_res.test_error, error=finetune_res.test_error,
                  compact_error=evaluate(small, context.data.test)[0],
                  wall_s=base_res.wall_s + ssl_res.wall_s + finetune_res.wall_s, trained_on=finetune_res.device)
