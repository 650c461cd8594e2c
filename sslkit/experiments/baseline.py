"""A network trained with the authors' baseline recipe: the paper's error beside ours."""
from __future__ import annotations

import time

import pandas as pd

from .. import paper, profiles
from ..results import ExperimentResult, provenance
from . import _stages as S


def run(model: str = "lenet", *, profile: str = "quick", seed: int = 0, data_root=None,
        device: str | None = None, iters: int | None = None, force: bool = False,
        progress: bool = True) -> ExperimentResult:
    """Train ``model`` from scratch with the authors' solver and report its test error.

    Args:
        model: ``lenet``, ``mlp``, ``convnet``, ``resnet20`` or ``resnet32``.
        profile: ``smoke``, ``quick`` or ``paper`` (schedule sizes, see :mod:`sslkit.profiles`).
        seed: initialisation and data-order seed.
        data_root: where the data lives (else ``$SSLKIT_DATA``, else the default cache).
        device: ``cpu`` or ``cuda`` (default: CUDA when available).
        iters: override the profile's iteration count.
        force: retrain even when this parameter set is cached.
        progress: show progress bars.
    Returns:
        An :class:`ExperimentResult` with table ``baseline`` and ``history`` (test error per
        evaluation).
    """
    if model not in S.RECIPES:
        raise ValueError(f"model must be one of {sorted(S.RECIPES)}, got {model!r}")
    t0 = time.perf_counter()
    dev = S.resolve_device(device)
    sizes = profiles.sizes(profile, S.PROFILE_KEY[model], baseline=iters)
    train, test, data_desc = S.load(model, sizes, data_root, dev)
    net, res = S.baseline(model, sizes, train, test, data_desc, seed=seed, force=force, progress=progress)
    sched = S.schedule(model, sizes["baseline"])
    table = pd.DataFrame([{
        "network": model, "iterations": sched.iters, "batch": sched.batch_size, "lr policy": sched.policy,
        "paper error %": paper.baseline_error(model), "our error %": round(100 * res.test_error, 2),
        "train wall s": round(res.wall_s, 1),
        "parameters": sum(p.numel() for p in net.parameters()),
    }])
    history = pd.DataFrame(res.history)
    meta = provenance(profile=profile, device=dev, data=data_desc, wall_s=time.perf_counter() - t0,
                      seed=seed, model=model)
    return ExperimentResult(f"baseline_{model}", {"baseline": table, "history": history}, meta)


def plot(result: ExperimentResult) -> dict:
    """Test error against iteration, with the paper's final error as a line."""
    import matplotlib.pyplot as plt

    h = result.tables["history"]
    model = result.meta["model"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(h["iter"], 100 * h["test_error"], marker="o", label="ours")
    ax.axhline(paper.baseline_error(model), color="k", ls="--", lw=1, label="paper")
    ax.set(xlabel="iteration", ylabel="test error %", title=f"{model} baseline ({result.meta['profile']})")
    ax.legend()
    fig.tight_layout()
    return {"test_error": fig}
