"""The reproduction report: every number of both papers, ours beside it, and a verdict.

    python -m sslkit report                 # figures/REPORT.md from the result files in figures/

Each number of the papers (``sslkit.results.paper`` and the networks' records) is looked up in the
published results (``figures/<experiment>/*.csv`` and their ``provenance.json``), never typed
in. A number is

- **reproduced** when ours is within the tolerance of its kind (:data:`RULES`),
- **deviates** when it is not (the reason is taken from the result's provenance: a shortened
  schedule, a stand-in data set, another machine),
- **not run** when no result holds it yet (the reason says what it needs).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sslkit import models
from sslkit.experiments import filters2d
from sslkit.results import paper
from sslkit.util.io import write_text

WEN, MAO = "Wen et al. 2016", "Mao et al. 2017"


@dataclass(frozen=True)
class Rule:
    """A tolerance: ``text`` says it, ``holds(ours, paper)`` checks it."""

    text: str
    holds: object


RULES = {
    "error mnist": Rule("≤ paper + 0.2 pp", lambda o, p: o <= p + 0.2),
    "error cifar10": Rule("≤ paper + 1.0 pp", lambda o, p: o <= p + 1.0),
    "count": Rule("≤ paper × 1.2 + 1 (fewer is better)", lambda o, p: o <= 1.2 * p + 1),
    "flop": Rule("≤ paper × 1.2 + 0.5 pp (less is better)", lambda o, p: o <= 1.2 * p + 0.5),
    "sparsity": Rule("≥ paper − 10 pp (sparser is better)", lambda o, p: o >= p - 10),
    "share": Rule("within ± 10 pp", lambda o, p: abs(o - p) <= 10),
    "speedup": Rule("within ± 25% of the paper's", lambda o, p: abs(o / p - 1) <= 0.25),
    "error increase": Rule("≤ paper's + 1.0 pp (over each one's own baseline)", lambda o, p: o <= p + 1.0),
    "error reduction": Rule("< 0 pp (the error falls below the baseline's)", lambda o, p: o < 0),
    "claim": Rule("the claim holds (1: yes, 0: no)", lambda o, p: o == p),
    "saving": Rule("≥ paper × 0.75 (a larger saving is better)", lambda o, p: o >= 0.75 * p),
}
_COLUMN_RULES = {"filters": "count", "channels": "count", "filter_size": "count", "neurons": "count",
                 "flop": "flop", "row_sparsity": "sparsity", "column_sparsity": "sparsity", "speedup": "speedup"}


@dataclass
class Number:
    """One number of a paper, and ours."""

    paper: str
    item: str
    row: str
    quantity: str
    layer: str
    paper_value: float | None
    ours: float | None = None
    rule: str | None = None
    source: str | None = None      # the results folder ours comes from
    why_not: str = ""              # what a "not run" needs
    note: str = ""
    baseline: bool = False         # a baseline's number (no group Lasso was applied)

    def verdict(self, reasons: str) -> tuple[str, str]:
        """(verdict, note)."""
        if self.ours is None or self.rule is None or self.paper_value is None:
            return "not run", self.why_not or self.note
        if RULES[self.rule].holds(self.ours, self.paper_value):
            return "reproduced", self.note
        return "deviates", "; ".join(x for x in (self.note, reasons) if x)


def _split(cell) -> list[float | None]:
    """``"5–19"`` or ``"25%–7.6%"`` -> ``[5.0, 19.0]`` (empty -> [])."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)) or str(cell).strip() == "":
        return []
    return [float(v.strip().rstrip("%")) for v in str(cell).split("–")]


def _read(folder: Path, name: str) -> pd.DataFrame | None:
    """``folder/name`` as a DataFrame; None when it is missing or unreadable (its numbers are
    then "not run")."""
    try:
        return pd.read_csv(folder / name)
    except (OSError, ValueError):
        return None


