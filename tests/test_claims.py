"""Claims and verdicts (sslkit.results.claims): the rules on both sides of their bounds, the gate
on a row's error, numbers that cannot fail, the paper's numbers against the paper's text, a
published folder replaced as a whole, and the code version in every provenance."""
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from sslkit import models
from sslkit.experiments import granularity
from sslkit.results import paper
from sslkit.results.claims import CONSTRUCTION, MAO, RULES, TIMING, WEN, Claim, judge
from sslkit.results.record import ExperimentResult, provenance, publish

PAPERS = Path(__file__).resolve().parents[2] / "shared" / "paper"

# rule -> (paper value, a value of ours just inside the bound, one just outside)
BOUNDS = {
    "error mnist": (0.8, 1.0, 1.01), "error cifar10": (17.9, 18.9, 18.91), "error imagenet": (42.63, 43.63, 43.64),
    "count": (10, 13, 13.01), "flop": (10, 12.5, 12.51), "sparsity": (50, 40, 39.99), "share": (40, 50, 50.01),
    "speedup": (2.0, 2.5, 2.51), "error increase": (2.0, 3.0, 3.01), "error reduction": (-1.0, -0.01, 0.0),
    "claim": (1.0, 1.0, 0.0), "saving": (2.0, 1.5, 1.49),
}


def test_every_rule_holds_inside_its_bound_and_fails_outside():
    assert set(BOUNDS) == set(RULES)
    for name, (p, inside, outside) in BOUNDS.items():
        rule = RULES[name]
        assert rule.holds(inside, p), (name, inside)
        assert not rule.holds(outside, p), (name, outside)
        assert not rule.admits_every_value(p), name
    assert RULES["share"].holds(30, 40) and not RULES["share"].holds(29.9, 40)        # two-sided
    assert RULES["speedup"].holds(1.5, 2.0) and not RULES["speedup"].holds(1.49, 2.0)


def test_a_rule_that_admits_every_value_is_not_counted():
    assert RULES["sparsity"].admits_every_value(10) and not RULES["sparsity"].admits_every_value(10.1)
    assert RULES["flop"].admits_every_value(100)
    v = judge([Claim(WEN, "T", "r", "row sparsity", "conv1", 1.6, 30.0, "sparsity"),
               Claim(WEN, "T", "r", "filters", "conv1", 20, 20, "count", kind=CONSTRUCTION)])
    assert list(v["verdict"]) == ["not counted", "not counted"]
    assert "admits every value" in v["note"][0] and "by construction" in v["note"][1]


def test_structure_is_gated_on_its_rows_error_and_a_claim_can_gate_on_other_rows():
    def claims(error):
        return [Claim(WEN, "T", "A", "error %", paper_value=17.9, ours=error, rule="error cifar10", error=True),
                Claim(WEN, "T", "A", "filters", "conv1", 10, 5, "count"),
                Claim(WEN, "F", "x", "share", paper_value=40, ours=41, rule="share", gate=(("T", "A"),)),
                Claim(WEN, "T", "B", "filters", "conv1", 10, 5, "count")]          # B's error is unknown
    ok, bad = judge(claims(18.0)), judge(claims(61.6))
    assert list(ok["verdict"]) == ["reproduced", "reproduced", "reproduced", "deviates"]
    assert "B's error is not known" in ok["note"][3]
    assert list(bad["verdict"]) == ["deviates"] * 4
    assert "A's error 61.6 is outside its tolerance" in bad["note"][1]


def test_timings_of_the_papers_sparsity_are_checks_and_a_missing_value_after_a_run_deviates():
    v = judge([Claim(WEN, "T", "r", "CPU speedup", "conv1", 2.0, 2.1, "speedup", kind=TIMING),
               Claim(WEN, "T", "r", "CPU speedup", "conv2", 2.0, 9.0, "speedup", kind=TIMING),
               Claim(WEN, "F", "SSL-ResNet-18", "error %", paper_value=7.4, rule="error cifar10",
                     missing="no SSL-ResNet-18: our strengths gave SSL-ResNet-20"),
               Claim(WEN, "F", "SSL-ResNet-18", "other", paper_value=7.4, rule="error cifar10", why_not="a run")])
    assert list(v["verdict"]) == ["check holds", "check fails", "deviates", "not run"]
    assert v["note"][2].startswith("no SSL-ResNet-18")


def test_the_smoke_profile_counts_nothing():
    """Neither a number nor a value found missing after a smoke run counts; what did not run
    stays 'not run'."""
    v = judge([Claim(WEN, "T", "A", "error %", paper_value=0.9, ours=0.9, rule="error mnist", error=True),
               Claim(WEN, "F", "SSL-ResNet-18", "error %", paper_value=7.4, rule="error cifar10",
                     missing="no SSL-ResNet-18: our strengths gave SSL-ResNet-20"),
               Claim(WEN, "F", "B", "error %", paper_value=7.4, rule="error cifar10", why_not="a run")],
              {"profile": "smoke"})
    assert list(v["verdict"]) == ["not counted", "not counted", "not run"]


