"""SSL runs of one network through the pipeline (:mod:`sslkit.pipeline`), one per strength
setting; with a paper table, the paper's rows beside ours."""
from __future__ import annotations

import time

import pandas as pd

from sslkit import models, pipeline
from sslkit.analysis import timing
from sslkit.results import paper
from sslkit.results.claims import CONSTRUCTION, WEN, Claim, split
from sslkit.results.record import ExperimentResult, provenance
from sslkit.sparsity.stats import sparsity_report
from sslkit.util import profiles

# headless --jobs: the sweep's points train in separate processes (see sslkit.app.headless)
SWEEP = ("runs",)
PART = {"speed": False}   # the timing is left to the rendering run

SPEEDUP = "speedup (1 thread)"  # the report column of measured compact-GEMM speedups


def _ours(column: paper.Column, report: pd.DataFrame) -> str | None:
    """Our value of a paper column, written as the paper writes it (None: not measured)."""
    rep = report[report["kind"] == "conv"] if column.layers == "conv" else report
    if isinstance(column.ours, str):
        if column.ours not in rep:
            return None
        return paper.dashed(rep[column.ours], column.fmt)
    value = column.ours(rep)
    return paper.dashed(value, column.fmt) if isinstance(value, list) else column.fmt.format(value)


def comparison(table: paper.PaperTable, baseline: tuple[float, pd.DataFrame],
               runs: dict[str, tuple[float, pd.DataFrame]]) -> pd.DataFrame:
    """Paper rows beside ours: per paper row, a ``paper`` line and, where we have it, an
    ``ours`` line. The table's first row compares with ``baseline``, the others with the run
    of the same label; each is an (error %, sparsity report) pair."""
    out = []
    for i, prow in enumerate(table.rows):
        line = {"row": prow["row"], "source": "paper", "error %": prow["error"]}
        for col in table.columns:
            if col.key in prow:
                value = prow[col.key]
                line[col.key] = paper.dashed(value, col.paper_fmt) if isinstance(value, list) else \
                    col.paper_fmt.format(value)
        out.append(line)
        ours = baseline if i == 0 else runs.get(prow["row"])
        if ours is None:
            continue
        mine = {"row": prow["row"], "source": "ours", "error %": round(ours[0], 2)}
        for col in table.columns:
            value = _ours(col, ours[1])
            if value is not None:
                mine[col.key] = value
        out.append(mine)
    return pd.DataFrame(out)


def run(model: str | None = None, runs: dict | None = None, *, table: str | None = None,
        profile: str = profiles.DEFAULT, seed: int = 0, data_root: str | None = None, device: str | None = None,
        baseline_iters: int | None = None, ssl_iters: int | None = None, finetune_iters: int | None = None,
        weighted: bool = False, mode: str = "subgradient", threshold: float = 1e-4, speed: bool = True,
        figures: list | None = None, force: bool = False, progress: bool = True) -> ExperimentResult:
    """SSL runs of ``model``, each from the same baseline, optionally beside a paper table.

    Args:
        model: the network (default: the one ``table`` is about).
        runs: ``{label: group-Lasso spec}`` (see :class:`sslkit.pipeline.Regularization`), e.g.
            ``{"LeNet 2": {"filter": 5e-3, "channel": 5e-3}}``; labels matching the table's
            rows put the paper's row beside ours.
        table: the paper table to compare with (``sslkit.results.paper.TABLES``), or None.
        profile, seed, data_root, device, force, progress: as everywhere.
        baseline_iters, ssl_iters, finetune_iters: override the profile's schedule sizes.
        weighted, mode, threshold: see :class:`sslkit.pipeline.Regularization` (a shortened
            profile multiplies the strengths by its ``strength``, recorded in ``runs``).
        speed: measure each conv layer's compact-GEMM speedup on this CPU (1 thread) and the
            end-to-end forward latency of each fine-tuned network dense vs compacted.
        figures: registered figures to draw (default: the table's, e.g. Figure 3 for Table 1).
    Returns:
        Tables ``comparison`` (paper beside ours; only with a table), ``runs`` (one line per
        run: errors, sizes, wall time), ``latency`` (with ``speed``: dense vs compacted forward
        latency, FLOP ratio and efficiency per run, batch and thread count), ``layers`` (per-layer sparsity report of every run)
        and ``kept_constants`` (the zero filters whose channel compaction keeps, as their bias
        could not be folded exactly, and why: their "filters left" count them as removed);
        ``objects['models']`` holds the baseline and each run's fine-tuned network.
    """
    if not runs:
        raise ValueError("runs must name at least one SSL run, e.g. {'LeNet 2': {'filter': 5e-3, 'channel': 5e-3}}")
    paper_table = paper.table(table) if table is not None else None
    model = model or (paper_table.network if paper_table else None)
    if model is None:
        raise ValueError("name the network: model=... (or a paper table, table=...)")
    t0 = time.perf_counter()
    context = pipeline.setup(model, profile, data_root=data_root, device=device, seed=seed, force=force,
                             progress=progress, baseline=baseline_iters, ssl=ssl_iters, finetune=finetune_iters)
    shape = context.network.input_shape
    base = pipeline.baseline(context)
    results, latency = {}, []
    budget = profiles.timing(profile)
    for label, spec in runs.items():
        results[label] = one = pipeline.ssl(context, pipeline.Regularization(spec, weighted=weighted, mode=mode, threshold=threshold), base)
        if speed:
            measured = timing.compact_speedups(one.model, shape, min_run_time=budget.min_run_time)
            one.report[SPEEDUP] = one.report["layer"].map(measured)
            latency.append(timing.end_to_end(label, one.model, shape, context.device, budget))
    runs_table = pd.DataFrame([{
        "row": label, "baseline error %": round(100 * r.baseline_error, 2), "ssl error %": round(100 * r.ssl_error, 2),
        "fine-tuned error %": round(100 * r.error, 2), "compacted error %": round(100 * r.compact_error, 2),
        "parameters": r.parameters, "compacted parameters": r.compact_parameters, "wall s": round(r.wall_s, 1),
        "trained on": r.trained_on,
        "conv speedups (1 thread)": paper.dashed(r.report[SPEEDUP].dropna() if speed else [], "{:.2f}"),
        "spec": str(runs[label]), "strength factor": context.sizes.strength_factor} for label, r in results.items()])
    tables = {}
    if paper_table is not None:
        base_report = sparsity_report(base[0], shape)
        tables["comparison"] = comparison(paper_table, (100 * base[1].test_error, base_report),
                                          {k: (100 * r.error, r.report) for k, r in results.items()})
    tables["runs"] = runs_table
    if latency:
        tables["latency"] = pd.concat(latency, ignore_index=True)
    tables["layers"] = pd.concat([r.report.assign(row=k) for k, r in results.items()], ignore_index=True)
    tables["kept_constants"] = pd.DataFrame([{"row": k, **c} for k, r in results.items() for c in r.kept],
                                            columns=["row", "layer", "channel", "kept because"])
    meta = provenance(profile=profile, device=context.device, precision=context.precision_note, data=context.data.description,
                      baselines=context.baselines,
                      wall_s=time.perf_counter() - t0, seed=seed, schedule=context.schedule_note(), model=model,
                      table=table, sizes=vars(context.sizes),
                      training_wall_s={k: round(r.wall_s, 1) for k, r in results.items()},
                      note="wall_s is this run; training_wall_s is each run's baseline + SSL + fine-tuning "
                           "time when first trained (stages are cached per parameter set)")
    chosen = tuple(figures) if figures is not None else (paper_table.figures if paper_table else ())
    return ExperimentResult(f"{table or 'ssl'}_{model}", tables, meta, figures=chosen,
                            objects={"models": {"baseline": base[0], **{k: r.model for k, r in results.items()}}})