def _network_folder(root: Path, prefix: str, name: str) -> str:
    """The results folder of an AlexNet experiment: ``<prefix>_caffenet`` (ImageNet) when it holds
    ``name``, else ``<prefix>_caffenet10`` (the stand-in)."""
    return next((f for f in (f"{prefix}_caffenet", f"{prefix}_caffenet10") if (root / f / name).exists()),
                f"{prefix}_caffenet10")


def _layer_names(key: str, table: paper.PaperTable, n: int) -> list[str]:
    if table.network == "mlp":
        return ["input", "hidden1", "hidden2", "output"] if key == "neurons" else [f"fc{i + 1}" for i in range(n)]
    return [f"conv{i + 1}" for i in range(n)]


def _paper_tables(root: Path) -> list[Number]:
    """Tables 1-3 and the MLP table (with Figure 4(b)'s share of dead pixels)."""
    out = []
    item_names = {"table1": "Table 1", "table2": "Table 2", "mlp": "MLP table", "table3": "Table 3"}
    for table in paper.TABLES.values():
        folder = f"{table.name}_{table.network}"
        ours = _read(root / folder, "comparison.csv")
        ours = ours[ours["source"] == "ours"].set_index("row") if ours is not None else None
        data = models.get(table.network).dataset
        item = item_names.get(table.name, table.name)
        for i, prow in enumerate(table.rows):
            mine = ours.loc[prow["row"]] if ours is not None and prow["row"] in ours.index else None
            need = f"the {item} notebook's results (figures/{folder}/)"
            out.append(Number(WEN, item, prow["row"], "error %", "", prow["error"],
                              None if mine is None else float(mine["error %"]), f"error {data}", folder, need))
            for col in table.columns:
                if col.key not in prow or col.key == "dead_pixels":
                    continue
                values = prow[col.key]
                got = _split(mine[col.key]) if mine is not None and col.key in mine.index else []
                note = ""
                if col.key == "speedup" and i == 0 and mine is not None:
                    got, note = [1.0] * len(values), "the baseline, by definition"
                for layer, (p, o) in zip(_layer_names(col.key, table, len(values)),
                                         zip(values, got + [None] * len(values))):
                    out.append(Number(WEN, item, prow["row"], col.key.replace("_", " "), layer, p, o,
                                      _COLUMN_RULES[col.key], folder, need, note, baseline=i == 0))
    pixels = _read(root / "mlp_mlp", "pixels.csv")
    for prow in paper.MLP_TABLE:
        if "dead_pixels" in prow:
            mine = None if pixels is None else pixels.set_index("row").get("our % pixels with no connection")
            value = None if mine is None or prow["row"] not in mine.index else float(mine[prow["row"]])
            out.append(Number(WEN, "Figure 4(b)", prow["row"], "% input pixels with no connection", "",
                              prow["dead_pixels"], value, "share", "mlp_mlp", "the MLP notebook's results"))
    return out


def _figure6(root: Path) -> list[Number]:
    """Figure 6: the ResNet baselines and the SSL-ResNet points the text states."""
    folder = "figure6_resnet20"
    base = _read(root / folder, "baselines.csv")
    points = _read(root / folder, "points.csv")
    out = []
    for net in ("resnet20", "resnet32"):
        mine = None if base is None else base[base["network"] == net]["our error %"]
        out.append(Number(WEN, "Figure 6", f"ResNet-{net[len('resnet'):]}", "baseline error %", "", models.get(net).paper_error,
                          None if mine is None or mine.empty else float(mine.iloc[0]), "error cifar10", folder,
                          "the Figure 6 notebook's results"))
    for layers, err in paper.FIGURE6_POINTS.items():
        mine = None if points is None else points[points["layers"] == layers]["our error %"]
        why = ("no SSL-ResNet-{} point yet: our strengths removed {}".format(
            layers, "no layer" if points is not None and (points["layers"] == 20).all() else "other depths")
               if points is not None else "the Figure 6 notebook's results")
        out.append(Number(WEN, "Figure 6", f"SSL-ResNet-{layers}", "error %", "", err,
                          None if mine is None or mine.empty else float(mine.min()), "error cifar10", folder, why))
    return out


