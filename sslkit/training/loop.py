"""The training loop: SGD as the authors' Caffe solvers ran it (:mod:`sslkit.training.solver`),
hooks for the SSL stages, bf16 autocast (:mod:`sslkit.training.runtime`), evaluation,
checkpoints and exact resume.

Determinism: every source of randomness in a step (the epoch's shuffle, augmentation,
dropout) is a function of ``(seed, iteration)``, so a run resumed from a checkpoint takes
the same steps as one that was never interrupted.

Under ``torchrun`` (:mod:`sslkit.training.distributed`) each process trains on its share of every
batch through DistributedDataParallel; only rank 0 writes the checkpoint.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from sslkit.training import distributed
from sslkit.training.data import FolderData, TensorData
from sslkit.training.runtime import Runtime
from sslkit.training.solver import Schedule
from sslkit.util.io import atomic_torch_save, load_cached
from sslkit.util.progress import bar as progress_bar


class Hook(Protocol):
    """What a training stage can plug into a step. An object (a regularizer, a freezer)
    implements the methods it needs; :func:`train` calls those it finds, in the order of its
    ``hooks`` list, and skips the others."""

    def loss_term(self, model: nn.Module) -> torch.Tensor:
        """A term added to the data loss (in float32, differentiated by autograd)."""

    def after_backward(self, model: nn.Module) -> None:
        """After backward, before the step (the authors' Caffe code adds the group-Lasso
        subgradient to ``.grad`` here)."""

    def post_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, it: int) -> None:
        """After each step (zeroing weights below a threshold, re-applying masks)."""


def _calls(hooks, name: str) -> list[Callable]:
    """The ``name`` methods of ``hooks`` (one hook or a sequence), in order, skipping absent ones."""
    if hooks is None:
        return []
    found = (getattr(h, name, None) for h in (hooks if isinstance(hooks, (list, tuple)) else [hooks]))
    return [f for f in found if f is not None]


class OutOfTime(RuntimeError):
    """Training stopped at its deadline; its checkpoint holds the last iteration done."""


@dataclass
class Result:
    """What :func:`train` returns: the final test error, the history of evaluations, and
    (set by whoever keeps it) the device that trained it."""

    iters: int
    wall_s: float
    test_error: float | None = None
    history: list[dict] = field(default_factory=list)
    device: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed torch's generators (CPU and CUDA); used before building a model."""
    torch.manual_seed(seed)


@torch.no_grad()
def evaluate(model: nn.Module, data: TensorData | FolderData, batch_size: int = 1000) -> tuple[float, float]:
    """Top-1 error (fraction) and mean cross-entropy of ``model`` on ``data``, in eval mode.

    Raises:
        FloatingPointError: a weight is not finite (training diverged, or the network holds a
            render record's left-out layers, see :func:`sslkit.pipeline.store.render_record`):
            no error is computed through it.
    """
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise FloatingPointError("the network has non-finite weights: its training diverged (lower the lr), or it "
                                 "was loaded from a render record, whose fc layers are left out (NaN)")
    was_training = model.training
    model.eval()
    wrong, loss = 0, 0.0
    for x, y in data.batches(slice(i, i + batch_size) for i in range(0, len(data), batch_size)):
        out = model(x)
        wrong += (out.argmax(1) != y).sum().item()
        loss += F.cross_entropy(out, y, reduction="sum").item()
    model.train(was_training)
    return wrong / len(data), loss / len(data)


def _epoch_order(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).to(device)