_ITEMS = {"table1": "Table 1", "table2": "Table 2", "mlp": "MLP table", "table3": "Table 3"}
_RULES = {"filters": "count", "channels": "count", "filter_size": "count", "neurons": "count", "flop": "flop",
          "row_sparsity": "sparsity", "column_sparsity": "sparsity", "speedup": "speedup", "dead_pixels": "share"}
_DENSE = {"filters", "channels", "filter_size", "neurons", "flop", "speedup"}   # a baseline's: dense by construction


def _layers(key: str, table: paper.PaperTable, n: int) -> list[str]:
    if table.network == "mlp":
        return ["input", "hidden1", "hidden2", "output"] if key == "neurons" else [f"fc{i + 1}" for i in range(n)]
    return [f"conv{i + 1}" for i in range(n)]


def claims(result: ExperimentResult) -> list[Claim]:
    """Every number of the paper table the result compares with (``meta['table']``), ours read
    from its ``comparison`` table: each row's error, and its per-layer structure, FLOP and
    speedup (gated on the row's error; a baseline's dense counts, 100% FLOP and speedup 1.0
    hold by construction); with Table 3 the text's weight-matrix reductions of ConvNet 2, with
    the MLP table Figure 4(b)'s share of input pixels left unconnected."""
    name = result.meta.get("table")
    if name is None:
        return []
    table = paper.table(name)
    item, data = _ITEMS[name], models.get(table.network).dataset
    comp = result.tables.get("comparison")
    ours = comp[comp["source"] == "ours"].set_index("row") if comp is not None else None
    need = f"the {item} notebook's results (figures/{result.name}/)"
    out = []
    for i, prow in enumerate(table.rows):
        mine = ours.loc[prow["row"]] if ours is not None and prow["row"] in ours.index else None
        out.append(Claim(WEN, item, prow["row"], "error %", paper_value=prow["error"], rule=f"error {data}", error=True,
                         ours=None if mine is None else float(mine["error %"]), why_not=need))
        for col in table.columns:
            if col.key not in prow:
                continue
            got = split(mine[col.key]) if mine is not None and col.key in mine.index else []
            if col.key == "dead_pixels":
                out.append(Claim(WEN, "Figure 4(b)", prow["row"], "% input pixels with no connection",
                                 paper_value=prow[col.key], ours=got[0] if got else None, rule="share",
                                 gate=((item, prow["row"]),), why_not=need))
                continue
            values = prow[col.key]
            dense = i == 0 and col.key in _DENSE
            if dense and col.key == "speedup" and mine is not None:
                got = [1.0] * len(values)   # the baseline against itself
            for layer, p, o in zip(_layers(col.key, table, len(values)), values, got + [None] * len(values)):
                out.append(Claim(WEN, item, prow["row"], col.key.replace("_", " "), layer, p, o, _RULES[col.key],
                                 kind=CONSTRUCTION if dense else "trained", why_not=need))
    for row, values in (paper.TABLE3_SHRINK.items() if name == "table3" else ()):
        mine = ours.loc[row] if ours is not None and row in ours.index else None
        rows, cols = (split(mine["row_sparsity"]), split(mine["column_sparsity"])) if mine is not None else ([], [])
        got = [round(100 * (1 - (1 - r / 100) * (1 - c / 100)), 1) for r, c in zip(rows, cols)]
        for j, p in enumerate(values):
            out.append(Claim(WEN, item, row, "weight matrix size reduced by %", f"conv{j + 1}", p,
                             got[j] if got else None, "sparsity", why_not=need,
                             note="1 − (1 − row sparsity)(1 − column sparsity)"))
    return out
