"""The reproduction report: it collects what each experiment claims, judged; a number's verdict
follows its rule, and a row's structure counts only where its error holds."""
import json
import subprocess
import sys

import pandas as pd

from sslkit.reporting import report
from sslkit.results import paper


def _write_table1(root, error_lenet2: float, schedule: str = "", profile: str = "quick"):
    """A Table 1 results folder as the SSL experiment published it before verdicts existed."""
    folder = root / "table1_lenet"
    folder.mkdir(parents=True)
    rows = [{"row": prow["row"], "source": "paper", "error %": prow["error"]} for prow in paper.TABLE1]
    rows += [{"row": "LeNet 1", "source": "ours", "error %": 0.87, "filters": "20–50", "channels": "1–20",
              "flop": "100%–100%", "speedup": None},
             {"row": "LeNet 2", "source": "ours", "error %": error_lenet2, "filters": "3–31", "channels": "1–3",
              "flop": "15%–9.3%", "speedup": "1.98–6.87"}]
    pd.DataFrame(rows).to_csv(folder / "comparison.csv", index=False)
    (folder / "provenance.json").write_text(json.dumps({"profile": profile, "device": "test CPU, 2 cores",
                                                        "date": "2026-01-01", "schedule": schedule,
                                                        "table": "table1", "data": "MNIST"}))


def _pick(table, row, quantity, layer=""):
    sel = table[(table["item"] == "Table 1") & (table["row"] == row) & (table["quantity"] == quantity)
                & (table["layer"].fillna("") == layer)]
    assert len(sel) == 1, sel
    return sel.iloc[0]


def test_empty_results_folder_lists_every_number_as_not_run(tmp_path):
    table = report.numbers(tmp_path)
    assert (table["verdict"] == "not run").all()
    # Table 1: 3 rows x (error + 2 layers x 4 columns)
    assert (table["item"] == "Table 1").sum() == 3 * (1 + 2 * 4)
    # Table 4, from our training: per row its error and every per-conv value (sparsities, CPU and
    # GPU speedups of the learned sparsity), the averages of rows 1 and 2, AlexNet 1's recovery
    # and the baseline; timed on the paper's sparsity: every speedup, and the averages again
    per_row = [1 + sum(len(r.get(k, [])) for k in ("sparsity", "column_sparsity", "row_sparsity",
                                                  "cpu_speedup", "gpu_speedup")) for r in paper.TABLE4]
    timed = sum(len(r.get("cpu_speedup", [])) + len(r.get("gpu_speedup", [])) for r in paper.TABLE4)
    assert (table["item"] == "Table 4").sum() == sum(per_row) + 4 + 1 + 1 + timed + 4
    assert not table.duplicated(["paper", "item", "row", "quantity", "layer"]).any()


def test_verdicts_follow_the_tolerances_and_the_row_error(tmp_path):
    _write_table1(tmp_path, error_lenet2=0.9)
    table = report.numbers(tmp_path)
    err = _pick(table, "LeNet 2", "error %")
    assert (err["paper value"], err["ours"], err["verdict"]) == (0.8, 0.9, "reproduced")  # within +0.2 pp
    assert abs(err["difference"] - 0.1) < 1e-9
    filters = _pick(table, "LeNet 2", "filters", "conv2")
    assert (filters["ours"], filters["verdict"]) == (31, "deviates")                       # 31 > 1.2 * 19 + 1
    assert "strengths" in filters["note"]
    assert _pick(table, "LeNet 2", "filters", "conv1")["verdict"] == "reproduced"           # 3 <= 5
    base = _pick(table, "LeNet 1", "speedup", "conv1")
    assert (base["ours"], base["verdict"]) == (1.0, "not counted")                          # by construction
    assert _pick(table, "LeNet 1", "filters", "conv1")["verdict"] == "not counted"          # dense baseline
    assert _pick(table, "LeNet 3", "error %")["verdict"] == "not run"                       # no row of ours


def test_a_collapsed_row_gets_no_structural_reproduced(tmp_path):
    """LeNet 2 at 9% error (paper 0.8%): its filter count 3 <= 5 alone would pass; gated, it deviates
    and says why."""
    _write_table1(tmp_path, error_lenet2=9.0)
    table = report.numbers(tmp_path)
    row = table[(table["item"] == "Table 1") & (table["row"] == "LeNet 2") & (table["quantity"] != "error %")]
    assert len(row) == 8 and (row["verdict"] == "deviates").all()
    assert row["note"].str.contains("LeNet 2's error 9 is outside its tolerance").all()


def test_a_shortened_schedule_is_named_as_the_reason(tmp_path):
    _write_table1(tmp_path, error_lenet2=1.5, schedule="shortened schedule: 10 iterations")
    err = _pick(report.numbers(tmp_path), "LeNet 2", "error %")
    assert err["verdict"] == "deviates" and "shortened schedule" in err["note"]


def test_the_smoke_profile_counts_nothing(tmp_path):
    _write_table1(tmp_path, error_lenet2=0.8, profile="smoke")
    table = report.numbers(tmp_path)
    ours = table[table["ours"].notna()]
    assert len(ours) > 0 and (ours["verdict"] == "not counted").all()


def test_report_command_writes_the_page_and_the_totals(tmp_path):
    _write_table1(tmp_path, error_lenet2=0.9)
    done = subprocess.run([sys.executable, "-m", "sslkit", "report", "--figures", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "REPORT.md").read_text()
    table = report.numbers(tmp_path)
    totals = report.totals(table).set_index("item")
    assert totals.loc["Table 1", "reproduced"] == ((table["item"] == "Table 1") & (table["verdict"] == "reproduced")).sum()
    assert f"**{len(table)} numbers. From our own training: {totals.iloc[-1]['reproduced']} reproduced" in text
    assert "| LeNet 2 | error % |  | 0.8 | 0.9 | +0.1 | ≤ paper + 0.2 pp | trained | reproduced |" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\nrest\n")
    assert report.update_readme(readme, table)
    assert readme.read_text() == f"intro\n{report.README_START}\n{report.totals_markdown(table)}\n{report.README_END}\nrest\n"


def test_the_readme_gives_the_committed_reports_totals():
    """The README's totals are the report's, computed from the committed figures/ (rerun
    ``python -m sslkit report`` after publishing results)."""
    from sslkit.util import settings

    text = (settings.REPO / "README.md").read_text()
    block = text.split(report.README_START)[1].split(report.README_END)[0].strip()
    assert block == report.totals_markdown(report.numbers(settings.REPO / "figures"))


def test_two_baselines_of_one_network_are_flagged(tmp_path):
    for name, error in (("table4_caffenet10", 41.25), ("figure7a_caffenet10", 43.82)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "provenance.json").write_text(json.dumps(
            {"profile": "quick", "baselines": {"caffenet10": {"stage": "abc", "test error %": error}}}))
    used = report.baselines(tmp_path)
    assert len(used) == 2
    text = report.markdown(report.numbers(tmp_path), used)
    assert "**caffenet10: 2 different baselines**" in text and "41.25%" in text and "43.82%" in text
    one = used.assign(**{"test error %": 41.25})
    assert "Every network has one baseline" in report.markdown(report.numbers(tmp_path), one)
