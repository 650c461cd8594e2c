"""The reproduction report: every paper number is listed, ours is read from the result files,
and the verdict follows the tolerance of the number's kind."""
import json
import subprocess
import sys

import pandas as pd

from sslkit.reporting import report
from sslkit.results import paper


def _write_table1(root, error_lenet2: float, schedule: str = ""):
    folder = root / "table1_lenet"
    folder.mkdir(parents=True)
    rows = []
    for prow in paper.TABLE1:
        rows.append({"row": prow["row"], "source": "paper", "error %": prow["error"]})
    rows += [{"row": "LeNet 1", "source": "ours", "error %": 0.87, "filters": "20–50", "channels": "1–20",
              "flop": "100%–100%", "speedup": None},
             {"row": "LeNet 2", "source": "ours", "error %": error_lenet2, "filters": "3–31", "channels": "1–3",
              "flop": "15%–9.3%", "speedup": "1.98–6.87"}]
    pd.DataFrame(rows).to_csv(folder / "comparison.csv", index=False)
    (folder / "provenance.json").write_text(json.dumps({"profile": "quick", "device": "test CPU",
                                                        "date": "2026-01-01", "schedule": schedule}))


def _pick(table, row, quantity, layer=""):
    sel = table[(table["item"] == "Table 1") & (table["row"] == row) & (table["quantity"] == quantity)
                & (table["layer"] == layer)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_empty_results_folder_lists_every_number_as_not_run(tmp_path):
    table = report.numbers(tmp_path)
    assert (table["verdict"] == "not run").all()
    # Table 1: 3 rows x (error + 2 layers x 4 columns)
    assert (table["item"] == "Table 1").sum() == 3 * (1 + 2 * 4)
    # Table 4: every conv value of every row (the CPU speedups twice: at the paper's sparsity
    # and at our trained rows' learned sparsity), the errors, the averages and the baseline
    t4 = paper.TABLE4
    per_row = [1 + sum(len(r.get(k, [])) for k in ("sparsity", "column_sparsity", "row_sparsity",
                                                  "cpu_speedup", "cpu_speedup", "gpu_speedup")) for r in t4]
    assert (table["item"] == "Table 4").sum() == sum(per_row) + 4 + 1


def test_verdicts_follow_the_tolerances(tmp_path):
    _write_table1(tmp_path, error_lenet2=0.9)
    table = report.numbers(tmp_path)
    err = _pick(table, "LeNet 2", "error %")
    assert (err["paper value"], err["ours"], err["verdict"]) == (0.8, 0.9, "reproduced")  # within +0.2 pp
    assert abs(err["difference"] - 0.1) < 1e-9
    filters = _pick(table, "LeNet 2", "filters", "conv2")
    assert (filters["ours"], filters["verdict"]) == (31, "deviates")                       # 31 > 1.2 * 19 + 1
    assert "strengths" in filters["note"]
    assert _pick(table, "LeNet 2", "filters", "conv1")["verdict"] == "reproduced"           # 3 <= 5
    assert _pick(table, "LeNet 1", "speedup", "conv1")["ours"] == 1.0                       # by definition
    assert _pick(table, "LeNet 3", "error %")["verdict"] == "not run"                       # no row of ours


def test_a_shortened_schedule_is_named_as_the_reason(tmp_path):
    _write_table1(tmp_path, error_lenet2=1.5, schedule="shortened schedule: 10 iterations")
    err = _pick(report.numbers(tmp_path), "LeNet 2", "error %")
    assert err["verdict"] == "deviates" and "shortened schedule" in err["note"]


def test_report_command_writes_the_page(tmp_path):
    _write_table1(tmp_path, error_lenet2=0.9)
    done = subprocess.run([sys.executable, "-m", "sslkit", "report", "--figures", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "REPORT.md").read_text()
    table = report.numbers(tmp_path)
    counts = table["verdict"].value_counts()
    assert f"**{len(table)} numbers: {counts['reproduced']} reproduced" in text
    assert "| LeNet 2 | error % |  | 0.8 | 0.9 | +0.1 | ≤ paper + 0.2 pp | reproduced |" in text
