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
from sslkit.results.claims import WEN, Claim, split
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
        "strength factor": context.sizes.strength_factor} for r, one in results.items()])
    tables = {"comparison": comparison(100 * base[1].test_error, rows, reports, speed), "runs": runs_table,
              "speed": speed,
              "layers": pd.concat([sparsity_report(base[0], shape).assign(**{"table4 row": 0})] +
                                  [rep.assign(**{"table4 row": r}) for r, rep in reports.items()], ignore_index=True)}
    meta = provenance(profile=profile, device=context.device, precision=context.precision_note, data=context.data.description,
                      baselines=context.baselines,
                      wall_s=time.perf_counter() - t0, seed=seed, model=model, sizes=vars(context.sizes),
                      schedule=context.schedule_note(), threads=list(threads), mode=mode,
                      timing_shape=list(shape), training_wall_s={str(r): round(one.wall_s, 1) for r, one in results.items()},
                      note="errors are top-1 on the data named above (the Imagenette stand-in is not "
                           "ImageNet); speedups are of the lowered GEMM with the learned weights at 227x227, "
                           "CSR for l1 rows and the compact GEMM for SSL rows")
    return ExperimentResult(f"table4_{model}", tables, meta,
                            figures=tuple(figures) if figures is not None else ("figure7c_platforms",),
                            objects={"models": {"baseline": base[0], **{str(r): one.model for r, one in results.items()}}})


def _trained(table: pd.DataFrame | None, row: int, statistic: str) -> list[float]:
    """Our values of the statistic starting ``statistic`` of row ``row`` in a ``comparison``
    table ([] when absent)."""
    if table is None:
        return []
    sel = table[(table["table4 row"] == row) & table["statistic"].astype(str).str.startswith(statistic)]
    return split(sel["ours"].iloc[0]) if not sel.empty else []


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def claims(result: ExperimentResult) -> list[Claim]:
    """Table 4's numbers from our own training (errors over the baseline, sparsities, the
    learned sparsity's speedups, gated on each row's error), and the text's claims about these
    rows: AlexNet 1's fine-tuning recovery, AlexNet 5's 1.4x on CPU and GPU (beside Figure 7(a)),
    and Figure 7(c)'s "SSL about 2x l1 on CPU, more so at fewer threads" and "about 3x on GPU"."""
    comp, runs, speed = (result.tables.get(k) for k in ("comparison", "runs", "speed"))
    item, need = "Table 4", f"AlexNet trained with l1 / SSL (the Table 4 stand-in notebook, figures/{result.name}/)"
    imagenet = result.meta.get("model") == "caffenet"
    base_paper = models.get(paper.TABLE4_NETWORK).paper_error
    base = _trained(comp, 0, "top-1 error")
    out = [Claim(WEN, item, "baseline CaffeNet", "top-1 error %", paper_value=base_paper,
                 ours=base[0] if base and imagenet else None, rule="error imagenet", network="caffenet",
                 why_not="CaffeNet trained on ImageNet (the stand-in's own baseline error, not comparable, is in "
                         "its comparison table)" if comp is not None else need)]
    label = {p["row"]: f"AlexNet {p['row']} ({p['method']})" for p in paper.TABLE4}
    net = result.meta.get("model", "caffenet10")
    for prow in paper.TABLE4:
        r, row = prow["row"], label[prow["row"]]
        why = "Han et al.'s result, cited by the paper for comparison" if prow["method"] == "pruning" else need
        err = _trained(comp, r, "top-1 error")
        out.append(Claim(WEN, item, row, "top-1 error increase over the baseline, pp",
                         paper_value=round(prow["error"] - base_paper, 2), error=True, network=net, why_not=why,
                         ours=round(err[0] - base[0], 2) if err and base else None, rule="error increase"))
        for key in ("sparsity", "column_sparsity", "row_sparsity"):
            stat = "element sparsity" if key == "sparsity" else key.replace("_", " ")
            got = _trained(comp, r, stat)
            for j, p in enumerate(prow.get(key, [])):
                out.append(Claim(WEN, item, row, key.replace("_", " ") + " %", f"conv{j + 1}", p,
                                 got[j] if got else None, "sparsity", network=net, why_not=why))
        for platform in ("cpu", "gpu"):
            got = _trained(comp, r, f"{platform.upper()} speedup" + (" (CPU, 1 thread)" if platform == "cpu" else ""))
            wants = "a GPU" if platform == "gpu" else why
            for j, p in enumerate(prow.get(f"{platform}_speedup", [])):
                out.append(Claim(WEN, item, row, f"{platform.upper()} speedup, learned sparsity", f"conv{j + 1}", p,
                                 got[j] if got else None, "speedup", network=net, why_not=wants))
            if prow["method"] in paper.TABLE4_MEANS and r in (1, 2):
                out.append(Claim(WEN, item, row, f"average {platform.upper()} speedup, learned sparsity", "conv1-5",
                                 paper.TABLE4_MEANS[prow["method"]][platform], _mean(got), "speedup", network=net,
                                 why_not=wants))
    return out + _text_claims(comp, runs, speed, label, net, need)


