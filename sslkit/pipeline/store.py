"""The stage store: every training stage kept under ``<root>/<stage>/<key>/`` (see
:mod:`sslkit.util.settings` for the roots: the cache, then the committed ``runs/``), keyed by a
hash of everything that decides its outcome, never by the machine or the data's path, so a
stage trained on a GPU and committed serves a notebook on a laptop. A finished stage is
``<name>.pt`` (weights, result, the device that trained it; its records deflated, so that a
sparse stage takes a fraction of its size in the committed store, and ``torch.load`` reads it
as any other); an interrupted one resumes from ``<name>.ckpt``; a file lock per stage lets
concurrent processes train a shared one once.
With ``$SSLKIT_TRAIN=0`` a stage is only loaded: one that is missing raises :class:`StageMissing`;
then a stage's render record (``<name>.render.pt``, :func:`render_record`: the stage without its
fully connected weights, for a store that must stay small) serves in its place. A result
alone (:func:`stage_result`, from the stage or its record, training on or off) serves where
the weights are replaced anyway: an SSL run whose ``finetune.pt`` is kept reads only its
``ssl.pt``'s result, so the store may keep that one as a result-only record.
Under ``torchrun`` only rank 0 writes (:mod:`sslkit.training.distributed`)."""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
from filelock import FileLock

from sslkit.training import distributed
from sslkit.training.loop import Result, train
from sslkit.training.runtime import device_name
from sslkit.training.solver import Schedule
from sslkit.util.io import atomic_torch_save, load_cached
from sslkit.util.settings import cache_dir, deadline, run_roots, runs_dir, training_allowed

if TYPE_CHECKING:
    from sslkit.pipeline.recipe import Context


class StageMissing(LookupError):
    """A stage no run root holds, while training is off (``$SSLKIT_TRAIN=0``)."""


def run_dir(stage: str, key: dict) -> Path:
    """The folder, relative to a run root, of one stage's parameter set ``key`` (solvers as
    :class:`Schedule` objects are keyed by their fields, so a changed recipe retrains instead
    of reusing)."""
    text = json.dumps(key, sort_keys=True, default=str)
    return Path(stage) / hashlib.sha256(text.encode()).hexdigest()[:16]


def find(folder: Path, filename: str) -> Path | None:
    """``folder/filename`` in the first run root that has it (see :func:`sslkit.util.settings.run_roots`)."""
    return next((root / folder / filename for root in run_roots() if (root / folder / filename).exists()), None)


def record_name(filename: str) -> str:
    """The render record's file name of a stage file: ``finetune.pt`` -> ``finetune.render.pt``."""
    return filename.removesuffix(".pt") + ".render.pt"


def holds(folder: Path, filename: str) -> Path | None:
    """The stage file ``folder/filename`` in the first run root that has it; with training off
    (``$SSLKIT_TRAIN=0``), else its render record (see :func:`render_record`)."""
    found = find(folder, filename)
    return found if found is not None or training_allowed() else find(folder, record_name(filename))


def render_record(stage: Path, *, weights: bool = True) -> Path:
    """Write beside a finished stage ``<name>.pt`` its render record ``<name>.render.pt``: the
    result and every tensor but the fully connected (2-D) weights and their masks: all that
    an experiment reads which takes only the conv layers' sparsity and activations and the
    error from the result (the granularity study), at a fraction of the bytes where the fc
    layers dominate (LeNet's fc1, CaffeNet's fc6-fc8). A record serves as a stage only with
    training off (a result-only one never: it holds no network), and no stage is ever trained
    from one; :func:`stage_result` reads its result with training on too. Its left-out tensors load as NaN:
    :func:`sslkit.training.loop.evaluate` refuses such a network, but a count of zeros would
    take NaN for non-zero, so only such experiments may use records.

    Args:
        stage: the finished stage's file.
        weights: False: the result alone, every tensor left out. For an SSL run's ``ssl.pt``
            beside its ``finetune.pt``: :func:`sslkit.pipeline.ssl` reads only SSL's result where
            the fine-tuned stage is kept (its weights replace SSL's), see :func:`stage_result`.

    Returns:
        the record's path.
    """
    saved = _read(stage)
    if saved is None or saved.get("left_out"):
        raise ValueError(f"{stage} is not a finished stage")
    left = sorted(k for k, v in saved["model"].items() if v.dim() == 2 or not weights)
    record = {**saved, "model": {k: v for k, v in saved["model"].items() if k not in left}, "left_out": left}
    out = stage.with_name(record_name(stage.name))
    atomic_torch_save(record, out, compress=True)
    return out


def stage_result(folder: Path, name: str) -> Result | None:
    """The result of the finished stage ``name`` in ``folder`` (relative to the run roots), read
    from ``<name>.pt`` or its render record (with training on too: a result is only read,
    nothing trains from it); None where no run root holds a readable one."""
    for filename in (f"{name}.pt", record_name(f"{name}.pt")):
        saved = _read(find(folder, filename))
        if saved is not None:
            return Result(**saved["result"])
    return None


