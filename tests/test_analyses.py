"""The granularity study (Mao et al.) and the trade-off sweep as experiments: exact sparsity at
every pruning step after retraining, the claims table's shape, and the picking rule of the
trade-off rows on hand-made points."""
import pytest

from sslkit import experiments
from sslkit.experiments.tradeoff import pick, seed_table


def test_every_granularity_keeps_the_ladder_after_retraining(tmp_path, monkeypatch):
    """Each step prunes every conv layer to the ladder's density and the retraining keeps the
    zeros: the conv layers' sparsity is exactly 1 - density at every step and granularity. With
    training off, render records of the steps (no fc weights) render the same tables."""
    ladder = [0.5, 0.2]   # a whole number of groups in every LeNet conv layer at every granularity
    params = {"networks": ["lenet"], "densities": ladder, "profile": "smoke", "progress": False}
    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "runs"))   # this run's stages alone (records below)
    out = experiments.run("granularity", params, out=tmp_path)
    _renders_from_records(params, out.result.tables["curves"], tmp_path, monkeypatch)
    curves = out.result.tables["curves"]
    assert curves.loc[curves["granularity"] == "dense", "sparsity %"].tolist() == [0.0]
    for g in ("fine", "vector", "kernel", "filter"):
        steps = curves[curves["granularity"] == g]
        assert steps["sparsity %"].round(9).tolist() == [50.0, 80.0], g
        assert steps["weights kept"].tolist() == [12750, 5100]      # of 500 + 25,000 conv weights
    # A coarser group needs fewer indices, so at equal sparsity it compresses at least as well.
    at = curves[curves["density"] == 0.2].set_index("granularity")["compression (32-bit)"]
    assert at["fine"] < at["vector"] <= at["kernel"] <= at["filter"]
    claims = out.result.tables["claims"]
    assert len(claims) == 9 and set(claims["claim"]) == {"sparsity", "compression", "memory"}
    assert set(claims["verdict"]) <= {"yes", "no", "fewer, not 2x", "not measurable"}
    assert (tmp_path / "granularity" / "granularity.png").exists()


def _renders_from_records(params, curves, tmp_path, monkeypatch):
    """The run's steps as render records in a store of their own (beside a copy of the
    baselines): with SSLKIT_TRAIN=0 the experiment renders the same curves; with training on a
    record is no stage."""
    import shutil

    import pandas as pd

    from sslkit import pipeline
    from sslkit.pipeline import store
    from sslkit.sparsity.masks import ZeroFreezer
    from sslkit.training.loop import evaluate
    from sslkit.util import settings

    runs, own = settings.runs_dir(), tmp_path / "store"
    shutil.copytree(runs / "baseline", own / "baseline")
    stages = [p for p in (runs / "granularity").glob("*/*.pt") if not p.name.endswith(".render.pt")]
    assert len(stages) == 8   # 4 granularities x 2 steps
    for stage in stages:
        record = store.render_record(stage)
        assert record.stat().st_size < stage.stat().st_size / 3      # LeNet's fc1 is 94% of its weights
        (own / record.relative_to(runs)).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(record, own / record.relative_to(runs))
    folder, name = stages[0].parent.relative_to(runs), stages[0].name
    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "empty"))
    monkeypatch.setenv("SSLKIT_STORE", str(own))
    assert store.holds(folder, name) is None                     # training on: a record is no stage
    monkeypatch.setenv("SSLKIT_TRAIN", "0")
    assert store.holds(folder, name) == own / folder / store.record_name(name)
    with pytest.raises(ValueError, match="not a finished stage"):
        store.render_record(own / folder / store.record_name(name))
    again = experiments.run("granularity", params, out=tmp_path / "again").result.tables["curves"]
    pd.testing.assert_frame_equal(again, curves)
    context = pipeline.setup("lenet", "smoke", device="cpu", progress=False)
    net = context.build()   # a record's left-out weights load as NaN: no error is computed through them
    with pytest.raises(ValueError, match="does not fit the network"):   # the step was trained with masks
        store.train_stage(folder, name.removesuffix(".pt"), net, context, context.schedule("finetune"), seed=0)
    ZeroFreezer(net, ["conv1", "conv2"])   # as the step was trained: with its masks
    store.train_stage(folder, name.removesuffix(".pt"), net, context, context.schedule("finetune"), seed=0)
    assert net.fc1.weight.isnan().all() and net.conv2.weight.isfinite().all()
    with pytest.raises(FloatingPointError, match="non-finite weights"):
        evaluate(net, context.data.test)


