"""Figure 6: depth-wise SSL on a residual network. Group Lasso on whole layers, only the
convs between shortcut endpoints, swept over strengths; blocks whose branch became constant
are removed (the network is physically shallower), then fine-tuned with the zeros frozen.
Each point is an SSL-ResNet-# (layers as the paper counts them: convs and the fc, projection
shortcuts not counted), beside the baselines of the reference networks."""
from __future__ import annotations

import collections
import time

import pandas as pd
import torch.nn as nn

from sslkit import models, pipeline
from sslkit.analysis import timing
from sslkit.compaction.compact import branch_convs, depth, shortcut_layers
from sslkit.results import paper
from sslkit.results.claims import WEN, Claim
from sslkit.results.record import ExperimentResult, provenance
from sslkit.sparsity.lowering import trace
from sslkit.util import profiles

# headless --jobs: the sweep's points train in separate processes (see sslkit.app.headless)
SWEEP = ("strengths",)
PART = {"speed": False, "references": []}   # the timing and the references' baselines are left to the rendering run


def _convs_per_map(model: nn.Module, input_shape: tuple[int, ...], skip: set[str]) -> dict[str, int]:
    """Conv layers with a non-zero weight per output map size (``"32x32"``: count), shortcuts
    (``skip``) not counted."""
    counts = collections.Counter()
    for layer in trace(model, input_shape, kinds=nn.Conv2d):
        if layer.name not in skip and layer.module.weight.detach().any():
            side = int(round(layer.positions ** 0.5))
            counts[f"{side}x{side}"] += 1
    return dict(sorted(counts.items(), key=lambda kv: -int(kv[0].split("x")[0])))


def run(model: str, strengths: list, *, references: list | None = None, profile: str = profiles.DEFAULT, seed: int = 0,
        data_root: str | None = None, device: str | None = None, baseline_iters: int | None = None,
        ssl_iters: int | None = None, finetune_iters: int | None = None, mode: str = "subgradient",
        speed: bool = True, force: bool = False, progress: bool = True) -> ExperimentResult:
    """Depth-wise SSL of ``model`` at each strength in ``strengths``, beside the baselines.

    Args:
        model: a residual network with a record (its blocks as :func:`sslkit.compaction.compact.residual_blocks`
            finds them).
        strengths: group-Lasso strengths, one SSL run each, on every conv between shortcut
            endpoints (a shortened profile multiplies them by its ``strength``).
        references: other networks whose baselines are drawn beside (e.g. a deeper ResNet);
            trained with their own profile sizes.
        profile, seed, data_root, device, force, progress: as everywhere.
        baseline_iters, ssl_iters, finetune_iters: override ``model``'s profile sizes.
        mode: ``subgradient`` (the authors' update: a layer reaches exact zero only after many
            iterations) or ``proximal`` (exact zeros within a short run).
        speed: time each fine-tuned network's forward pass dense vs compacted (``latency``).
    Returns:
        Tables ``points`` (one line per strength: layers, errors, conv layers per map size),
        ``baselines`` (each network's layers and error, the paper's beside), with ``speed``
        ``latency`` (see :func:`sslkit.analysis.timing.end_to_end`), and figure ``figure6_depth``.
    """
    if not strengths:
        raise ValueError("strengths must hold at least one group-Lasso strength, e.g. [0.007]")
    t0 = time.perf_counter()
    options = dict(data_root=data_root, device=device, seed=seed, force=force, progress=progress)
    context = pipeline.setup(model, profile, baseline=baseline_iters, ssl=ssl_iters, finetune=finetune_iters,
                             **options)
    base = pipeline.baseline(context)
    shortcuts = set(shortcut_layers(base[0]))
    baselines = [_baseline_row(context, base)]
    for ref in references or []:
        ref_context = pipeline.setup(ref, profile, **options)
        baselines.append(_baseline_row(ref_context, pipeline.baseline(ref_context)))
        context.baselines.update(ref_context.baselines)
        context.stage_precisions.update(ref_context.stage_precisions)
    points, latency, in_blocks = [], [], branch_convs(base[0])
    for strength in strengths:
        spec = {name: {"depth": strength} for name in in_blocks}
        one = pipeline.ssl(context, pipeline.Regularization(spec, mode=mode), base)
        layers = depth(one.compact)
        points.append({"strength": strength, "strength factor": context.sizes.strength_factor, "layers": layers,
                       "SSL-ResNet": f"SSL-ResNet-{layers}",
                       "our error %": round(100 * one.error, 2), "paper error %": paper.FIGURE6_POINTS.get(layers),
                       "ssl error %": round(100 * one.ssl_error, 2),
                       "compacted error %": round(100 * one.compact_error, 2),
                       "layers predicted by the report": predicted_depth(one.report, shortcuts),
                       **{f"conv layers {k}": v for k, v in _convs_per_map(one.model, context.network.input_shape,
                                                                            shortcuts).items()},
                       "wall s": round(one.wall_s, 1), "trained on": one.trained_on})
        if speed:
            latency.append(timing.end_to_end(f"strength {strength}", one.model, context.network.input_shape, context.device,
                                      profiles.timing(profile)))
    meta = provenance(profile=profile, device=context.device, precision=context.precision_note, data=context.data.description,
                      baselines=context.baselines,
                      wall_s=time.perf_counter() - t0, seed=seed, schedule=context.schedule_note(), model=model,
                      references=references or [], strengths=list(strengths), mode=mode,
                      sizes=vars(context.sizes))
    tables = {"points": pd.DataFrame(points), "baselines": pd.DataFrame(baselines)}
    if latency:
        tables["latency"] = pd.concat(latency, ignore_index=True)
    return ExperimentResult(f"figure6_{model}", tables, meta, figures=("figure6_depth",))


