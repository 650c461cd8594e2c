"""The reproduction report: every claim the experiments declare of both papers, ours beside
it, and its verdict, collected from the published results.

    python -m sslkit report                 # figures/REPORT.md and the README's totals, from figures/
    python -m sslkit report --profile smoke # build/figures-smoke/REPORT.md (counts nothing as reproduced)

The report judges nothing itself. Each results folder holds ``verdicts.csv``: its experiment's
claims (``claims(result)`` beside its ``run``), judged by :mod:`sslkit.results.claims` when the
result was published. A folder published before verdicts existed is judged from its own tables
by the same ``claims``; a folder that does not exist lists its experiment's claims as "not run".
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from sslkit import experiments
from sslkit.results.claims import RULES, TIMING, TRAINED, judge
from sslkit.results.record import ExperimentResult
from sslkit.util.io import write_text

# results folder -> (experiment, what its claims depend on where the provenance does not say, required).
# An optional folder (ImageNet, a GPU) counts only when it exists; where two folders hold the same
# number, the one with a value of ours wins (ImageNet before the stand-in, a GPU's GPU columns).
SOURCES = [
    ("table1_lenet", "ssl", {"table": "table1"}, True),
    ("table2_lenet", "ssl", {"table": "table2"}, True),
    ("mlp_mlp", "ssl", {"table": "mlp"}, True),
    ("table3_convnet", "ssl", {"table": "table3"}, True),
    ("figure6_resnet20", "depth", {}, True),
    ("table4_caffenet", "alexnet", {"model": "caffenet"}, False),
    ("table4_caffenet10", "alexnet", {"model": "caffenet10"}, True),
    ("table4_speed_gpu", "speed", {}, False),
    ("table4_speed_cpu", "speed", {}, True),
    ("figure1_gpu", "speed", {}, False),
    ("figure1_cpu", "speed", {}, True),
    ("figure7a_caffenet", "filters2d", {"model": "caffenet"}, False),
    ("figure7a_caffenet10", "filters2d", {"model": "caffenet10"}, True),
    ("figure7b_pca", "pca", {}, True),
    ("granularity", "granularity", {}, True),
]
_KEY = ["paper", "item", "row", "quantity", "layer"]
_USED = ["network", "stage", "test error %", "results"]
README_START, README_END = "<!-- report totals: written by `python -m sslkit report` -->", "<!-- end of report totals -->"


def _provenance(folder: Path) -> dict:
    path = folder / "provenance.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _verdicts(folder: Path, experiment: str, defaults: dict) -> tuple[pd.DataFrame, dict, str]:
    """One folder's judged claims, its provenance, and how they were obtained."""
    meta = _provenance(folder)
    if (folder / "verdicts.csv").exists():
        return pd.read_csv(folder / "verdicts.csv", keep_default_na=False, na_values=[""]), meta, "published"
    tables = {p.stem: pd.read_csv(p) for p in sorted(folder.glob("*.csv"))} if folder.is_dir() else {}
    result = ExperimentResult(folder.name, tables, {**defaults, **meta})
    how = "judged from its tables (published before verdicts)" if folder.is_dir() else "absent"
    return judge(experiments.get(experiment).claims(result), result.meta), meta, how


def numbers(root: str | Path) -> pd.DataFrame:
    """Every claim of both papers the experiments declare, with ours, the tolerance and the
    verdict, collected from the results folder ``root``, one line per number."""
    root = Path(root)
    parts = []
    for name, experiment, defaults, required in SOURCES:
        folder = root / name
        if not required and not folder.is_dir():
            continue
        table, meta, how = _verdicts(folder, experiment, defaults)
        ran = table["verdict"] != "not run"
        parts.append(table.assign(source=ran.map({True: name, False: ""}), obtained=how,
                                  profile=meta.get("profile", ""), device=meta.get("device", ""),
                                  date=meta.get("date", ""), commit=meta.get("commit", "")))
    table = pd.concat(parts, ignore_index=True)
    ran = (table["verdict"] != "not run").astype(int)
    table = table.assign(_ran=ran).sort_values("_ran", ascending=False, kind="stable")
    table = table.drop_duplicates(_KEY).sort_index().drop(columns="_ran")
    return table.reset_index(drop=True)


def baselines(root: str | Path) -> pd.DataFrame:
    """The baseline each results folder used, per network (from its provenance): stage folder
    and test error. One network with two different baselines means the report mixes runs."""
    rows = []
    for name, *_ in SOURCES:
        for net, used in _provenance(Path(root) / name).get("baselines", {}).items():
            rows.append({"network": net, "stage": used.get("stage"), "test error %": used.get("test error %"),
                         "results": name})
    return pd.DataFrame(rows, columns=_USED)


def _mixed(used: pd.DataFrame) -> list[str]:
    """A warning line per network whose folders used different baselines."""
    out = []
    for net, part in used.groupby("network", sort=False):
        kinds = part.drop_duplicates(["stage", "test error %"])
        if len(kinds) > 1:
            out.append(f"- **{net}: {len(kinds)} different baselines** — " + "; ".join(
                f"{r['test error %']}% (stage {r['stage']}, in `{r['results']}/`)" for _, r in kinds.iterrows()))
    return out


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.4g}" if isinstance(v, (int, float)) else str(v)


