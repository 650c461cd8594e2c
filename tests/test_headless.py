"""Headless runs of the notebooks' experiments (a GPU machine without papermill): a run
stopped by its deadline keeps a checkpoint in the run store and the next call goes on from
it to the same result as an uninterrupted run; a notebook then renders from the store."""

import pandas as pd
import pytest
import torch

from sslkit import experiments
from sslkit.app import headless
from sslkit.util import settings


def test_plan_reads_the_notebook():
    name, values, fixed = headless.plan("table1_lenet_filters_channels")
    assert name == "ssl" and fixed == {"table": "table1"}
    assert values["profile"] == "converged" and "LeNet 2" in values["runs"]


def test_deadline_stops_with_a_checkpoint_and_the_next_call_goes_on(monkeypatch, tmp_path):
    store = tmp_path / "store"
    monkeypatch.setenv("SSLKIT_STORE", str(store))
    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "elsewhere"))       # headless writes to the store
    left = headless.run(["baselines"], profile="smoke", budget_s=0.0, out=str(tmp_path / "figures"))
    assert left == ["baselines"]                                        # stopped after its first iteration
    ckpt = next(store.glob("baseline/*/baseline.ckpt"))
    assert torch.load(ckpt, weights_only=False)["iter"] == 1
    assert headless.run(["baselines"], profile="smoke", out=str(tmp_path / "figures")) == []
    final = next(store.glob("baseline/*/baseline.pt"))
    assert not ckpt.exists()
    resumed = torch.load(final, weights_only=False)

    monkeypatch.setenv("SSLKIT_STORE", str(tmp_path / "other"))         # an uninterrupted run
    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "other"))
    assert headless.run(["baselines"], profile="smoke", out=str(tmp_path / "figures2")) == []
    plain = torch.load(next((tmp_path / "other").glob("baseline/*/baseline.pt")), weights_only=False)
    for key, value in plain["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    assert plain["result"]["test_error"] == resumed["result"]["test_error"]

    monkeypatch.setenv("SSLKIT_STORE", str(store))                      # a user's notebook, own cache
    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "user-cache"))
    outcome = experiments.run("baseline", {"model": "lenet", "profile": "smoke", "progress": False},
                              out=str(tmp_path / "figures3"))
    assert outcome.result.tables["baseline"]["our error %"].iloc[0] == round(100 * plain["result"]["test_error"], 2)
    assert not (tmp_path / "user-cache").exists()                        # rendered from the store, not retrained
    assert settings.deadline() is None                                   # the command leaves no deadline behind


def test_parameters_replace_the_notebooks_values_and_unknown_ones_are_refused(monkeypatch, tmp_path):
    """headless -p NAME=VALUE: the value reaches the experiment (here a 3-iteration baseline);
    a name that is not in the parameters cell stops before anything runs."""
    monkeypatch.setenv("SSLKIT_STORE", str(tmp_path / "store"))
    with pytest.raises(ValueError, match="baselines has no parameter 'iterz'"):
        headless.run(["baselines"], profile="smoke", parameters={"iterz": 3})
    assert not (tmp_path / "store").exists()
    assert headless.run(["baselines"], profile="smoke", parameters={"iters": 3}, out=str(tmp_path / "fig")) == []
    stage = torch.load(next((tmp_path / "store").glob("baseline/*/baseline.pt")), weights_only=False)
    assert stage["result"]["iters"] == 3


def test_gpu_session_runs_real_notebooks_with_their_own_parameters(tmp_path):
    """Every step of the prepared GPU session (python -m sslkit gpu) names notebooks that exist
    and only parameters of theirs, so that a typo cannot cost a lent machine's minutes."""
    from sslkit.app import gpu

    assert gpu.thread_counts(16) == [1, 2, 4, 8, 16] and gpu.thread_counts(6) == [1, 2, 4, 6]
    assert gpu.thread_counts(1) == [1]
    for step in gpu.steps("cuda", "converged", tmp_path, gpu.thread_counts(16)):
        argv = step["argv"][3:]
        assert argv[0] == "headless", step
        names = [argv[i + 1].split("=", 1)[0] for i, a in enumerate(argv) if a == "-p"]
        notebooks = [a for i, a in enumerate(argv[1:], 1) if not a.startswith("-") and argv[i - 1] not in
                     ("-p", "--profile", "--out", "--budget-s")]
        assert notebooks, step
        for nb in notebooks:
            assert set(names) <= set(headless.plan(nb)[1]), (nb, names)


def test_parts_cut_a_sweep_into_single_points():
    _, values, fixed = headless.plan("table1_lenet_filters_channels")
    points = headless.parts("ssl", values)
    assert [list(p["runs"]) for p in points] == [[k] for k in values["runs"]]
    assert all(p["speed"] is False for p in points)                     # the rendering run times
    assert headless.parts("baseline", {"model": "lenet"}) == [{"model": "lenet"}]   # no sweep declared
    assert headless.parts("depth", {"strengths": [0.1]}) == [{"strengths": [0.1]}]  # one point: as it is


@pytest.mark.slow
def test_jobs_train_the_sweep_concurrently_to_the_serial_result(monkeypatch, tmp_path):
    """--jobs 2: the two rows of Table 1 train in two processes, the shared baseline once (the
    other process waits for it), to the same weights and table as one process one after another."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # the same thread count in every process, so the same rounding
    notebook = "table1_lenet_filters_channels"
    try:
        tables = {}
        for jobs in (2, 1):
            store = tmp_path / f"store{jobs}"
            monkeypatch.setenv("SSLKIT_STORE", str(store))
            monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "unused"))
            assert headless.run([notebook], profile="smoke", out=str(tmp_path / f"fig{jobs}"), jobs=jobs,
                                parameters={"speed": False}) == []   # timing is not what this checks
            assert len(list(store.glob("baseline/*/baseline.pt"))) == 1
            assert len(list(store.glob("ssl/*/finetune.pt"))) == 2
            table = pd.read_csv(tmp_path / f"fig{jobs}" / "table1_lenet" / "comparison.csv")
            tables[jobs] = table.drop(columns=[c for c in table if "speedup" in c])   # timing varies
        for final in (tmp_path / "store1").glob("*/*/*.pt"):
            a = torch.load(final, weights_only=False)
            b = torch.load(tmp_path / "store2" / final.relative_to(tmp_path / "store1"), weights_only=False)
            assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items()), final
        pd.testing.assert_frame_equal(tables[1], tables[2])
    finally:
        torch.set_num_threads(threads)