def _table4(root: Path) -> list[Number]:
    """Table 4: errors and sparsities need our own AlexNet training; speedups are timed."""
    folder = "table4_speed_cpu"
    timed = _read(root / folder, "table4.csv")
    if timed is not None:  # the row column was "row" in results written before 2026-11-23
        timed = timed.rename(columns={"table4 row": "row"})
    train = "AlexNet trained with l1 / SSL (the Table 4 stand-in notebook)"
    trained_folder = _network_folder(root, "table4", "comparison.csv")
    trained = _read(root / trained_folder, "comparison.csv")
    out, means = [], []
    base = _trained(trained, 0, "top-1 error")
    for prow in paper.TABLE4:
        row = f"{prow['row']} ({prow['method']})"
        if prow["method"] == "pruning":
            why = "Han et al.'s result, cited by the paper for comparison"
        else:
            why = train
        err = _trained(trained, prow["row"], "top-1 error")
        out.append(Number(WEN, "Table 4", row, "top-1 error increase over the baseline, pp", "",
                          round(prow["error"] - models.get(paper.TABLE4_NETWORK).paper_error, 2),
                          None if not (err and base) else round(err[0] - base[0], 2), "error increase",
                          trained_folder, why_not=why))
        for key in ("sparsity", "column_sparsity", "row_sparsity"):
            stat = "element sparsity" if key == "sparsity" else key.replace("_", " ")
            ours = _trained(trained, prow["row"], stat)
            for j, p in enumerate(prow.get(key, [])):
                out.append(Number(WEN, "Table 4", row, key.replace("_", " ") + " %", f"conv{j + 1}", p,
                                  ours[j] if ours else None, "sparsity", trained_folder, why_not=why))
        learned = _trained(trained, prow["row"], "CPU speedup (CPU, 1 thread)")
        for j, p in enumerate(prow.get("cpu_speedup", [])):
            out.append(Number(WEN, "Table 4", row, "CPU speedup, learned sparsity", f"conv{j + 1}", p,
                              learned[j] if learned else None, "speedup", trained_folder, why_not=why,
                              note="our own l1 / SSL training, the layers at 227x227"))
        for platform in ("cpu", "gpu"):
            values = prow.get(f"{platform}_speedup", [])
            mine = None
            if timed is not None:
                sel = timed[(timed["row"] == prow["row"]) & (timed["statistic"] == f"our {platform.upper()} speedup")]
                mine = sel.iloc[0] if not sel.empty else None
            got = []
            for j, p in enumerate(values):
                cell = None if mine is None else mine[f"conv{j + 1}"]
                try:
                    o = float(cell)
                except (TypeError, ValueError):
                    o = None
                got.append(o)
                out.append(Number(WEN, "Table 4", row, f"{platform.upper()} speedup", f"conv{j + 1}", p, o, "speedup",
                                  folder, "a GPU (cuBLAS vs cuSPARSE / compact GEMM)" if platform == "gpu"
                                  else "the Table 4 notebook's results",
                                  "timed on the paper's sparsity, random patterns"))
            if values and prow["row"] in (1, 2):
                means.append((prow, platform, values, got))
    for prow, platform, values, got in means:
        o = None if any(v is None for v in got) else sum(got) / len(got)
        out.append(Number(WEN, "Table 4", f"{prow['row']} ({prow['method']})", f"average {platform.upper()} speedup",
                          "conv1-5", round(sum(values) / len(values), 2), o, "speedup", folder,
                          "a GPU" if platform == "gpu" else "the Table 4 notebook's results",
                          "timed on the paper's sparsity, random patterns"))
    caffenet = models.get(paper.TABLE4_NETWORK)
    out.append(Number(WEN, "Table 4", "baseline CaffeNet", "top-1 error %", "", caffenet.paper_error,
                      why_not="CaffeNet trained on ImageNet (the stand-in's own baseline error is in table4_caffenet10)"))
    return out


