"""Table 4 from our own training: CaffeNet trained with l1 and with SSL (filter + shape group
Lasso, groups weighted by sqrt(size)) from one baseline, fine-tuned with zeros frozen, and the
speed of the sparsity each *learned*: CSR vs dense GEMM for l1 rows, the compact GEMM of the
non-zero rows and columns vs dense for SSL rows, at CaffeNet's 227x227 shapes, on the CPU at
the profile's thread counts (Figure 7(c)) and on the GPU when there is one."""
from __future__ import annotations

import time

import pandas as pd
import torch

from sslkit import models, pipeline
from sslkit.analysis import timing
from sslkit.results import paper
from sslkit.results.record import ExperimentResult, provenance
from sslkit.sparsity.stats import sparsity_report
from sslkit.training import distributed
from sslkit.training.runtime import device_name
from sslkit.util import profiles
from sslkit.util.progress import bar

# headless --jobs: the sweep's points train in separate processes (see sslkit.app.headless)
SWEEP = ("runs",)
PART = {"threads": [1]}   # one CPU thread count timed, the others by the rendering run

METHODS = ["gemm: dense", "gemm: csr", "gemm: compact"]


def method_of(spec: dict) -> str:
    """``l1`` for a spec of the non-structured penalty only (``{"l1": s}``, or per layer
    ``{layer: {"l1": s}}``), else ``ssl``."""
    structures = set().union(*(v if isinstance(v, dict) else {k} for k, v in spec.items())) if spec else set()
    return "l1" if structures == {"l1"} else "ssl"


def time_learned(model: torch.nn.Module, shape: tuple[int, ...], *, threads=(1,), device: str = "cpu",
                 min_run_time: float = 0.2) -> pd.DataFrame:
    """Dense, CSR and compact GEMM of every conv layer of ``model`` with its own (learned)
    weights at input ``shape``: on the CPU at each of ``threads``, or once on a CUDA ``device``.

    Returns:
        One line per (layer, threads): :func:`sslkit.analysis.timing.time_layer`'s times and spreads with
        :func:`sslkit.analysis.timing.speedups`, and the platform (``CPU, n threads`` or the GPU's name).
    """
    lines = []
    cuda = torch.device(device).type == "cuda"
    for layer in timing.conv_layers(model, shape):
        w = layer.module.weight.detach().to(device)
        for t in ((1,) if cuda else threads):
            line = timing.time_layer(layer, w, threads=t, min_run_time=min_run_time, methods=METHODS)
            line["platform"] = device_name(device) if cuda else f"CPU, {t} thread{'s' * (t > 1)}"
            lines.append({**line, **timing.speedups(line)})
    return pd.DataFrame(lines)


def comparison(base_error: float, rows: dict, reports: dict, speed: pd.DataFrame) -> pd.DataFrame:
    """Paper beside ours, per Table 4 row and statistic: a ``paper`` and an ``ours`` column, each
    the per-conv values written the paper's way (``"0–63.2–76.9–84.7–80.7"``). ``rows``:
    ``{paper row: (method, error %)}``; ``reports``: their sparsity reports; ``speed``: the
    timing lines of every row (column ``table4 row``)."""
    out = [{"table4 row": 0, "method": "baseline", "statistic": "top-1 error % (paper: ImageNet)",
            "paper": models.get(paper.TABLE4_NETWORK).paper_error, "ours": round(base_error, 2)}]
    for r, (method, err) in rows.items():
        prow = paper.table4_row(r) if r in {p["row"] for p in paper.TABLE4} else None
        rep = reports[r][reports[r]["kind"] == "conv"].set_index("layer")
        layers = list(rep.index)
        out.append({"table4 row": r, "method": method, "statistic": "top-1 error %",
                    "paper": prow["error"] if prow else None, "ours": round(err, 2)})
        stats = [("sparsity", "element sparsity %")] if method == "l1" else \
            [("column_sparsity", "column sparsity %"), ("row_sparsity", "row sparsity %")]
        for key, column in stats:
            out.append({"table4 row": r, "method": method, "statistic": column,
                        "paper": paper.dashed(prow[key], "{:g}") if prow and key in prow else None,
                        "ours": paper.dashed([rep.loc[name, column] for name in layers], "{:.1f}")})
        mine = speed[speed["table4 row"] == r]
        for platform, part in mine.groupby("platform", sort=False):
            if platform.startswith("CPU") and not platform.startswith("CPU, 1 thread"):
                continue
            kind = "CPU" if platform.startswith("CPU") else "GPU"
            values = part.set_index("layer")[timing.answering_speedup(method)]
            out.append({"table4 row": r, "method": method, "statistic": f"{kind} speedup ({platform})",
                        "paper": paper.dashed(prow[f"{kind.lower()}_speedup"], "{:.2f}") if prow else None,
                        "ours": paper.dashed([values.get(name, float("inf")) for name in layers], "{:.2f}")})
    return pd.DataFrame(out)


