"""Does bf16 mixed precision cost accuracy? The same baseline schedule trained in fp32 and in
bf16 (autocast of the forward pass; fp32 weights and optimizer), several seeds each: mean and
spread of the test error per precision, and whether the difference lies within the seeds'
spread. Not a table of the paper: it decides which precision each network trains in."""
from __future__ import annotations

import statistics
import time

import pandas as pd

from sslkit import models, pipeline
from sslkit.results.record import ExperimentResult, provenance
from sslkit.util import profiles

SWEEP = ("seeds",)


def verdict(fp32: list[float], bf16: list[float]) -> str:
    """``within the seed spread`` when the mean errors differ by no more than the larger
    standard deviation of the two (or either has a single seed and they differ by less than
    0.1 pp), else ``bf16 costs more than the seed spread`` / ``bf16 better by more than the
    seed spread``."""
    diff = statistics.fmean(bf16) - statistics.fmean(fp32)
    spreads = [statistics.stdev(v) for v in (fp32, bf16) if len(v) > 1]
    bound = max(spreads) if len(spreads) == 2 else 0.1
    if abs(diff) <= bound:
        return "within the seed spread"
    return "bf16 costs more than the seed spread" if diff > 0 else "bf16 better by more than the seed spread"


def run(networks: dict, *, seeds: list = [0, 1, 2], precisions: list = ["fp32", "bf16"],  # noqa: B006
        profile: str = profiles.DEFAULT, data_root: str | None = None, device: str | None = None,
        force: bool = False, progress: bool = True) -> ExperimentResult:
    """Train each network's baseline in each of ``precisions`` with each of ``seeds``.

    Args:
        networks: ``{network: baseline iterations}``: a short schedule of the profile's baseline
            solver, never longer than the profile's baseline (None: the profile's baseline).
        seeds: initialisation and data-order seeds, one run each.
        precisions: ``fp32`` and ``bf16`` (bf16 falls back to fp32 where the device has none;
            the table says what was used).
        profile, data_root, device, force, progress: as everywhere.
    Returns:
        Tables ``runs`` (one line per network, precision and seed) and ``summary`` (mean ± std
        per network and precision, the difference and its verdict); figure ``precision``.
    """
    if not networks or not seeds:
        raise ValueError("networks and seeds must each name at least one, e.g. {'lenet': None} and [0, 1, 2]")
    t0, lines, notes, data, seen = time.perf_counter(), [], {}, {}, set()
    for model, iters in networks.items():
        longest = models.get(model).profile_sizes(profile).baseline
        iters = longest if iters is None else min(int(iters), longest)
        for precision in precisions:
            for seed in seeds:
                context = pipeline.setup(model, profile, data_root=data_root, device=device, seed=int(seed),
                                         force=force, progress=progress, precision=precision, baseline=iters)
                res = pipeline.baseline_result(context)   # no weights read: a result-only record serves
                schedule = context.schedule("baseline")
                stage = context.baselines[model]
                if (model, stage["stage"]) in seen:
                    continue   # bf16 fell back to fp32: the fp32 seed's own stage, counted once
                seen.add((model, stage["stage"]))
                used = stage["precision"]   # a stage from the store keeps its own
                lines.append({"network": model, "asked": precision, "precision": used, "seed": int(seed),
                              "iterations": schedule.iters, "lr policy": schedule.policy,
                              "error %": round(100 * res.test_error, 2), "train wall s": round(res.wall_s, 1),
                              "img/s": round(schedule.iters * schedule.batch_size / max(res.wall_s, 1e-9))})
                notes[used], data[model] = context.precision_note, context.data.description
    runs = pd.DataFrame(lines)
    summary = []
    for (model, used), group in runs.groupby(["network", "precision"], sort=False):
        errors = group["error %"].tolist()
        summary.append({"network": model, "precision": used, "iterations": int(group["iterations"].iloc[0]),
                        "seeds": len(errors), "mean error %": round(statistics.fmean(errors), 2),
                        "std pp": round(statistics.stdev(errors), 2) if len(errors) > 1 else None,
                        "mean img/s": round(group["img/s"].mean())})
    summary = pd.DataFrame(summary)
    for model in summary["network"].unique():
        by = {p: runs[(runs["network"] == model) & (runs["precision"] == p)]["error %"].tolist() for p in ("fp32", "bf16")}
        if by["fp32"] and by["bf16"]:
            rows = summary["network"] == model
            summary.loc[rows, "bf16 - fp32 pp"] = round(statistics.fmean(by["bf16"]) - statistics.fmean(by["fp32"]), 2)
            summary.loc[rows, "verdict"] = verdict(by["fp32"], by["bf16"])
    meta = provenance(profile=profile, device=context.device, data="; ".join(f"{k}: {v}" for k, v in data.items()),
                      wall_s=time.perf_counter() - t0, precision="; ".join(f"{k}: {v}" for k, v in notes.items()),
                      networks=networks, seeds=[int(s) for s in seeds])
    return ExperimentResult("precision", {"summary": summary, "runs": runs}, meta, figures=("precision",))
