"""bf16 mixed precision (sslkit.training.runtime): keyed and recorded, resumable to the same weights, and
the group-Lasso step, zeroing and masks acting on float32 weights outside the autocast."""
import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn as nn

from sslkit import experiments, models, pipeline
from sslkit.experiments.precision import verdict
from sslkit.sparsity.masks import ZeroFreezer
from sslkit.sparsity.regularizers import GroupLasso
from sslkit.training.data import TensorData
from sslkit.training.loop import OutOfTime, train
from sslkit.training.runtime import Runtime, native_bf16
from sslkit.training.solver import Schedule



@pytest.fixture
def bf16_cpu(monkeypatch, tmp_path):
    """bf16 on this CPU even where it has no native bfloat16 (AVX-512 BF16 or AMX): autocast then
    runs emulated, only slower, so that these tests run on every CI machine. Their stages go to a
    cache of their own: a bf16 stage in the shared one would serve later tests on such a CPU."""
    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "runs"))
    if not native_bf16(torch.device("cpu")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
ASSETS = Path(__file__).parent / "assets"


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10))


def _data(rt: Runtime) -> TensorData:
    g = torch.Generator().manual_seed(1)
    return TensorData(rt.memory_format(torch.randn(64, 3, 8, 8, generator=g)), torch.randint(0, 10, (64,), generator=g))