def _text_claims(comp, runs, speed, label: dict, net: str, need: str) -> list[Claim]:
    """The text's claims on Table 4's rows (see :func:`claims`)."""
    out = []
    one = None if runs is None else runs[runs["table4 row"] == 1]
    recovered = None if one is None or one.empty else round(float(one["ssl error %"].iloc[0] - one["fine-tuned error %"].iloc[0]), 2)
    out.append(Claim(WEN, "Table 4", label[1], "error recovered by fine-tuning, pp", paper_value=paper.ALEXNET1_RECOVERED,
                     ours=recovered, rule="saving", gate=(("Table 4", label[1]),), network=net, why_not=need,
                     note="l1 row's error after regularization minus after fine-tuning with zeros frozen"))
    for platform in ("cpu", "gpu"):
        got = _trained(comp, 5, f"{platform.upper()} speedup" + (" (CPU, 1 thread)" if platform == "cpu" else ""))
        out.append(Claim(WEN, "Figure 7(a)", "AlexNet 5 (shape-wise)", f"average {platform.upper()} speedup with no loss",
                         "conv1-5", paper.ALEXNET5_SPEEDUP, _mean(got), "speedup", gate=(("Table 4", label[5]),),
                         network=net, why_not=need if platform == "cpu" else "a GPU"))
    ratios = {}
    if speed is not None:
        for platform, part in speed[speed["platform"].astype(str).str.startswith("CPU")].groupby("platform", sort=False):
            means = {r: part[part["table4 row"] == r][timing.answering_speedup(m)].mean() for r, m in ((1, "l1"), (2, "ssl"))}
            if all(pd.notna(v) for v in means.values()):
                ratios[int(str(platform).split(",")[1].split()[0])] = round(means[2] / means[1], 2)
    gates = (("Table 4", label[1]), ("Table 4", label[2]))
    trend = None if len(ratios) < 2 else float(ratios[min(ratios)] >= ratios[max(ratios)])
    note = "; ".join(f"{t} thread{'s' * (t > 1)}: SSL / l1 = {v:g}x" for t, v in sorted(ratios.items()))
    out.append(Claim(WEN, "Figure 7(c)", "SSL vs l1", "SSL's mean CPU speedup over l1's (1 thread)",
                     paper_value=paper.FIGURE7C["ssl_over_l1"], ours=ratios.get(1), rule="saving", gate=gates,
                     network=net, why_not=need, note=note))
    out.append(Claim(WEN, "Figure 7(c)", "SSL vs l1", "SSL's advantage over l1 grows at fewer threads",
                     paper_value=1.0, ours=trend, rule="claim", gate=gates, network=net, note=note,
                     why_not=need if speed is None else "timings at one thread count only"))
    gpu = _trained(comp, 2, "GPU speedup")
    out.append(Claim(WEN, "Figure 7(c)", "SSL vs l1", "SSL's mean GPU speedup (AlexNet 2)",
                     paper_value=paper.FIGURE7C["ssl_gpu"], ours=_mean(gpu), rule="speedup", gate=(("Table 4", label[2]),),
                     network=net, why_not="a GPU (cuBLAS vs the compact GEMM on AlexNet 2's learned sparsity)"))
    return out