def _baseline_row(context: pipeline.Context, trained: tuple[nn.Module, object]) -> dict:
    net, res = trained
    return {"network": context.network.name, "layers": depth(net), "our error %": round(100 * res.test_error, 2),
            "paper error %": context.network.paper_error, "train wall s": round(res.wall_s, 1),
            "iterations": context.sizes.baseline, "trained on": res.device}


def predicted_depth(report: pd.DataFrame, shortcuts: set[str]) -> int:
    """What :func:`sslkit.compaction.compact.depth` of the compacted network should be: the layers of a
    sparsity report with a weight left, the ``shortcuts`` (layer names) not counted."""
    return int(((report["weights left"] > 0) & ~report["layer"].isin(shortcuts)).sum())



def claims(result: ExperimentResult) -> list[Claim]:
    """Figure 6's numbers and the text's three claims about it, ours from the ``baselines`` and
    ``points`` tables. The claims compare SSL-ResNets with *our* baselines, so each counts only
    where those baselines' errors hold."""
    item, need = "Figure 6", f"the Figure 6 notebook's results (figures/{result.name}/)"
    base, points = result.tables.get("baselines"), result.tables.get("points")
    errors = {} if base is None else dict(zip(base["network"], base["our error %"]))
    r20, r32 = ("ResNet-20", "resnet20"), ("ResNet-32", "resnet32")
    out = []
    for label, net in (r20, r32):
        note = (f"the paper's abstract gives {paper.RESNET20_ABSTRACT_ACCURACY:g}% accuracy "
                f"({100 - paper.RESNET20_ABSTRACT_ACCURACY:.2f}% error), its text {models.get(net).paper_error:g}%"
                if net == "resnet20" else "")
        out.append(Claim(WEN, item, label, "baseline error %", paper_value=models.get(net).paper_error,
                         ours=errors.get(net), rule="error cifar10", error=True, network=net, why_not=need, note=note))
    pts = points if points is not None and len(points) else None
    for layers, err in paper.FIGURE6_POINTS.items():
        mine = None if pts is None else pts[pts["layers"] == layers]["our error %"]
        missing = "" if pts is None else (f"no SSL-ResNet-{layers}: our strengths gave "
                                          + ", ".join(f"SSL-ResNet-{d}" for d in sorted(set(pts["layers"]))))
        out.append(Claim(WEN, item, f"SSL-ResNet-{layers}", "error %", paper_value=err,
                         ours=None if mine is None or mine.empty else float(mine.min()), rule="error cifar10",
                         network="resnet20", gate=((item, r20[0]),), why_not=need, missing=missing))
    out += _depth_claims(pts, errors, item, need)
    return out


def _depth_claims(pts: pd.DataFrame | None, errors: dict, item: str, need: str) -> list[Claim]:
    """The text's claims on the points: a shallower SSL-ResNet beats ResNet-20, SSL-ResNet-18
    beats ResNet-32, and the error falls as more layers are kept (Spearman's rank correlation
    of layers and error below 0, over at least three depths)."""
    r20, r32 = errors.get("resnet20"), errors.get("resnet32")
    gate20, gate32 = ((item, "ResNet-20"),), ((item, "ResNet-20"), (item, "ResNet-32"))
    shallow = better18 = trend = None
    note_shallow = note18 = note_trend = ""
    if pts is not None and r20 is not None:
        below = pts[(pts["layers"] < 20) & (pts["our error %"] <= r20)]
        shallow = float(len(below) > 0)
        best = below.loc[below["layers"].idxmin()] if len(below) else None
        note_shallow = (f"shallowest at or below ResNet-20's {r20:g}%: SSL-ResNet-{int(best['layers'])} at "
                        f"{best['our error %']:g}% (the paper's: SSL-ResNet-{paper.FIGURE6_SHALLOW})"
                        if best is not None else f"no point below 20 layers at or below ResNet-20's {r20:g}%")
    if pts is not None and r32 is not None and (pts["layers"] == 18).any():
        e18 = float(pts[pts["layers"] == 18]["our error %"].min())
        better18, note18 = float(e18 <= r32), f"SSL-ResNet-18 {e18:g}% vs our ResNet-32 {r32:g}%"
    by_depth = None if pts is None else pts.groupby("layers")["our error %"].min()
    if by_depth is not None and len(by_depth) >= 3:
        rho = pd.Series(by_depth.index).corr(pd.Series(by_depth.values), method="spearman")
        trend, note_trend = float(rho < 0), f"Spearman's rho of layers and error over {len(by_depth)} depths: {rho:+.2f}"
    few = "" if by_depth is None else f"our points have {len(by_depth)} depth(s): " + ", ".join(map(str, by_depth.index))
    return [
        Claim(WEN, item, "SSL-ResNet < 20 layers", "at or below ResNet-20's error", paper_value=1.0, ours=shallow,
              rule="claim", gate=gate20, network="resnet20", why_not=need, note=note_shallow),
        Claim(WEN, item, "SSL-ResNet-18 vs ResNet-32", "SSL-ResNet-18 at or below ResNet-32's error", paper_value=1.0,
              ours=better18, rule="claim", gate=gate32, network="resnet20", note=note18,
              why_not=need if r32 is None or pts is None else "",
              missing="" if r32 is None or pts is None else "no SSL-ResNet-18 point; " + few),
        Claim(WEN, item, "trend", "the error falls as more layers are kept", paper_value=1.0, ours=trend, rule="claim",
              gate=gate20, network="resnet20", note=note_trend, why_not=need,
              missing="" if pts is None else "fewer than three depths to rank; " + few),
    ]