def _without_bf16(monkeypatch) -> None:
    """This CPU as one without native bfloat16 (neither AVX-512 BF16 nor AMX)."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)


def test_fallback_to_fp32_where_the_device_has_no_bf16(monkeypatch):
    _without_bf16(monkeypatch)
    rt = Runtime.resolve("cpu", "bf16")
    assert (rt.precision, rt.channels_last) == ("fp32", False)
    assert "bf16 asked for" in rt.note
    with pytest.raises(ValueError, match="unknown precision"):
        Runtime.resolve("cpu", "fp16")


def test_precision_keys_the_stages_and_fp32_keys_are_unchanged(bf16_cpu):
    fp32 = pipeline.setup("lenet", "smoke", progress=False, precision="fp32")
    bf16 = pipeline.setup("lenet", "smoke", progress=False, precision="bf16")
    assert pipeline.baseline_dir(fp32) != pipeline.baseline_dir(bf16)
    reg = pipeline.Regularization({"filter": 1e-3})
    assert pipeline.ssl_dir(fp32, reg) != pipeline.ssl_dir(bf16, reg)
    # An fp32 key is the key every stage had before precisions existed: no precision entry.
    s = fp32.sizes
    key = dict(model="lenet", sizes={"baseline": s.baseline, "train": s.train, "test": s.test}, seed=0,
               data=fp32.data.identity, solver=fp32.schedule("baseline"), multipliers=())
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert pipeline.baseline_dir(fp32) == Path("baseline") / digest


def test_a_bf16_stage_from_the_store_serves_a_cpu_without_bf16(monkeypatch, tmp_path):
    """A stage trained in bf16 (as committed from a CPU with AVX-512 BF16) is found and used, not
    retrained, on a CPU that falls back to fp32; the provenance names the stage's precision. A
    stage the store lacks goes to the fp32 key, and so does a forced retrain of a stored one."""
    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SSLKIT_STORE", str(tmp_path / "store"))
    cpu = torch.device("cpu")
    # The bf16 stage: autocast bf16 runs (emulated, slowly) on any CPU; the runtime is set by hand.
    bf16 = dataclasses.replace(pipeline.setup("lenet", "smoke", progress=False, precision="bf16"),
                               runtime=Runtime(cpu, "bf16", "bf16"))
    trained, _ = pipeline.baseline(bf16)
    _without_bf16(monkeypatch)
    fallback = pipeline.setup("lenet", "smoke", progress=False, precision="bf16")
    assert (fallback.runtime.precision, fallback.runtime.requested) == ("fp32", "bf16")
    assert pipeline.baseline_dir(fallback) == pipeline.baseline_dir(bf16)
    monkeypatch.setenv("SSLKIT_TRAIN", "0")   # loading must not train
    net, _ = pipeline.baseline(fallback)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in trained.state_dict().items())
    assert fallback.baselines["lenet"]["precision"] == "bf16"
    assert fallback.precision_note.startswith("bf16 autocast") and "from the store" in fallback.precision_note
    # Nothing in the store for seed 1: its folder is the fp32 one, as a plain fp32 run's.
    other = pipeline.setup("lenet", "smoke", progress=False, precision="bf16", seed=1)
    fp32 = pipeline.setup("lenet", "smoke", progress=False, precision="fp32", seed=1)
    bf16_seed1 = dataclasses.replace(fp32, runtime=Runtime(cpu, "bf16", "bf16"))
    assert pipeline.baseline_dir(other) == pipeline.baseline_dir(fp32) != pipeline.baseline_dir(bf16_seed1)
    assert other.precision_note == other.runtime.note and "bf16 asked for" in other.precision_note
    # An SSL folder counts only with its last stage: a bf16 ssl.pt alone (fine-tuning stopped by a
    # deadline) must not make this CPU fine-tune in fp32 into the bf16 folder.
    reg = pipeline.Regularization({"filter": 1e-3})
    bf16_ssl = tmp_path / "runs" / pipeline.ssl_dir(bf16, reg)
    bf16_ssl.mkdir(parents=True)
    (bf16_ssl / "ssl.pt").touch()
    assert pipeline.ssl_dir(fallback, reg) != pipeline.ssl_dir(bf16, reg)
    (bf16_ssl / "finetune.pt").touch()
    assert pipeline.ssl_dir(fallback, reg) == pipeline.ssl_dir(bf16, reg)
    # A forced retrain on this CPU trains fp32, so it goes to the fp32 key, not over the bf16 stage.
    forced = pipeline.setup("lenet", "smoke", progress=False, precision="bf16", force=True)
    assert pipeline.baseline_dir(forced) == pipeline.baseline_dir(
        pipeline.setup("lenet", "smoke", progress=False, precision="fp32")) != pipeline.baseline_dir(bf16)


@pytest.mark.skipif(not (Path(os.environ.get("SSLKIT_DATA", "")) / "cifar10-jpeg").is_dir(),
                    reason="the asset was trained on ../shared/data's CIFAR-10")
def test_a_stage_trained_before_the_refactors_still_loads(monkeypatch, tmp_path):
    """tests/assets/runs holds a ConvNet smoke baseline written by the code of stop 21: the same
    key must find it, and loading it must not train (a deadline in the past would stop training).
    The cache is empty, so that the stage found is the asset, not one an earlier test trained."""
    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SSLKIT_STORE", str(ASSETS / "runs"))
    monkeypatch.setenv("SSLKIT_DEADLINE", str(time.time() - 1))
    context = pipeline.setup("convnet", "smoke", progress=False)
    assert pipeline.is_trained(context), pipeline.baseline_dir(context)
    net, res = pipeline.baseline(context)
    saved = torch.load(ASSETS / "runs" / pipeline.baseline_dir(context) / "baseline.pt", weights_only=False)
    assert res.test_error == saved["result"]["test_error"]
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in saved["model"].items())


def test_bf16_run_records_its_precision(bf16_cpu):
    outcome = experiments.run("baseline", {"model": "lenet", "profile": "smoke", "precision": "bf16",
                                           "progress": False})
    assert outcome.result.meta["precision"].startswith("bf16 autocast")
    assert outcome.result.tables["baseline"]["precision"].item() == "bf16"
    assert json.loads((outcome.folder / "provenance.json").read_text())["precision"].startswith("bf16")


def test_bf16_stage_killed_mid_run_resumes_to_the_same_weights(tmp_path, bf16_cpu):
    rt = Runtime.resolve("cpu", "bf16")
    sched = Schedule(iters=8, lr=0.05, policy="multistep", stepvalues=(4,), batch_size=16)
    whole = rt.prepare(_net())
    train(whole, _data(rt), sched, progress=False, precision="bf16")
    killed = rt.prepare(_net())
    ckpt = tmp_path / "stage.ckpt"
    with pytest.raises(OutOfTime):
        train(killed, _data(rt), sched, progress=False, precision="bf16", checkpoint=ckpt, deadline=time.time())
    assert torch.load(ckpt, weights_only=False)["iter"] == 1
    resumed = rt.prepare(_net())
    train(resumed, _data(rt), sched, progress=False, precision="bf16", checkpoint=ckpt)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert any(not torch.equal(a, b) for a, b in zip(whole.state_dict().values(), _net().state_dict().values()))


class _Spy:
    """Records, at each post-step, the weights the optimizer left and whether autocast was on."""

    def __init__(self, layer: nn.Module):
        self.layer, self.seen = layer, []

    def post_step(self, model, optimizer, it):
        self.seen.append((self.layer.weight.detach().clone(), torch.is_autocast_enabled("cpu")))


def test_proximal_step_and_zeroing_act_on_fp32_weights_under_bf16(bf16_cpu):
    """After each SGD step the proximal group-Lasso step scales each filter of conv1 by
    max(0, 1 - lr*lambda/||w||) in float32 (computed here in float64 from the weights the step
    left), weights below the threshold become exact zeros, and no hook runs under autocast."""
    rt = Runtime.resolve("cpu", "bf16")
    net = rt.prepare(_net())
    conv = net[0]
    lam, lr = 1.5, 0.1
    spy = _Spy(conv)
    reg = GroupLasso.from_spec(net, {"0": {"filter": lam}}, mode="proximal", threshold=1e-4)
    after = []
    train(net, _data(rt), Schedule(iters=4, lr=lr, momentum=0.0, batch_size=16), progress=False, precision="bf16",
          hooks=[spy, reg, type("After", (), {"post_step": lambda self, m, o, it: after.append(conv.weight.detach().clone())})()])
    for (before, autocast_on), out in zip(spy.seen, after):
        assert not autocast_on and before.dtype == out.dtype == torch.float32
        w = before.double()
        norms = w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        expected = w * torch.clamp(1 - lr * lam / norms, min=0)
        expected = torch.where(expected.abs() < 1e-4, torch.zeros_like(expected), expected)
        torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-7)
    assert (after[-1].flatten(1).norm(dim=1) == 0).any()   # lambda this large zeroes whole filters


def test_frozen_zeros_stay_exactly_zero_under_bf16(bf16_cpu):
    rt = Runtime.resolve("cpu", "bf16")
    net = rt.prepare(_net())
    with torch.no_grad():
        net[2].weight[:3] = 0
    freezer = ZeroFreezer(net)
    train(net, _data(rt), Schedule(iters=5, lr=0.1, weight_decay=1e-3, batch_size=16), progress=False,
          precision="bf16", hooks=[freezer])
    assert net[2].weight.dtype == torch.float32
    assert torch.count_nonzero(net[2].weight[:3]) == 0 and torch.count_nonzero(net[2].weight[3:]) > 0


def test_verdict_compares_the_mean_difference_with_the_seed_spread():
    assert verdict([1.0, 1.2, 1.1], [1.15, 1.05, 1.2]) == "within the seed spread"
    assert verdict([1.0, 1.02, 1.01], [1.3, 1.32, 1.31]) == "bf16 costs more than the seed spread"
    assert verdict([1.3, 1.32, 1.31], [1.0, 1.02, 1.01]) == "bf16 better by more than the seed spread"


def test_every_converged_record_names_a_precision_and_the_profile_is_the_default():
    from sslkit.util import profiles

    assert profiles.DEFAULT == "converged"
    for name, network in models.NETWORKS.items():
        if "converged" in network.sizes:
            assert network.sizes["converged"].precision in ("fp32", "bf16"), name


def test_on_a_cpu_without_bf16_the_fallback_runs_are_not_counted_twice(monkeypatch, tmp_path):
    """Asked for bf16 on a CPU without it (and no bf16 stage stored), a seed trains fp32: the
    same stage as its fp32 run, so the table holds it once."""
    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "runs"))
    _without_bf16(monkeypatch)
    result = experiments.run("precision", {"networks": {"lenet": None}, "seeds": [0, 1], "profile": "smoke",
                                           "progress": False}).result
    runs = result.tables["runs"]
    assert list(zip(runs["seed"], runs["precision"])) == [(0, "fp32"), (1, "fp32")]
    assert (result.tables["summary"]["seeds"] == 2).all()


def test_the_precision_table_renders_from_result_only_baseline_records(monkeypatch, tmp_path):
    """The precision study reads no weights: with each baseline.pt replaced by its result-only
    record it renders the same runs table without training, training on or off."""
    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path))
    params = {"networks": {"lenet": None}, "seeds": [0, 1], "precisions": ["fp32"], "profile": "smoke",
              "progress": False}
    first = experiments.run("precision", params).result.tables["runs"]
    stages = sorted(tmp_path.glob("baseline/*/baseline.pt"))
    assert len(stages) == 2
    for stage in stages:
        pipeline.store.render_record(stage, weights=False)
        stage.unlink()

    def no_training(*args, **kwargs):
        raise AssertionError("a stage trained")

    monkeypatch.setattr(pipeline.store, "train", no_training)
    for training in ("1", "0"):
        monkeypatch.setenv("SSLKIT_TRAIN", training)
        again = experiments.run("precision", params).result.tables["runs"]
        pd.testing.assert_frame_equal(again, first)
    context = pipeline.setup("lenet", "smoke", precision="fp32", progress=False)
    with pytest.raises(pipeline.StageMissing):   # training off: a result-only record is no network
        pipeline.baseline(context)
