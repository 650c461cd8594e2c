"""Accuracy-FLOP trade-off curves: a sweep of group-Lasso strengths from the cached baseline,
test error against the FLOP left (per layer and in total) with the paper's rows marked, and the
table rows picked from the curve: at or below the paper's FLOP in every layer, at an error no
worse than the paper's + ``margin``; the picked rows rerun with several seeds (mean ± std)."""
from __future__ import annotations

import time

import pandas as pd

from sslkit import pipeline
from sslkit.results import paper
from sslkit.results.record import ExperimentResult, provenance
from sslkit.util import profiles

SEEDS = [0, 1, 2]   # the converged and paper profiles' default seeds for the picked rows


def run(sweeps: dict, *, margin: float = 0.2, seeds: list | None = None, profile: str = profiles.DEFAULT, seed: int = 0,
        data_root: str | None = None, device: str | None = None, weighted: bool = False, mode: str = "subgradient",
        threshold: float = 1e-4, force: bool = False, progress: bool = True) -> ExperimentResult:
    """One SSL run per strength of each sweep, and the paper's rows picked from the curves.

    Args:
        sweeps: ``{paper table: {"spec": group-Lasso spec at strength 1, "strengths": [...]}}``
            (tables of :data:`sslkit.results.paper.TABLES`); each point's spec is the spec times one
            strength, so a point equal to a table notebook's row shares its cached run.
        margin: a picked row's error may exceed the paper's by this many pp.
        seeds: the seeds the picked rows run with (default: ``[seed]``; the converged and paper profiles:
            0, 1, 2). Other seeds train their own baseline.
        profile, seed, data_root, device, force, progress: as everywhere.
        weighted, mode, threshold: see :class:`sslkit.pipeline.Regularization`.
    Returns:
        Tables ``points`` (per sweep and strength: error and FLOP left per layer and in
        total), ``picked`` (per paper row: the paper beside the point picked, and whether it
        meets the FLOP and error bounds, or by how much it falls short) and ``seeds`` (the
        picked points' error and total FLOP, mean ± std over ``seeds``); figure ``tradeoff``.
    """
    _check(sweeps, margin)
    seeds = [int(s) for s in (seeds or (SEEDS if profile in ("converged", "paper") else [seed]))]
    t0 = time.perf_counter()
    points, picked, repeats, meta_data, schedules, notes = [], [], [], {}, {}, {}
    for name, sweep in sweeps.items():
        table = paper.table(name)
        layers = "conv" if next(c for c in table.columns if c.key == "flop").layers == "conv" else "all"
        strengths = [float(s) for s in sweep["strengths"]]
        context = _context(table.network, profile, seed, data_root, device, force, progress)
        base = pipeline.baseline(context)

        def trained(ctx, base, s):   # the sweep's spec at strength s, from baseline ``base``
            spec = pipeline.scale_spec(sweep["spec"], s)
            return pipeline.ssl(ctx, pipeline.Regularization(spec, weighted=weighted, mode=mode, threshold=threshold), base)
        mine = [_point(name, s, seed, trained(context, base, s), layers) for s in strengths]
        points += mine
        rows = [pick(prow, mine, margin) for prow in table.rows[1:]]
        picked += rows
        for row in rows:
            for sd in seeds:
                if sd == seed:
                    repeats.append(next(p for p in mine if p["strength"] == row["strength"]) | {"row": row["row"]})
                    continue
                ctx = _context(table.network, profile, sd, data_root, device, force, progress)
                one = trained(ctx, pipeline.baseline(ctx), row["strength"])
                context.stage_precisions.update(ctx.stage_precisions)   # for the sweep's precision note
                repeats.append(_point(name, row["strength"], sd, one, layers) | {"row": row["row"]})
        meta_data[name], schedules[name] = context.data.description, context.schedule_note()
        notes[name] = context.precision_note
    points = pd.DataFrame(points).drop(columns="dense FLOP")
    meta = provenance(profile=profile, device=context.device, precision="; ".join(f"{k}: {v}" for k, v in notes.items()),
                      data="; ".join(f"{k}: {v}" for k, v in meta_data.items()),
                      wall_s=time.perf_counter() - t0, seed=seed, seeds=seeds, schedule=schedules, sweeps=sweeps,
                      margin_pp=margin,
                      rule=f"picked: FLOP left at or below the paper's in every layer and error at most the paper's "
                           f"+ {margin:g} pp, the lowest error among those (then the lowest total FLOP); with none, "
                           f"the point nearest to both bounds, and by how much it falls short")
    tables = {"points": points, "picked": pd.DataFrame(picked),
              "seeds": seed_table(pd.DataFrame(repeats).drop(columns="dense FLOP"))}
    return ExperimentResult("tradeoff", tables, meta, figures=("tradeoff",))


