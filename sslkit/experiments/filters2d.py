"""Figure 7(a): a sweep of 2-D-filter-wise SSL strengths on AlexNet (CaffeNet). For every point,
per conv layer, the 2-D filter sparsity (the share of all-zero kernels W[n, c, :, :]) and the
FLOP of 2-D convolutions saved, against the top-1 error, with the baseline's error as a dashed
line. The paper: 30-40% fewer FLOP with no accuracy loss, or the error 1% lower (41.69%)."""
from __future__ import annotations

import time

import pandas as pd

from sslkit import models, pipeline
from sslkit.results import paper
from sslkit.results.claims import WEN, Claim
from sslkit.results.record import ExperimentResult, provenance
from sslkit.sparsity.groups import module_groups, zero_groups
from sslkit.sparsity.lowering import trace
from sslkit.sparsity.regularizers import edge_strength
from sslkit.util import profiles

# headless --jobs: the sweep's points train in separate processes (see sslkit.app.headless)
SWEEP = ("fractions", "strengths")

STRUCTURE = "kernel2d"


def run(model: str = "caffenet10", fractions: list | None = None, strengths: list | None = None, *,
        profile: str = profiles.DEFAULT, seed: int = 0, data_root: str | None = None, device: str | None = None,
        baseline_iters: int | None = None, ssl_iters: int | None = None, finetune_iters: int | None = None,
        mode: str = "proximal", threshold: float = 1e-4, force: bool = False,
        progress: bool = True) -> ExperimentResult:
    """One SSL run with 2-D-filter group Lasso on every conv layer per point of the sweep, each
    from the (cached) baseline and fine-tuned with the zeros frozen; groups weighted by
    sqrt(size), as the authors' CaffeNet solver.

    Args:
        model: ``caffenet10`` (the Imagenette stand-in) or ``caffenet`` (ImageNet).
        fractions: the sweep as calibrated strengths: at point f, each conv layer's strength is
            the one at which the proximal shrinkage alone, over the SSL stage, would zero a share
            f of that layer's 2-D filters of the baseline
            (:func:`sslkit.sparsity.regularizers.edge_strength`); the data gradient keeps some, so the
            learned sparsity is lower. Needs ``mode="proximal"``.
        strengths: the sweep as plain strengths, one for every conv layer (either this or
            ``fractions``).
        profile, seed, data_root, device, force, progress: as everywhere.
        baseline_iters, ssl_iters, finetune_iters: override the profile's schedule sizes.
        mode, threshold: see :class:`sslkit.pipeline.Regularization`.
    Returns:
        Tables ``points`` (the baseline, then one line per point: its strengths, errors, per conv
        layer the 2-D filter sparsity and the FLOP saved, in total and per layer as a share of
        all conv FLOP), ``comparison`` (the paper's claims beside ours) and ``layers`` (the
        sparsity report of every point); figure ``figure7a_2d_filters``.
    """
    sweep = _check(fractions, strengths, mode)
    t0 = time.perf_counter()
    context = pipeline.setup(model, profile, data_root=data_root, device=device, seed=seed, force=force,
                             progress=progress, baseline=baseline_iters, ssl=ssl_iters, finetune=finetune_iters)
    shape = context.network.input_shape
    base = pipeline.baseline(context)
    points = [{"point": "baseline", "fraction": 0.0, "error %": round(100 * base[1].test_error, 2),
               "ssl error %": None, **flop_saved(base[0], shape)}]
    reports = []
    for kind, value in sweep:
        spec = calibrated_spec(context, base[0], value) if kind == "fraction" else {STRUCTURE: value}
        one = pipeline.ssl(context, pipeline.Regularization(spec, weighted=True, mode=mode, threshold=threshold), base)
        strengths_of = spec if kind == "fraction" else {layer.name: spec for layer in trace(one.model, shape)
                                                        if layer.is_conv}
        points.append({"point": f"{kind} {value:g}", "fraction": value if kind == "fraction" else None,
                       "error %": round(100 * one.error, 2), "ssl error %": round(100 * one.ssl_error, 2),
                       **flop_saved(one.model, shape), "wall s": round(one.wall_s, 1),
                       "strengths": "; ".join(f"{k} {v[STRUCTURE]:.4g}" for k, v in strengths_of.items())})
        reports.append(one.report.assign(point=f"{kind} {value:g}"))
    points = pd.DataFrame(points)
    meta = provenance(profile=profile, device=context.device, precision=context.precision_note, data=context.data.description,
                      baselines=context.baselines,
                      wall_s=time.perf_counter() - t0, seed=seed, model=model, sizes=vars(context.sizes),
                      schedule=context.schedule_note(), mode=mode, threshold=threshold,
                      sweep=[f"{k} {v:g}" for k, v in sweep],
                      note="errors are top-1 on the data named above (the Imagenette stand-in is not ImageNet); "
                           "FLOP saved counts the 2-D convolutions of the all-zero kernels, as a share of all "
                           "conv FLOP of the dense network")
    tables = {"points": points, "comparison": comparison(points), "layers": pd.concat(reports, ignore_index=True)}
    return ExperimentResult(f"figure7a_{model}", tables, meta, figures=("figure7a_2d_filters",))