def _trained(table: pd.DataFrame | None, row: int, statistic: str) -> list[float]:
    """Our values of one statistic (``statistic`` starts its name) of Table 4 row ``row`` from
    the trained notebook's comparison table ([] when absent)."""
    if table is None:
        return []
    sel = table[(table["table4 row"] == row) & table["statistic"].astype(str).str.startswith(statistic)]
    return _split(sel["ours"].iloc[0]) if not sel.empty else []


def _not_run_yet() -> list[Number]:
    """The numbers of figures no experiment here makes yet, and what each needs."""
    return [
        Number(WEN, "Figure 1", "l1 AlexNet", "CSR speedup over dense per layer, 3 GPUs", "", None,
               why_not="a GPU (cuSPARSE vs cuBLAS); a CPU version is in figures/figure1_cpu"),
        Number(WEN, "Figure 7(a)", "AlexNet 5 (shape-wise)", "top-1 error % with parameters kept", "", 41.83,
               why_not="ImageNet: an absolute ImageNet error (the stand-in's errors are not comparable)"),
        Number(WEN, "Figure 7(c)", "SSL vs l1", "SSL speedup on GPU", "", 3.0,
               why_not="a GPU (the GPU bars of the Table 4 stand-in notebook's Figure 7(c))"),
    ]


def _figure7a(root: Path) -> list[Number]:
    """Figure 7(a)'s two claims from the 2-D-filter sweep: the FLOP saved at no accuracy loss, and
    the lowest error's change from the baseline (the stand-in's errors are compared with its own
    baseline)."""
    folder = _network_folder(root, "figure7a", "points.csv")
    points = _read(root / folder, "points.csv")
    why = "the Figure 7(a) notebook (2-D-filter SSL sweep on AlexNet)"
    claims, base_error = paper.FIGURE7A, models.get(paper.TABLE4_NETWORK).paper_error
    saved = best = None
    note_saved = note_best = ""
    if points is not None and len(points) > 1:
        mine = filters2d.ours(points)
        base, top = mine["baseline"], mine["best"]
        saved = float(mine["no_loss"]["FLOP saved %"]) if mine["no_loss"] is not None else 0.0
        note_saved = f"points at or below our baseline's error {base:.2f}%: {mine['within']} of {mine['swept']}"
        best = round(float(top["error %"]) - base, 2)
        note_best = f"{top['point']}: {top['error %']:.2f}% vs our baseline {base:.2f}%"
    return [_alexnet5_speedup(root),
        Number(WEN, "Figure 7(a)", "2-D-filter SSL", "FLOP saved % with no accuracy loss", "",
               sum(claims["flop_saved_no_loss"]) / 2, saved, "saving", folder, why,
               note="; ".join(x for x in ("the paper: {:g}-{:g}%".format(*claims["flop_saved_no_loss"]), note_saved) if x)),
        Number(WEN, "Figure 7(a)", "2-D-filter SSL", "lowest top-1 error's change from the baseline, pp", "",
               round(claims["best_error"] - base_error, 2), best, "error reduction", folder, why,
               note="; ".join(x for x in (f"the paper: {claims['best_error']:g}% from {base_error:g}%", note_best) if x)),
    ]


def _alexnet5_speedup(root: Path) -> Number:
    """The text beside Figure 7(a): AlexNet 5 (Table 4 row 5, shape-wise) gets 1.4x layer-wise with
    no accuracy loss. Ours: the mean learned-sparsity CPU speedup (1 thread) of our row 5, when its
    error is within the "error increase" tolerance of its baseline."""
    folder = _network_folder(root, "table4", "comparison.csv")
    trained = _read(root / folder, "comparison.csv")
    err, base = _trained(trained, 5, "top-1 error"), _trained(trained, 0, "top-1 error")
    speed = _trained(trained, 5, "CPU speedup (CPU, 1 thread)")
    number = Number(WEN, "Figure 7(a)", "AlexNet 5 (shape-wise)", "layer-wise speedup with no loss", "conv1-5", 1.4,
                    rule="speedup", source=folder, why_not="AlexNet trained with shape-wise SSL (the Table 4 stand-in "
                                                           "notebook's row 5)")
    if err and base and speed:
        rise = err[0] - base[0]
        if RULES["error increase"].holds(rise, paper.table4_row(5)["error"] - models.get(paper.TABLE4_NETWORK).paper_error):
            number.ours = round(sum(speed) / len(speed), 2)
            number.note = f"our row 5, CPU 1 thread, {rise:+.2f} pp over its baseline"
        else:
            number.why_not = f"our row 5 is {rise:+.2f} pp over its baseline ({folder}): no speedup without loss to report"
    return number