def test_the_reasons_of_a_row_come_from_its_own_network():
    """A granularity result holds LeNet (MNIST) and the ConvNet (CIFAR-10, JPEG copy): only the
    ConvNet's lines say JPEG, whatever the result's joint data description says."""
    rows = []
    for net in ("lenet", "convnet"):
        for claim in ("sparsity", "compression", "memory"):
            rows.append({"network": net, "granularity": "kernel", "claim": claim, "paper": "", "ours": "x",
                         "value": 0.5, "verdict": "no"})
    meta = {"profile": "converged", "data": "MNIST (idx); JPEG re-encoded CIFAR-10"}
    result = ExperimentResult("granularity", {"claims": pd.DataFrame(rows)}, meta)
    v = judge(granularity.claims(result), meta)
    lenet, convnet = v[v["row"].str.startswith("lenet")], v[v["row"].str.startswith("convnet")]
    assert (lenet["verdict"] == "deviates").all() and (convnet["verdict"] == "deviates").all()
    assert not lenet["note"].str.contains("JPEG").any()
    assert convnet["note"].str.contains("JPEG").all()
    assert set(v["paper"]) == {MAO}



def test_a_granularity_without_a_lossless_step_deviates_with_no_number_of_ours():
    """No step of fine pruning within the tolerance: each claim deviates, saying so, and prints no
    number (not a 0 it did not compute); a network not in the result is "not run"."""
    why = "no step of fine pruning stays within the tolerance"
    rows = [{"network": "convnet", "granularity": g, "claim": c, "paper": "", "ours": why, "value": None,
             "verdict": "not measurable"} for g in ("vector", "kernel") for c in ("sparsity", "compression", "memory")]
    meta = {"profile": "converged", "data": "JPEG re-encoded CIFAR-10"}
    v = judge(granularity.claims(ExperimentResult("granularity", {"claims": pd.DataFrame(rows)}, meta)), meta)
    convnet = v[v["row"].str.startswith("convnet")]
    assert len(convnet) == 3 and (convnet["verdict"] == "deviates").all() and convnet["ours"].isna().all()
    assert convnet["note"].str.contains(why).all()
    assert (v[v["row"].str.startswith("lenet")]["verdict"] == "not run").all()

def _paper_numbers() -> list[tuple[str, float]]:
    """Every number sslkit.results.paper states, and each network's paper error, by where it is."""
    out = []

    def walk(where, obj):
        if isinstance(obj, bool) or obj is None or isinstance(obj, str):
            return
        if isinstance(obj, (int, float)):
            out.append((where, float(obj)))
        elif isinstance(obj, dict):
            for k, v in obj.items():
                if k not in ("row",):
                    walk(f"{where}.{k}", v)
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(f"{where}[{i}]", v)

    for name in dir(paper):
        if name.isupper() and name not in ("TABLES", "TABLE4_DEVICES", "TABLE4_NETWORK"):
            walk(name, getattr(paper, name))
    for name in sorted(models.NETWORKS):
        if models.get(name).paper_error is not None and not name.endswith("10"):
            walk(f"{name}.paper_error", models.get(name).paper_error)
    return out


def _occurs(value: float, text: str) -> bool:
    forms = {f"{value:g}", f"{value:.1f}", f"{value:.2f}"} | ({str(int(value))} if value == int(value) else set())
    return any(re.search(rf"(?<![\d.]){re.escape(f)}(?!\d)", text) for f in forms)


@pytest.mark.skipif(not PAPERS.is_dir(), reason="../shared/paper is not here")
def test_every_number_in_paper_py_is_in_the_papers_text():
    text = " ".join(p.read_text() for p in sorted(PAPERS.glob("*.txt")))
    numbers = _paper_numbers()
    assert len(numbers) > 150
    missing = [(where, v) for where, v in numbers if not _occurs(v, text)]
    assert not missing, missing


def test_publish_replaces_the_folder_as_a_whole(tmp_path):
    meta = {"profile": "quick"}
    first = ExperimentResult("x", {"a": pd.DataFrame({"v": [1]}), "stale": pd.DataFrame({"v": [2]})}, meta)
    folder = publish(first, out=tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv", "provenance.json", "stale.csv"]
    publish(ExperimentResult("x", {"a": pd.DataFrame({"v": [3]})}, meta), out=tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv", "provenance.json"]     # the stale file is gone
    assert pd.read_csv(folder / "a.csv")["v"].tolist() == [3]
    assert [p.name for p in tmp_path.iterdir()] == ["x"]                                 # nothing left beside it

    class Broken:
        def savefig(self, *args, **kwargs):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        publish(ExperimentResult("x", {"a": pd.DataFrame({"v": [4]})}, meta), {"fig": Broken()}, out=tmp_path)
    assert pd.read_csv(folder / "a.csv")["v"].tolist() == [3]                            # the last good one stays
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_provenance_names_the_code_version():
    meta = provenance(profile="smoke", device="cpu", data="none", wall_s=0.0)
    assert meta["commit"] == "unknown" or re.fullmatch(r"[0-9a-f]{12}(\+dirty)?", meta["commit"])
    json.dumps(meta)
    assert not math.isnan(meta["wall_s"])