def _check(fractions, strengths, mode) -> list[tuple[str, float]]:
    """The sweep as (kind, value) pairs; a ValueError unless exactly one of the two is given."""
    if (fractions is None) == (strengths is None) or not (fractions or strengths):
        raise ValueError("give the sweep as fractions=[...] (calibrated strengths) or strengths=[...], not both")
    if fractions is not None:
        if mode != "proximal":
            raise ValueError("fractions calibrate the proximal update; use mode='proximal', or give strengths=[...]")
        bad = [f for f in fractions if not 0 < float(f) < 1]
        if bad:
            raise ValueError(f"fractions must lie between 0 and 1 (exclusive), got {bad}")
        return [("fraction", float(f)) for f in fractions]
    bad = [s for s in strengths if not float(s) > 0]
    if bad:
        raise ValueError(f"strengths must be > 0, got {bad}")
    return [("strength", float(s)) for s in strengths]


def calibrated_spec(context: pipeline.Context, base, fraction: float) -> dict:
    """``{conv layer: {"kernel2d": strength}}``: each layer's :func:`edge_strength` for zeroing
    ``fraction`` of its 2-D filters over the SSL stage of ``context`` (divided by the profile's
    strength factor, which :func:`sslkit.pipeline.ssl` multiplies back), rounded to 4 digits."""
    schedule = context.schedule("ssl")
    shrink = sum(schedule.lr_at(t) for t in range(schedule.iters))
    convs = [layer for layer in trace(base, context.network.input_shape) if layer.is_conv]
    lam = {layer.name: edge_strength(layer.module, STRUCTURE, fraction, shrink, weighted=True) / context.sizes.strength_factor
           for layer in convs}
    return {name: {STRUCTURE: float(f"{v:.4g}")} for name, v in lam.items()}


def flop_saved(model, shape: tuple[int, ...]) -> dict:
    """Per conv layer of ``model``: the 2-D filter sparsity %, and the FLOP of the 2-D
    convolutions its all-zero kernels save, as a share of all conv FLOP (``FLOP saved % <layer>``)
    and in total (``FLOP saved %``). A 2-D convolution of an M x K kernel costs
    2 * M * K * (output positions) FLOP whichever kernel it is."""
    convs = [layer for layer in trace(model, shape) if layer.is_conv]
    total = sum(layer.flops for layer in convs)
    out, saved = {}, 0
    for layer in convs:
        zero = zero_groups(layer.module.weight, STRUCTURE, module_groups(layer.module))
        s = 2 * int(zero.sum()) * layer.kernel[0] * layer.kernel[1] * layer.positions
        saved += s
        out[f"2D-filter sparsity % {layer.name}"] = round(100 * float(zero.float().mean()), 2)
        out[f"FLOP saved % {layer.name}"] = round(100 * s / total, 2)
    return {"FLOP saved %": round(100 * saved / total, 2), **out}