def _figure7b(root: Path) -> list[Number]:
    """Figure 7(b)'s claim per network: SSL's filters need fewer components (10% error) in every conv layer."""
    folder = "figure7b_pca"
    table = _read(root / folder, "components.csv")
    out = []
    for name in ("lenet", "convnet", "caffenet"):
        part = None if table is None else table[table["network"] == name]
        if part is None or part.empty:
            out.append(Number(WEN, "Figure 7(b)", name, "SSL needs fewer components (10% error), every layer", "",
                              1.0, why_not="the Figure 7(b) notebook with this network's SSL weights"))
            continue
        fewer = part["SSL needs fewer (10%)"].astype(str) == "True"
        note = "; ".join(f"{r['layer']}: {r['SSL for 10%']} vs {r['baseline for 10%']}" for _, r in part.iterrows())
        out.append(Number(WEN, "Figure 7(b)", f"{name} ({part['run'].iloc[0]})",
                          "SSL needs fewer components (10% error), every layer", "", 1.0, float(fewer.all()), "claim",
                          folder, note="components SSL vs baseline: " + note))
    return out


_MAO = {"sparsity": ("similar sparsity at no accuracy loss (within 5 pp)", "claim"),
        "compression": ("better compression ratio counting indices", "claim"),
        "memory": ("memory references saved, fine / coarse (×)", "saving")}


def _granularity(root: Path) -> list[Number]:
    """Mao et al.'s three claims for each network of the study, kernel-level pruning standing for
    "coarse-grained" (the vector and filter verdicts in the note)."""
    folder = "granularity"
    table = _read(root / folder, "claims.csv")
    out = []
    for name in ("lenet", "convnet", "resnet20"):
        for claim, (text, rule) in _MAO.items():
            part = None if table is None else table[(table["network"] == name) & (table["claim"] == claim)]
            paper_value = 2.0 if rule == "saving" else 1.0
            if part is None or part.empty or "kernel" not in set(part["granularity"]):
                out.append(Number(MAO, "abstract", f"{name}: kernel vs fine", text, "", paper_value,
                                  why_not="the granularity notebook with this network"))
                continue
            r = part.set_index("granularity").loc["kernel"]
            others = "; ".join(f"{g}: {q['verdict']} ({q['ours']})" for g, q in part.set_index("granularity").iterrows()
                               if g != "kernel")
            ours = None if r["verdict"] == "not measurable" else \
                (float(r["value"]) if rule == "saving" else float(r["verdict"] == "yes"))
            out.append(Number(MAO, "abstract", f"{name}: kernel vs fine", text, "", paper_value, ours, rule, folder,
                              why_not=str(r["ours"]), note=f"{r['ours']}; {others}"))
    return out


def _provenance(root: Path, folder: str | None) -> dict:
    path = root / folder / "provenance.json" if folder else None
    return json.loads(path.read_text()) if path is not None and path.exists() else {}


_STRENGTHS = "the group-Lasso strengths are ours (the paper gives none per row)"