def test_granularity_rejects_a_rising_ladder():
    with pytest.raises(ValueError, match="densities must decrease"):
        experiments.run("granularity", {"networks": ["lenet"], "densities": [0.2, 0.5], "profile": "smoke"})



@pytest.mark.parametrize("retrain, message", [({"convnet": 0.1}, r"retrain names no value for \['lenet'\]"),
                                              (0, "retrain must be positive"),
                                              ({"lenet": -0.1}, "retrain must be positive")])
def test_granularity_rejects_a_retraining_that_names_no_positive_fraction(retrain, message):
    with pytest.raises(ValueError, match=message):
        experiments.run("granularity", {"networks": ["lenet"], "retrain": retrain, "profile": "smoke"})

def _point(strength, error, conv1, conv2):
    dense = {"conv1": 576_000, "conv2": 3_200_000}
    total = 100 * (conv1 * dense["conv1"] + conv2 * dense["conv2"]) / 100 / sum(dense.values())
    return {"strength": strength, "error %": error, "total FLOP %": total, "FLOP % conv1": conv1,
            "FLOP % conv2": conv2, "dense FLOP": dense}


PAPER_ROW = {"row": "LeNet 2", "error": 0.8, "flop": [25, 7.6]}


def test_pick_takes_the_lowest_error_within_both_bounds():
    points = [_point(0.005, 0.92, 15, 9.6), _point(0.007, 0.97, 15, 7.5), _point(0.01, 0.99, 10, 4.4),
              _point(0.02, 1.30, 5, 2.0)]
    row = pick(PAPER_ROW, points, margin=0.2)
    assert row["strength"] == 0.007 and row["meets"] and row["falls short by"] == ""
    assert row["paper total FLOP %"] == pytest.approx((0.25 * 576_000 + 0.076 * 3_200_000) / 3_776_000 * 100, abs=0.01)


def test_pick_says_by_how_much_it_falls_short():
    points = [_point(0.005, 0.92, 15, 9.6), _point(0.01, 1.08, 10, 7.0)]
    row = pick(PAPER_ROW, points, margin=0.2)        # the only point under the FLOP is 0.08 pp too high
    assert row["strength"] == 0.01 and not row["meets"]
    assert row["falls short by"] == "error +0.08 pp over the bound"
    row = pick(PAPER_ROW, [_point(0.005, 0.92, 15, 9.6), _point(0.003, 0.9, 30, 12.0)], margin=0.2)
    assert row["strength"] == 0.005 and row["falls short by"] == "conv2 9.6% > 7.6%"


def test_seed_table_is_mean_and_sample_std():
    import pandas as pd

    repeats = pd.DataFrame({"table": ["table1"] * 3, "row": ["LeNet 2"] * 3, "strength": [0.007] * 3,
                            "seed": [0, 1, 2], "error %": [0.9, 1.0, 1.1], "total FLOP %": [10.0, 10.0, 13.0]})
    row = seed_table(repeats).iloc[0]
    assert row["seeds"] == "0, 1, 2" and row["n"] == 3
    assert row["error %"] == "1.00 ± 0.10" and row["total FLOP %"] == "11.00 ± 1.73"


def test_tradeoff_reruns_the_picked_rows_with_each_seed(tmp_path):
    sweeps = {"table1": {"spec": {"filter": 1, "channel": 1}, "strengths": [0.01]}}
    out = experiments.run("tradeoff", {"sweeps": sweeps, "seeds": [0, 1], "profile": "smoke", "progress": False},
                          out=tmp_path)
    tables = out.result.tables
    assert tables["points"]["strength"].tolist() == [0.01] and tables["points"]["seed"].tolist() == [0]
    assert tables["picked"]["row"].tolist() == ["LeNet 2", "LeNet 3"]
    assert tables["seeds"]["seeds"].tolist() == ["0, 1", "0, 1"] and tables["seeds"]["n"].tolist() == [2, 2]
    assert (tmp_path / "tradeoff" / "tradeoff.png").exists()
    with pytest.raises(ValueError, match="sweeps\\['table1'\\] must be"):
        experiments.run("tradeoff", {"sweeps": {"table1": {"spec": {"filter": 1}}}, "profile": "smoke"})