def run(model: str = "caffenet10", runs: dict | None = None, *, profile: str = profiles.DEFAULT, seed: int = 0,
        data_root: str | None = None, device: str | None = None, baseline_iters: int | None = None,
        ssl_iters: int | None = None, finetune_iters: int | None = None, mode: str = "subgradient",
        threshold: float = 1e-4, threads: list | None = None,
        figures: list | None = None, force: bool = False, progress: bool = True) -> ExperimentResult:
    """Table 4's rows from our own training of ``model``.

    Args:
        model: ``caffenet10`` (the Imagenette stand-in, 10 classes) or ``caffenet`` (ImageNet).
        runs: ``{paper row: group-Lasso spec}``, e.g. ``{1: {"l1": 1e-5}, 2: {"filter": 1e-3,
            "shape": 1e-3}}``: a spec of ``l1`` alone is an l1 row (CSR timed), any other an SSL
            row (compact GEMM timed); groups weighted by sqrt(size), as the authors' CaffeNet
            solver. Rows 1-5 put the paper's row beside ours.
        profile, seed, data_root, device, force, progress: as everywhere.
        baseline_iters, ssl_iters, finetune_iters: override the profile's schedule sizes.
        mode, threshold: see :class:`sslkit.pipeline.Regularization`.
        threads: CPU thread counts to time (default: the profile's; Figure 7(c)).
        figures: registered figures to draw (default: Figure 7(c)).
    Returns:
        Tables ``comparison`` (paper beside ours per row and statistic), ``runs`` (errors, sizes,
        wall time per row), ``speed`` (per row, layer and platform: times, spreads, speedups)
        and ``layers`` (the sparsity report of every row).
    """
    if not runs:
        raise ValueError("runs must name at least one row, e.g. {1: {'l1': 1e-5}, 2: {'filter': 1e-3, 'shape': 1e-3}}")
    runs = {int(k): v for k, v in runs.items()}
    methods = {r: method_of(spec) for r, spec in runs.items()}
    t0 = time.perf_counter()
    context = pipeline.setup(model, profile, data_root=data_root, device=device, seed=seed, force=force,
                             progress=progress, baseline=baseline_iters, ssl=ssl_iters, finetune=finetune_iters)
    shape = context.network.input_shape
    budget = profiles.timing(profile)
    threads = tuple(threads or budget.threads)
    base = pipeline.baseline(context)
    results = {r: pipeline.ssl(context, pipeline.Regularization(spec, weighted=True, mode=mode, threshold=threshold), base)
               for r, spec in runs.items()}
    if not distributed.is_main():   # under torchrun: the other ranks only train
        return ExperimentResult(f"table4_{model}", {}, {})
    speed = []
    for r, one in bar(list(results.items()), desc="timing", enabled=progress):
        platforms = [("cpu", threads)] + ([(str(context.device), (1,))] if context.device.type == "cuda" else [])
        for dev, ts in platforms:
            speed.append(time_learned(one.model, shape, threads=ts, device=dev,
                                      min_run_time=budget.min_run_time).assign(**{"table4 row": r,
                                                                                 "method": methods[r]}))
    speed = pd.concat(speed, ignore_index=True)
    reports = {r: one.report for r, one in results.items()}
    rows = {r: (methods[r], 100 * one.error) for r, one in results.items()}
    convs = {r: one.report[one.report["kind"] == "conv"] for r, one in results.items()}
    runs_table = pd.DataFrame([{
        "table4 row": r, "method": methods[r], "baseline error %": round(100 * one.baseline_error, 2),
        "ssl error %": round(100 * one.ssl_error, 2), "fine-tuned error %": round(100 * one.error, 2),
        "compacted error %": round(100 * one.compact_error, 2),
        "FLOP left % (conv)": round(100 * convs[r]["FLOP left"].sum() / convs[r]["FLOP"].sum(), 1),
        "wall s": round(one.wall_s, 1), "trained on": one.trained_on, "spec": str(runs[r]),
        "strength factor": context.sizes.strength} for r, one in results.items()])
    tables = {"comparison": comparison(100 * base[1].test_error, rows, reports, speed), "runs": runs_table,
              "speed": speed,
              "layers": pd.concat([sparsity_report(base[0], shape).assign(**{"table4 row": 0})] +
                                  [rep.assign(**{"table4 row": r}) for r, rep in reports.items()], ignore_index=True)}
    meta = provenance(profile=profile, device=context.device, precision=context.runtime.note, data=context.data.description,
                      wall_s=time.perf_counter() - t0, seed=seed, model=model, sizes=vars(context.sizes),
                      schedule=context.schedule_note(), threads=list(threads), mode=mode,
                      timing_shape=list(shape), training_wall_s={str(r): round(one.wall_s, 1) for r, one in results.items()},
                      note="errors are top-1 on the data named above (the Imagenette stand-in is not "
                           "ImageNet); speedups are of the lowered GEMM with the learned weights at 227x227, "
                           "CSR for l1 rows and the compact GEMM for SSL rows")
    return ExperimentResult(f"table4_{model}", tables, meta,
                            figures=tuple(figures) if figures is not None else ("figure7c_platforms",),
                            objects={"models": {"baseline": base[0], **{str(r): one.model for r, one in results.items()}}})