def _reasons(meta: dict, quantity: str, rule: str | None, baseline: bool) -> str:
    """Why a number may deviate, from its result's provenance and its kind."""
    why = [_STRENGTHS] if rule in ("count", "flop", "sparsity", "share") and not baseline else []
    if "shortened" in str(meta.get("schedule", "")):
        why.append("shortened schedule (" + meta.get("profile", "?") + " profile)")
    if "JPEG" in str(meta.get("data", "")):
        why.append("JPEG re-encoded CIFAR-10")
    if "Imagenette" in str(meta.get("data", "")):
        why.append("the Imagenette stand-in (10 classes), not ImageNet")
    if "speedup" in quantity and meta.get("device"):
        why.append(f"timed on {meta['device']}, the paper on {paper.TABLE4_DEVICES['cpu']}")
    return "; ".join(why)


def numbers(root: str | Path) -> pd.DataFrame:
    """Every number of both papers with ours, the difference, the tolerance and the verdict,
    read from the results folder ``root``."""
    root = Path(root)
    rows = []
    for n in _paper_tables(root) + _figure6(root) + _table4(root) + _not_run_yet() + _figure7a(root) + _figure7b(root) + _granularity(root):
        meta = _provenance(root, n.source) if n.ours is not None else {}
        verdict, note = n.verdict(_reasons(meta, n.quantity, n.rule, n.baseline))
        rows.append({"paper": n.paper, "item": n.item, "row": n.row, "quantity": n.quantity, "layer": n.layer,
                     "paper value": n.paper_value, "ours": n.ours,
                     "difference": None if verdict == "not run" else round(n.ours - n.paper_value, 4),
                     "tolerance": RULES[n.rule].text if n.rule else "", "verdict": verdict, "note": note,
                     "source": n.source if verdict != "not run" else "",
                     "profile": meta.get("profile", ""), "device": meta.get("device", ""),
                     "date": meta.get("date", "")})
    return pd.DataFrame(rows)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


def markdown(table: pd.DataFrame) -> str:
    """The report as one Markdown page: counts, tolerances, sources, then one table per item."""
    counts = table["verdict"].value_counts()
    lines = ["# Reproduction report", "",
             "Generated by `make report` (`python -m sslkit report`) from the result files in this folder; "
             "never edited by hand. Every number of Wen et al. 2016 and Mao et al. 2017, ours beside it.", "",
             f"**{len(table)} numbers: {counts.get('reproduced', 0)} reproduced, {counts.get('deviates', 0)} deviate, "
             f"{counts.get('not run', 0)} not run.**", "",
             "Tolerances: " + "; ".join(f"{k}: {r.text}" for k, r in RULES.items()) + ".", "",
             "## Sources", "", "| results | profile | device | date |", "|---|---|---|---|"]
    src = table[table["source"] != ""].drop_duplicates("source")
    for _, r in src.iterrows():
        lines.append(f"| `{r['source']}/` | {r['profile']} | {r['device']} | {r['date']} |")
    for (pap, item), part in table.groupby(["paper", "item"], sort=False):
        c = part["verdict"].value_counts()
        lines += ["", f"## {pap}: {item}", "",
                  f"{c.get('reproduced', 0)} reproduced, {c.get('deviates', 0)} deviate, {c.get('not run', 0)} not run.",
                  "", "| row | quantity | layer | paper | ours | diff | tolerance | verdict | note |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for _, r in part.iterrows():
            ours = f"{r['ours']:.4g}" if r["ours"] is not None and not pd.isna(r["ours"]) else "–"
            diff = f"{r['difference']:+.3g}" if r["difference"] is not None and not pd.isna(r["difference"]) else "–"
            lines.append(f"| {r['row']} | {r['quantity']} | {r['layer']} | {_fmt(r['paper value'])} | {ours} | "
                         f"{diff} | {r['tolerance']} | {r['verdict']} | {r['note']} |")
    return "\n".join(lines) + "\n"


def write(root: str | Path) -> tuple[Path, pd.Series]:
    """Write ``root/REPORT.md`` (atomically) from the results in ``root``; return its path and
    the count of each verdict."""
    table = numbers(root)
    path = Path(root) / "REPORT.md"
    write_text(path, markdown(table))
    return path, table["verdict"].value_counts()
