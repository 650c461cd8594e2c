"""A network trained from scratch with the authors' baseline solver: the paper's error beside ours."""
from __future__ import annotations

import time

import pandas as pd

from sslkit import pipeline
from sslkit.results.record import ExperimentResult, provenance
from sslkit.util import profiles


def run(model: str, *, profile: str = profiles.DEFAULT, seed: int = 0, data_root: str | None = None,
        device: str | None = None, iters: int | None = None, precision: str | None = None, force: bool = False,
        progress: bool = True) -> ExperimentResult:
    """Train ``model`` from scratch with the authors' solver and report its test error.

    Args:
        model: a network with a record and a baseline solver (``sslkit.models.NETWORKS``).
        profile: ``smoke``, ``quick`` or ``paper`` (schedule sizes: the network's record).
        seed: initialisation and data-order seed.
        data_root: where the data lives (else ``$SSLKIT_DATA``, else the default cache).
        device: ``cpu`` or ``cuda`` (default: CUDA when available).
        iters: override the profile's iteration count.
        precision: ``fp32`` or ``bf16`` (None: the profile's; see :mod:`sslkit.training.runtime`).
        force: retrain even when this parameter set is cached.
        progress: show progress bars.
    Returns:
        An :class:`ExperimentResult` with table ``baseline`` and ``history`` (test error per
        evaluation), and figure ``test_error``.
    """
    t0 = time.perf_counter()
    context = pipeline.setup(model, profile, data_root=data_root, device=device, seed=seed, force=force,
                             progress=progress, precision=precision, baseline=iters)
    net, res = pipeline.baseline(context)
    schedule = context.schedule("baseline")
    table = pd.DataFrame([{
        "network": model, "iterations": schedule.iters, "batch": schedule.batch_size, "lr policy": schedule.policy,
        "paper error %": context.network.paper_error, "our error %": round(100 * res.test_error, 2),
        "train wall s": round(res.wall_s, 1), "trained on": res.device, "precision": context.baselines[context.network.name]["precision"],
        "parameters": sum(p.numel() for p in net.parameters()),
    }])
    meta = provenance(profile=profile, device=context.device, precision=context.precision_note, data=context.data.description,
                      baselines=context.baselines,
                      wall_s=time.perf_counter() - t0, seed=seed, schedule=context.schedule_note(("baseline",)),
                      model=model, paper_error=context.network.paper_error)
    return ExperimentResult(f"baseline_{model}", {"baseline": table, "history": pd.DataFrame(res.history)}, meta,
                            figures=("test_error",))