def ours(points: pd.DataFrame) -> dict:
    """Our side of the paper's two claims, from a ``points`` table (the baseline first):
    ``baseline`` (its error %), ``no_loss`` (the point saving the most FLOP among those whose
    error is at most the baseline's, or None), ``within`` (how many of the ``swept`` points
    those are) and ``best`` (the point of lowest error, or None)."""
    base, swept = points.iloc[0]["error %"], points.iloc[1:]
    ok = swept[swept["error %"] <= base]
    return {"baseline": base, "swept": len(swept), "within": len(ok),
            "no_loss": ok.loc[ok["FLOP saved %"].idxmax()] if len(ok) else None,
            "best": swept.loc[swept["error %"].idxmin()] if len(swept) else None}


def comparison(points: pd.DataFrame) -> pd.DataFrame:
    """The paper's two claims beside ours: the most FLOP saved at no accuracy loss (an error at
    most the baseline's), and the lowest error with its change from the baseline."""
    claims = paper.FIGURE7A | {"baseline_error": models.get(paper.TABLE4_NETWORK).paper_error}
    mine = ours(points)
    base, best, top = mine["baseline"], mine["best"], mine["no_loss"]
    no_loss = (f"{top['FLOP saved %']:.1f}% ({top['point']}, error {top['error %']:.2f}%)" if top is not None else
               f"none: every point's error is above the baseline's {base:.2f}%")
    return pd.DataFrame([
        {"claim": "baseline top-1 error % (paper: ImageNet; ours: the data in the provenance)",
         "paper": f"{claims['baseline_error']:g}", "ours": f"{base:.2f}"},
        {"claim": "most FLOP of 2-D convolutions saved with no accuracy loss",
         "paper": "{:g}-{:g}%".format(*claims["flop_saved_no_loss"]), "ours": no_loss},
        {"claim": "lowest top-1 error %, and its change from the baseline",
         "paper": f"{claims['best_error']:g} ({claims['best_error'] - claims['baseline_error']:+.2f} pp)",
         "ours": "–" if best is None else f"{best['error %']:.2f} ({best['error %'] - base:+.2f} pp, {best['point']}, "
                                          f"FLOP saved {best['FLOP saved %']:.1f}%)"},
    ])


def claims(result: ExperimentResult) -> list[Claim]:
    """Figure 7(a)'s claims from the sweep's ``points``: the FLOP of 2-D convolutions saved at no
    accuracy loss, and the lowest error's change from the baseline (the stand-in's errors against
    its own baseline); the error with the parameters retained needs ImageNet."""
    points, item = result.tables.get("points"), "Figure 7(a)"
    why = f"the Figure 7(a) notebook (2-D-filter SSL sweep on AlexNet, figures/{result.name}/)"
    base_error = models.get(paper.TABLE4_NETWORK).paper_error
    span = paper.FIGURE7A["flop_saved_no_loss"]
    saved = best = None
    note_saved = note_best = ""
    if points is not None and len(points) > 1:
        mine = ours(points)
        base, top = mine["baseline"], mine["best"]
        saved = float(mine["no_loss"]["FLOP saved %"]) if mine["no_loss"] is not None else 0.0
        note_saved = f"points at or below our baseline's error {base:.2f}%: {mine['within']} of {mine['swept']}"
        best = round(float(top["error %"]) - base, 2)
        note_best = f"{top['point']}: {top['error %']:.2f}% vs our baseline {base:.2f}%"
    return [
        Claim(WEN, item, "2-D-filter SSL", "FLOP saved % with no accuracy loss", paper_value=sum(span) / 2, ours=saved,
              rule="saving", network=result.meta.get("model"), why_not=why,
              note="; ".join(x for x in ("the paper: {:g}-{:g}%".format(*span), note_saved) if x)),
        Claim(WEN, item, "2-D-filter SSL", "lowest top-1 error's change from the baseline, pp",
              paper_value=round(paper.FIGURE7A["best_error"] - base_error, 2), ours=best, rule="error reduction",
              network=result.meta.get("model"), why_not=why,
              note="; ".join(x for x in (f"the paper: {paper.FIGURE7A['best_error']:g}% from {base_error:g}%", note_best) if x)),
        Claim(WEN, item, "AlexNet 5 (shape-wise)", "top-1 error % with the parameters retained",
              paper_value=paper.ALEXNET5_RETAINED_ERROR,
              why_not="ImageNet: an absolute ImageNet error (the stand-in's errors are not comparable)"),
    ]