def batch_indices(n: int, batch_size: int, seed: int, start: int, iters: int, device="cpu"):
    """The sample indices of iterations ``start`` .. ``iters`` - 1: each epoch a permutation of
    the ``n`` samples drawn from ``(seed, epoch)``, cut into ``n // batch_size`` whole batches
    (one batch of all ``n`` when fewer)."""
    per_epoch, order_epoch, order = max(n // batch_size, 1), -1, None
    for it in range(start, iters):
        epoch, k = divmod(it, per_epoch)
        if epoch != order_epoch:
            order, order_epoch = _epoch_order(n, seed, epoch, device), epoch
        yield order[k * batch_size:(k + 1) * batch_size]


def train(model: nn.Module, data: TensorData, schedule: Schedule, *, seed: int = 0,
          test: TensorData | None = None, hooks: Hook | list[Hook] | None = None,
          augment: Callable | None = None, eval_every: int = 0,
          checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 1000, checkpoint_at_end: bool = True,
          param_groups: list[dict] | None = None, progress: bool = True, desc: str = "train",
          deadline: float | None = None, flush_denormal: bool = False, precision: str = "fp32") -> Result:
    """Train ``model`` in place with SGD + momentum on ``schedule``.

    Args:
        model: the network, already on the device of ``data``.
        data: training tensors, or a :class:`~sslkit.training.data.FolderData` read from disk as it goes
            (see :mod:`sslkit.training.data`).
        schedule: the solver (iterations, lr policy, momentum, weight decay, batch size).
        seed: seeds shuffling, augmentation and dropout, per iteration.
        test: evaluated every ``eval_every`` iterations and at the end (error in the result).
        hooks: a :class:`Hook` or a list of them (extra loss, after-backward, post-step), called
            in order.
        augment: ``(x, generator, part=None) -> x`` applied to each training batch, the
            generator on the data's device and seeded per iteration (e.g.
            :func:`sslkit.training.augment.pad_crop_flip`); under ``torchrun`` ``part`` = (the whole batch's
            size, this process's rows), so that the draws are the whole batch's.
        checkpoint: file to save to every ``checkpoint_every`` iterations and at the end; if it
            exists, training resumes from it (a finished run returns at once).
        checkpoint_at_end: also save the checkpoint after the last iteration; False where the
            caller writes its own final file at once (the stage store: for the stand-in's CaffeNet
            that saves writing 460 MB of weights and momentum per stage).
        param_groups: optimizer parameter groups (default: all parameters); a group's
            ``lr_mult`` and ``decay_mult`` scale the schedule's lr and weight decay (Caffe's
            per-parameter multipliers).
        progress: show a progress bar (:mod:`sslkit.util.progress`).
        desc: the bar's label.
        deadline: a ``time.time()`` after which training saves its checkpoint and raises
            :class:`OutOfTime` (checked after every iteration, by all ranks together when
            several processes train; None: no deadline).
        flush_denormal: treat denormal floats as zero on the CPU while training (they can slow
            a CPU several-fold and change nothing measurable).
        precision: ``fp32``, or ``bf16``: the forward pass and the data loss under bfloat16
            autocast, everything else (weights, gradients, optimizer, hooks) in float32 (see
            :mod:`sslkit.training.runtime`; falls back to fp32 where the device has no native bfloat16).
    Returns:
        A :class:`Result` with the final test error, wall time and evaluation history.
    Raises:
        OutOfTime: the deadline passed before the last iteration.
        ValueError: several processes (``torchrun``) that do not divide the batch.
    """
    loss_terms, after_backward, post_step = (_calls(hooks, n) for n in ("loss_term", "after_backward", "post_step"))
    device = data.device
    autocast = Runtime.resolve(device, precision).autocast
    params = param_groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
    params = [{**g, "weight_decay": schedule.weight_decay * g.get("decay_mult", 1.0)} for g in params]
    opt = torch.optim.SGD(params, lr=schedule.lr, momentum=schedule.momentum,
                          weight_decay=schedule.weight_decay)
    start, history, wall = 0, [], 0.0
    ckpt = Path(checkpoint) if checkpoint else None
    state = None
    if ckpt is not None and ckpt.exists():
        state = load_cached(ckpt, keys=("model", "optimizer", "iter", "history", "wall_s"), map_location=device,
                            weights_only=False)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, history, wall = state["iter"], state["history"], state["wall_s"]

    def save(it: int) -> None:   # every rank calls it at the same iterations; rank 0 writes
        if ckpt is not None and distributed.is_main():
            atomic_torch_save({"iter": it, "model": model.state_dict(), "optimizer": opt.state_dict(),
                          "history": history, "wall_s": wall + time.perf_counter() - t0,
                          "schedule": asdict(schedule), "seed": seed}, ckpt)
        if ckpt is not None:
            distributed.barrier()   # no rank goes on (or resumes) before the checkpoint is there

    n, bs = len(data), schedule.batch_size
    whole = min(bs, n)
    mine = distributed.share(whole)   # this process's part of every batch (all of it for one)
    rank = distributed.world()[0]
    net = distributed.wrap(model)
    batches = data.batches(idx[mine] for idx in batch_indices(n, bs, seed, start, schedule.iters, device))
    t0 = time.perf_counter()
    model.train()
    bar = progress_bar(desc=desc, enabled=progress and rank == 0, initial=start, total=schedule.iters)
    torch.set_flush_denormal(flush_denormal)
    try:
        for it in range(start, schedule.iters):   # the bar is advanced by hand: it closes after the final error
            x, y = next(batches)
            torch.manual_seed(seed * 1_000_003 + it + 7_777_777 * rank)  # dropout (and any other global-RNG use)
            if augment is not None:   # drawn for the whole batch, as one process would
                x = augment(x, torch.Generator(device=device).manual_seed(seed * 7_919 + it),
                            part=(whole, mine) if whole != len(y) else None)
            lr = schedule.lr_at(it)
            for g in opt.param_groups:
                g["lr"] = lr * g.get("lr_mult", 1.0)
            with autocast():
                loss = F.cross_entropy(net(x), y)
            for term in loss_terms:   # in float32, outside the autocast
                loss = loss + term(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for fn in after_backward:
                fn(model)
            opt.step()
            for fn in post_step:
                fn(model, opt, it)
            if it % 100 == 0 and not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss became {loss.item()} at iteration {it}; lower the lr")
            done = it + 1
            bar.update()
            if test is not None and eval_every and done % eval_every == 0 and done < schedule.iters:
                err, tl = evaluate(model, test)
                history.append({"iter": done, "lr": lr, "train_loss": loss.item(), "test_error": err,
                                "test_loss": tl})
                bar.set_postfix(err=f"{err:.4f}")
            if done % checkpoint_every == 0 and done < schedule.iters:
                save(done)
            if deadline is not None and done < schedule.iters and distributed.any_rank(time.time() >= deadline, device):
                save(done)
                raise OutOfTime(f"{desc} stopped at iteration {done} of {schedule.iters}")
        elapsed = wall + time.perf_counter() - t0   # training only, as before the final evaluation
        torch.set_flush_denormal(False)
        if test is not None:   # the final error, also on the bar's last line
            final = evaluate(model, test)
            bar.set_postfix(err=f"{final[0]:.4f}")
    finally:
        torch.set_flush_denormal(False)
        bar.close()
    result = Result(iters=schedule.iters, wall_s=elapsed, history=history)
    if test is not None:
        result.test_error, tl = final
        if not history or history[-1]["iter"] != schedule.iters:
            history.append({"iter": schedule.iters, "lr": schedule.lr_at(max(schedule.iters - 1, 0)),
                            "test_error": result.test_error, "test_loss": tl})
    if start < schedule.iters and checkpoint_at_end:
        save(schedule.iters)
    return result