def _check(sweeps: dict, margin: float) -> None:
    if not sweeps:
        raise ValueError("sweeps must name at least one paper table, e.g. "
                         "{'table1': {'spec': {'filter': 1, 'channel': 1}, 'strengths': [0.005, 0.01]}}")
    for name, sweep in sweeps.items():
        paper.table(name)
        if not isinstance(sweep, dict) or set(sweep) != {"spec", "strengths"} or not sweep["strengths"]:
            raise ValueError(f"sweeps[{name!r}] must be {{'spec': {{...}}, 'strengths': [...]}} with at least one "
                             f"strength, got {sweep!r}")
    if margin < 0:
        raise ValueError(f"margin must be at least 0, got {margin}")


def _context(network, profile, seed, data_root, device, force, progress) -> pipeline.Context:
    return pipeline.setup(network, profile, data_root=data_root, device=device, seed=seed, force=force,
                          progress=progress)


def _point(table: str, strength: float, seed: int, one: pipeline.SSLRun, layers: str) -> dict:
    """One sweep point: error and FLOP left per layer (conv layers or all) and in total."""
    rep = one.report[one.report["kind"] == "conv"] if layers == "conv" else one.report
    flop = dict(zip(rep["layer"], rep["FLOP %"].astype(float)))
    return {"table": table, "strength": strength, "seed": seed, "error %": round(100 * one.error, 2),
            "total FLOP %": round(100 * rep["FLOP left"].sum() / rep["FLOP"].sum(), 2),
            **{f"FLOP % {k}": v for k, v in flop.items()}, "dense FLOP": dict(zip(rep["layer"], rep["FLOP"]))}


def pick(prow: dict, points: list[dict], margin: float) -> dict:
    """The point of ``points`` that stands for the paper row ``prow`` (the rule is in the
    result's provenance): the lowest error among the points within both bounds; else the point
    with the least FLOP excess (the largest ratio of ours over the paper's, per layer), then
    the least error excess."""
    bound = prow["error"] + margin
    layers = [k[len("FLOP % "):] for k in points[0] if k.startswith("FLOP % ")]

    def excess(p):   # how far over the paper's FLOP the worst layer is (1: at it)
        return max(p[f"FLOP % {k}"] / v for k, v in zip(layers, prow["flop"]))

    within = [p for p in points if excess(p) <= 1 and p["error %"] <= bound]
    if within:
        best = min(within, key=lambda p: (p["error %"], p["total FLOP %"]))
    else:
        best = min(points, key=lambda p: (max(excess(p), 1), max(p["error %"] - bound, 0)))
    dense = best["dense FLOP"]
    paper_total = sum(v / 100 * dense[k] for k, v in zip(layers, prow["flop"])) / sum(dense.values()) * 100
    over = [f"{k} {best[f'FLOP % {k}']:.3g}% > {v:g}%" for k, v in zip(layers, prow["flop"])
            if best[f"FLOP % {k}"] > v]
    short = "; ".join(over + ([f"error {best['error %'] - bound:+.2f} pp over the bound"]
                              if best["error %"] > bound else []))
    return {"row": prow["row"], "paper error %": prow["error"], "paper FLOP %": paper.dashed(prow["flop"]),
            "paper total FLOP %": round(paper_total, 2), "strength": best["strength"], "error %": best["error %"],
            "FLOP %": paper.dashed([best[f"FLOP % {k}"] for k in layers], "{:.3g}"),
            "total FLOP %": best["total FLOP %"], "meets": not short, "falls short by": short}


def seed_table(repeats: pd.DataFrame) -> pd.DataFrame:
    """Per picked row: the seeds run, error and total FLOP left as mean ± std (std over seeds,
    n - 1 in the denominator; blank for one seed)."""
    rows = []
    for (table, row), part in repeats.groupby(["table", "row"], sort=False):
        n = len(part)
        std = (lambda c: f" ± {part[c].std():.2f}" if n > 1 else "")
        rows.append({"table": table, "row": row, "strength": part["strength"].iloc[0],
                     "seeds": ", ".join(str(s) for s in part["seed"]), "n": n,
                     "error %": f"{part['error %'].mean():.2f}{std('error %')}",
                     "total FLOP %": f"{part['total FLOP %'].mean():.2f}{std('total FLOP %')}"})
    return pd.DataFrame(rows)