def slim(root: str | Path) -> list[Path]:
    """Replace, in the run root ``root``, each SSL run's ``ssl.pt`` whose ``finetune.pt`` is there
    by its result-only render record (see :func:`render_record`): all that :func:`sslkit.pipeline.ssl`
    reads of it then. The record is written, read back and compared (same result, no tensors)
    before the stage is removed.

    Returns:
        the records written.
    """
    written = []
    for tuned in sorted(Path(root).glob("ssl/*/finetune.pt")):
        stage = tuned.with_name("ssl.pt")
        if not stage.exists() or _read(tuned) is None:
            continue   # nothing to slim, or a fine-tuned stage that does not load: SSL's weights stay
        record = render_record(stage, weights=False)
        full, kept = (torch.load(p, map_location="cpu", weights_only=False) for p in (stage, record))
        if kept["result"] != full["result"] or kept["model"] or sorted(kept["left_out"]) != sorted(full["model"]):
            raise RuntimeError(f"the record {record} does not hold {stage}'s result; {stage} is kept")
        stage.unlink()
        written.append(record)
    return written


def load_stage(folder: Path, name: str, model: nn.Module, context: Context) -> Result | None:
    """Load the finished stage ``name`` of ``folder`` (its full file, never a render record) into
    ``model``; None where no run root holds a readable one. Trains nothing."""
    found = find(folder, f"{name}.pt")
    saved = _read(found, context.device)
    if saved is None or saved.get("left_out"):
        return None
    _load(model, saved, found)
    return Result(**saved["result"])


def _read(path: Path | None, device="cpu") -> dict | None:
    """The saved stage or record at ``path`` (its tensors on ``device``); None for no path or
    an unreadable file (see :func:`sslkit.util.io.load_cached`)."""
    return None if path is None else load_cached(path, keys=("model", "result"), map_location=device,
                                                 weights_only=False)


def _load(model: nn.Module, saved: dict, path: Path) -> None:
    """Load a stage, or a render record with its left-out tensors as NaN (see :func:`render_record`)."""
    left = saved.get("left_out", [])
    if not left:
        model.load_state_dict(saved["model"])
        return
    missing, unexpected = model.load_state_dict(saved["model"], strict=False)
    if sorted(missing) != sorted(left) or unexpected:
        raise ValueError(f"render record {path} does not fit the network (missing {missing}, unexpected {unexpected})")
    state = model.state_dict()
    with torch.no_grad():
        for k in left:
            state[k].fill_(float("nan"))


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


def _checkpoint_every(iters: int) -> int:
    """Every quarter of a stage, at most every 1,000 iterations; a stage of fewer than 100
    iterations (the smoke profile's) only when stopped by the deadline: it takes seconds, and
    a checkpoint of the stand-in's CaffeNet is 228 MB to write."""
    return max(min(1000, iters // 4), 1) if iters >= 100 else iters


def _train_stage(folder: Path, name: str, final: Path, model: nn.Module, context: Context, schedule: Schedule, *,
                 seed: int, hooks, evals: int | None) -> Result:
    ckpt = final.with_suffix(".ckpt")
    if context.force and not training_allowed():
        raise StageMissing(f"force asks to retrain {folder / name}, but training is off (SSLKIT_TRAIN=0)")
    if context.force:
        for p in (final, ckpt):
            p.unlink(missing_ok=True)
    found = None if context.force else holds(folder, f"{name}.pt")
    saved = _read(found, context.device)
    if saved is not None and saved.get("left_out") and not saved["model"]:
        saved = None   # a result-only record (render_record(weights=False)) holds no network to serve
    if saved is not None:
        _load(model, saved, found)
        return Result(**saved["result"])
    if not training_allowed():
        roots = ", ".join(str(root) for root in run_roots())
        raise StageMissing(f"stage {folder / name} is not in the run store ({roots}) and training is off "
                           "(SSLKIT_TRAIN=0, make reproduce TRAIN=0); unset it to train the stage here")
    if context.runtime is not None:
        context.runtime.prepare(model)
    earlier = None if context.force else find(folder, f"{name}.ckpt")
    if earlier is not None and earlier != ckpt and distributed.is_main():   # resume from the store's checkpoint
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(earlier, ckpt)
    distributed.barrier()
    res = train(model, context.data.train, schedule, seed=seed, test=context.data.test, hooks=hooks,
                augment=context.network.augment, eval_every=max(schedule.iters // (evals or context.sizes.evals), 1),
                checkpoint=ckpt, checkpoint_every=_checkpoint_every(schedule.iters), checkpoint_at_end=False,
                param_groups=context.network.param_groups(model), progress=context.progress, desc=name,
                deadline=deadline(), flush_denormal=context.network.flush_denormal, precision=context.precision)
    res.device = device_name(context.device) + (f" x{distributed.world()[1]} processes" if distributed.active() else "")
    if distributed.is_main():
        atomic_torch_save({"model": _as_saved(model.state_dict()), "result": res.as_dict()}, final, compress=True)
        ckpt.unlink(missing_ok=True)
    distributed.barrier()
    return res


def _as_saved(state: dict) -> dict:
    """``state`` with its 0/1 masks (the ``weight_mask`` buffers that freeze the zeros, see
    :mod:`sslkit.sparsity.masks`) as bool, a quarter of their bytes in the store;
    ``load_state_dict`` copies them back into the float buffers."""
    return {k: v.bool() if k.endswith("weight_mask") else v for k, v in state.items()}