def totals(table: pd.DataFrame) -> pd.DataFrame:
    """Per paper and item: trained numbers reproduced / deviating / not run, numbers not counted,
    and the timing checks of the paper's sparsity that hold / fail."""
    rows = []
    for (pap, item), part in table.groupby(["paper", "item"], sort=False):
        trained, timed = part[part["kind"] == TRAINED], part[part["kind"] == TIMING]
        v, t = trained["verdict"].value_counts(), timed["verdict"].value_counts()
        rows.append({"paper": pap, "item": item, "reproduced": v.get("reproduced", 0), "deviate": v.get("deviates", 0),
                     "not run": v.get("not run", 0) + t.get("not run", 0),
                     "not counted": int((part["verdict"] == "not counted").sum()),
                     "timing checks hold": t.get("check holds", 0), "timing checks fail": t.get("check fails", 0)})
    out = pd.DataFrame(rows)
    total = {"paper": "all", "item": "", **{c: int(out[c].sum()) for c in out.columns[2:]}}
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True)


def totals_markdown(table: pd.DataFrame) -> str:
    """The totals (:func:`totals`) as a Markdown table."""
    t = totals(table)
    lines = ["| paper | item | " + " | ".join(t.columns[2:]) + " |", "|---|---|" + "---|" * (len(t.columns) - 2)]
    for _, r in t.iterrows():
        lines.append(f"| {r['paper']} | {r['item']} | " + " | ".join(str(int(r[c])) for c in t.columns[2:]) + " |")
    return "\n".join(lines)


def markdown(table: pd.DataFrame, used: pd.DataFrame | None = None) -> str:
    """The report as one Markdown page: totals, verdict rules, sources and the baselines they
    used (``used``, see :func:`baselines`), then one table per item."""
    last = totals(table).iloc[-1]
    used = used if used is not None else pd.DataFrame(columns=_USED)
    lines = ["# Reproduction report", "",
             "Generated by `make report` (`python -m sslkit report`) from the `verdicts.csv` of each results "
             "folder; never edited by hand. Each number of Wen et al. 2016 and Mao et al. 2017 that an experiment "
             "claims, ours beside it.", "",
             f"**{len(table)} numbers. From our own training: {last['reproduced']} reproduced, {last['deviate']} "
             f"deviate. {last['not run']} not run. {last['not counted']} not counted (by construction, a rule that "
             f"admits every value, or the smoke profile). Timings of the paper's own sparsity: "
             f"{last['timing checks hold']} checks hold, {last['timing checks fail']} fail.**", "",
             totals_markdown(table), "",
             "A row's structure, FLOP and speedup numbers count only where that row's error is within its "
             "tolerance; otherwise they deviate, with the row's error as the reason. Tolerances: "
             + "; ".join(f"{k}: {r.text}" for k, r in RULES.items()) + ".", "",
             "## Sources", "", "| results | profile | device | date | commit | verdicts |", "|---|---|---|---|---|---|"]
    src = table[table["source"] != ""].drop_duplicates("source")
    for _, r in src.iterrows():
        lines.append(f"| `{r['source']}/` | {r['profile']} | {r['device']} | {r['date']} | {r['commit'] or '–'} | "
                     f"{r['obtained']} |")
    lines += ["", "## Baselines used", ""]
    if used.empty:
        lines.append("No results folder here records its baseline (results published before 2026-12-02 do not).")
    else:
        lines += _mixed(used) or ["Every network has one baseline throughout this report."]
        lines += ["", "| network | stage | test error % | results |", "|---|---|---|---|"]
        lines += [f"| {r['network']} | {r['stage']} | {r['test error %']} | `{r['results']}/` |" for _, r in used.iterrows()]
    for (pap, item), part in table.groupby(["paper", "item"], sort=False):
        c = part["verdict"].value_counts()
        lines += ["", f"## {pap}: {item}", "", ", ".join(f"{n} {v}" for v, n in c.items()) + ".", "",
                  "| row | quantity | layer | paper | ours | diff | tolerance | kind | verdict | note |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in part.iterrows():
            diff = r["difference"]
            diff = f"{diff:+.3g}" if diff is not None and not pd.isna(diff) else "–"
            layer = "" if pd.isna(r["layer"]) else r["layer"]
            note = "" if pd.isna(r["note"]) else r["note"]
            lines.append(f"| {r['row']} | {r['quantity']} | {layer} | {_fmt(r['paper value'])} | {_fmt(r['ours'])} | "
                         f"{diff} | {r['tolerance']} | {r['kind']} | {r['verdict']} | {note} |")
    return "\n".join(lines) + "\n"


def update_readme(path: str | Path, table: pd.DataFrame) -> bool:
    """Put the totals between the README's report markers (atomically); False when it has none."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        return False
    block = f"{README_START}\n{totals_markdown(table)}\n{README_END}"
    write_text(path, pattern.sub(lambda _: block, text))
    return True


def write(root: str | Path, readme: str | Path | None = None) -> tuple[Path, pd.Series]:
    """Write ``root/REPORT.md`` (atomically) from the results in ``root``, and the totals into
    ``readme`` when given; return the report's path and the count of each verdict."""
    table = numbers(root)
    path = Path(root) / "REPORT.md"
    write_text(path, markdown(table, baselines(root)))
    if readme is not None:
        update_readme(readme, table)
    return path, table["verdict"].value_counts()
