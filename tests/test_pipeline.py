"""The structure every experiment stands on: network records, the SSL pipeline without a
paper table, parameter checking by annotation, and Caffe's per-parameter multipliers."""
import pytest
import torch

from sslkit import experiments, models, pipeline
from sslkit.experiments import params
from sslkit.training.loop import train
from sslkit.training.solver import Schedule
from sslkit.util import settings


def test_every_record_builds_its_network_for_its_input():
    for name, network in models.NETWORKS.items():
        net = network.build()
        with torch.no_grad():
            out = net.eval()(torch.zeros(1, *network.input_shape))
        assert out.shape[0] == 1, name
        for profile, sizes in network.sizes.items():
            assert sizes.baseline > 0 and set(network.solvers) >= {"baseline", "ssl", "finetune"}, (name, profile)


def test_the_smoke_stand_in_narrows_its_fc_layers_and_only_its_keys_say_so():
    """Sizes.hidden: the smoke CaffeNet is built 256 wide after the convs (same layers, same conv
    shapes); the field is in a stage key only where it is set, so every other key stays."""
    network = models.get("caffenet10")
    smoke, converged = network.sizes["smoke"], network.sizes["converged"]
    narrow, full = network.build(**smoke.build_kwargs()), network.build(**converged.build_kwargs())
    assert (narrow.fc6.out_features, narrow.fc7.in_features, narrow.fc8.in_features) == (256, 256, 256)
    assert full.fc6.out_features == 4096 and narrow.conv5.weight.shape == full.conv5.weight.shape
    assert smoke.key()["hidden"] == 256 and "hidden" not in converged.key()
    assert all("hidden" not in s.key() for n in models.NETWORKS.values() for p, s in n.sizes.items()
               if (n.name, p) != ("caffenet10", "smoke"))


def test_convnet_multipliers_reach_the_optimizer(mnist_small):
    """cifar10_full: biases at 2x the lr without weight decay, the classifier's weight decay x250."""
    network = models.get("convnet")
    net = network.build()
    groups = network.param_groups(net)
    by_name = {n: p for n, p in net.named_parameters()}
    seen = {}
    captured = {}
    sched = Schedule(1, 1e-3, weight_decay=4e-3, batch_size=2)
    x = torch.zeros(4, 3, 32, 32)
    data = type(mnist_small[0])(x, torch.zeros(4, dtype=torch.long))
    train(net, data, sched, param_groups=groups, progress=False,
          hooks=[type("Spy", (), {"post_step": lambda self, m, opt, it: captured.update(opt=opt)})()])
    for group in captured["opt"].param_groups:
        for p in group["params"]:
            seen[next(n for n, q in by_name.items() if q is p)] = (group["lr"], group["weight_decay"])
    assert seen["conv1.bias"] == pytest.approx((2e-3, 0.0))
    assert seen["fc.bias"] == pytest.approx((2e-3, 0.0))
    assert seen["fc.weight"] == pytest.approx((1e-3, 4e-3 * 250))
    assert seen["conv2.weight"] == pytest.approx((1e-3, 4e-3))
    assert len(seen) == len(by_name)
    assert models.get("lenet").param_groups(models.build("lenet")) is None   # no multipliers: one group


def test_parameters_are_checked_by_their_annotations():
    from sslkit.experiments import baseline, ssl

    with pytest.raises(ValueError, match="'iters' should be"):
        params.check(baseline.run, {"iters": 1.5})           # default None, annotated int | None
    with pytest.raises(ValueError, match="'data_root' should be"):
        params.check(baseline.run, {"data_root": 5})
    with pytest.raises(ValueError, match="'runs' should be"):
        params.check(ssl.run, {"runs": "notadict"})
    with pytest.raises(ValueError, match="'speed' should be"):
        params.check(ssl.run, {"speed": 1})                  # a bool is not an int, nor the reverse
    assert params.check(ssl.run, {"threshold": 1, "runs": None, "figures": ["a"]})  # int fits float
    with pytest.raises(ValueError, match=r"needs parameter\(s\) \['model'\]"):
        experiments.run("baseline", {"profile": "smoke"})


def test_ssl_pipeline_without_a_paper_table():
    """Any experiment can run the pipeline: SSL starts from the baseline's weights, zeros
    stay frozen, and the compacted network computes what the fine-tuned one does."""
    context = pipeline.setup("lenet", "smoke", device="cpu", progress=False, baseline=20, ssl=20, finetune=10)
    base = pipeline.baseline(context)
    spec = {"conv2": {"filter": 8.0}}                       # strong enough to remove filters in 20 steps
    run = pipeline.ssl(context, pipeline.Regularization(spec, mode="proximal"), base)
    assert run.baseline_error == base[1].test_error
    assert run.compact_error == run.error                  # compaction changes nothing computed
    assert run.compact_parameters < run.parameters
    rep = run.report.set_index("layer")
    assert rep.loc["conv2", "filters left"] < rep.loc["conv2", "filters"]
    saved = torch.load(settings.runs_dir() / pipeline.ssl_dir(context, pipeline.Regularization(spec, mode="proximal"))
                       / "finetune.pt", weights_only=False)["model"]
    masks = {k: v for k, v in saved.items() if k.endswith("weight_mask")}
    assert masks and all(v.dtype == torch.bool for v in masks.values())   # a quarter of the bytes in the store
    assert all(torch.equal(v, saved[k.removesuffix("_mask")] != 0) for k, v in masks.items())
    outcome = experiments.run("ssl", {"model": "lenet", "runs": {"mine": spec}, "mode": "proximal",
                                      "profile": "smoke", "baseline_iters": 20, "ssl_iters": 20,
                                      "finetune_iters": 10, "speed": False, "progress": False, "device": "cpu"})
    assert "comparison" not in outcome.result.tables and outcome.result.name == "ssl_lenet"
    assert outcome.result.tables["runs"]["fine-tuned error %"].iloc[0] == round(100 * run.error, 2)  # from the cache


def test_each_stage_starts_from_the_right_weights(monkeypatch):
    """SSL starts from the baseline's weights; fine-tuning from the SSL stage's (not the
    baseline's, nor a fresh initialisation)."""
    import torch

    context = pipeline.setup("lenet", "smoke", device="cpu", progress=False, baseline=6, ssl=4, finetune=2)
    base = pipeline.baseline(context)
    seen, real = {}, pipeline.store.train_stage

    def spy(folder, stage, net, *args, **kwargs):
        seen[stage] = {k: v.clone() for k, v in net.state_dict().items()}
        result = real(folder, stage, net, *args, **kwargs)
        seen[stage + " end"] = {k: v.clone() for k, v in net.state_dict().items()}
        return result

    monkeypatch.setattr(pipeline.store, "train_stage", spy)
    pipeline.ssl(context, pipeline.Regularization({"filter": 1e-3}, weighted=True), base)
    for k, v in base[0].state_dict().items():
        assert torch.equal(seen["ssl"][k], v), k
    changed = [k for k, v in base[0].state_dict().items() if not torch.equal(seen["finetune"][k], v)]
    assert changed                                                   # SSL trained before fine-tuning
    for k, ended in seen["ssl end"].items():                         # ... from where SSL ended
        v = seen["finetune"][k]
        assert torch.equal(v, ended) or torch.equal(v, ended * (v != 0)), k   # zeros propagated, nothing else


def test_a_kept_fine_tuned_stage_needs_only_the_ssl_stages_result(monkeypatch, tmp_path):
    """With finetune.pt kept, ssl.pt may be a result-only render record (store.slim): the run loads to the
    same network, errors and compacted outputs without training (training on or off); without
    finetune.pt, SSL trains again from the baseline (never fine-tuning from a record's weights)."""
    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path))
    context = pipeline.setup("lenet", "smoke", device="cpu", progress=False, baseline=6, ssl=4, finetune=2)
    base, reg = pipeline.baseline(context), pipeline.Regularization({"filter": 2e-3, "channel": 2e-3})
    first = pipeline.ssl(context, reg, base)
    folder = tmp_path / pipeline.ssl_dir(context, reg)
    assert pipeline.store.slim(tmp_path) == [folder / "ssl.render.pt"] and not (folder / "ssl.pt").exists()
    saved = torch.load(folder / "ssl.render.pt", weights_only=False)
    assert saved["model"] == {} and len(saved["left_out"]) == len(first.model.state_dict())
    x = context.data.test.x[:16]

    def same(run):
        assert (run.ssl_error, run.error, run.compact_error) == (first.ssl_error, first.error, first.compact_error)
        assert all(torch.equal(v, first.model.state_dict()[k]) for k, v in run.model.state_dict().items())
        assert torch.equal(run.compact.eval()(x), first.compact.eval()(x))

    real = pipeline.store.train

    def no_training(*args, **kwargs):
        raise AssertionError("a stage trained")

    monkeypatch.setattr(pipeline.store, "train", no_training)
    same(pipeline.ssl(context, reg, base))
    monkeypatch.setenv("SSLKIT_TRAIN", "0")
    same(pipeline.ssl(context, reg, base))
    (folder / "finetune.pt").rename(tmp_path / "finetune.pt")
    with pytest.raises(pipeline.StageMissing, match="is not in the run store"):   # SSL's weights: not in a record
        pipeline.ssl(context, reg, base)
    monkeypatch.delenv("SSLKIT_TRAIN")
    monkeypatch.setattr(pipeline.store, "train", real)
    same(pipeline.ssl(context, reg, base))          # SSL and fine-tuning trained again, to the same weights
    assert (folder / "ssl.pt").exists()


def test_a_shortened_profile_multiplies_the_strengths():
    assert pipeline.scale_spec({"conv1": {"filter": 1e-3}, "shape": 2e-3}, 10) == \
        {"conv1": {"filter": pytest.approx(1e-2)}, "shape": pytest.approx(2e-2)}
    for network in models.NETWORKS.values():
        if "paper" in network.sizes:
            assert network.sizes["paper"].strength_factor == 1.0, network.name   # the paper's strengths as given


@pytest.mark.parametrize("device, message", [("gpu", "unknown device 'gpu'"), ("mps", "not supported"),
                                             ("cuda", "no CUDA device")])
def test_a_device_this_machine_lacks_is_one_clear_error(device, message):
    import torch

    from sslkit import experiments

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=message):
        experiments.run("baseline", {"model": "lenet", "profile": "smoke", "device": device})


def test_a_bad_device_on_the_command_line_exits_2_with_one_line(capsys):
    from sslkit.app.cli import main

    assert main(["run", "speed", "--profile", "smoke", "--device", "gpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unknown device 'gpu': use 'cpu' or 'cuda' (or leave it unset)"]


def test_a_truncated_cached_stage_is_named_and_recomputed(capsys):
    context = pipeline.setup("lenet", "smoke", device="cpu", progress=False, baseline=3, ssl=2, finetune=2)
    net, first = pipeline.baseline(context)
    stage = settings.runs_dir() / pipeline.baseline_dir(context) / "baseline.pt"
    stage.write_bytes(stage.read_bytes()[:1000])                  # a crash mid-copy, a full disk
    again, second = pipeline.baseline(context)
    err = capsys.readouterr().err
    assert f"cached file {stage} is unreadable" in err and "recomputing" in err
    assert stage.with_name("baseline.pt.corrupt").exists() and stage.exists()
    assert second.test_error == first.test_error                  # retrained, deterministically
    for (k, a), b in zip(net.state_dict().items(), again.state_dict().values()):
        assert a.equal(b), k


def test_with_training_off_a_stored_stage_loads_and_a_missing_one_is_one_clear_error(monkeypatch, capsys, tmp_path):
    """SSLKIT_TRAIN=0 (make reproduce TRAIN=0): what the stores hold renders; a stage they lack
    raises StageMissing naming it (the command line: one line, exit 2), and nothing is written."""
    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "runs"))   # not the cache other tests share
    context = pipeline.setup("lenet", "smoke", device="cpu", progress=False, baseline=3, ssl=2, finetune=2)
    trained, _ = pipeline.baseline(context)
    monkeypatch.setenv("SSLKIT_TRAIN", "0")
    loaded, _ = pipeline.baseline(context)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in trained.state_dict().items())
    reg = pipeline.Regularization({"filter": 1e-3})
    folder = pipeline.ssl_dir(context, reg)
    with pytest.raises(pipeline.StageMissing, match=f"stage {folder / 'ssl'} is not in the run store"):
        pipeline.ssl(context, reg, (trained, _))
    assert not (settings.runs_dir() / folder).exists()
    forced = pipeline.setup("lenet", "smoke", device="cpu", progress=False, baseline=3, ssl=2, finetune=2, force=True)
    with pytest.raises(pipeline.StageMissing, match="training is off"):
        pipeline.baseline(forced)
    assert (settings.runs_dir() / pipeline.baseline_dir(context) / "baseline.pt").exists()   # force deleted nothing
    from sslkit.app.cli import main

    assert main(["run", "baseline", "-p", "model=lenet", "--profile", "smoke", "--seed", "7", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: stage baseline/") and "SSLKIT_TRAIN=0" in err[0]


def test_a_finished_stage_is_deflated_and_loads_with_plain_torch_load(monkeypatch, tmp_path):
    """Stages are kept with their records deflated (the committed store must travel within
    64 MiB): the file is smaller than torch.save's, any torch.load reads it (weights_only too),
    equal to the trained network, and writing the same stage twice gives the same bytes."""
    import zipfile

    from sslkit.util.io import atomic_torch_save

    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "runs"))   # it rewrites the stage: not the shared one
    context = pipeline.setup("lenet", "smoke", device="cpu", progress=False, baseline=3, ssl=2, finetune=2)
    net, _ = pipeline.baseline(context)
    stage = settings.runs_dir() / pipeline.baseline_dir(context) / "baseline.pt"
    with zipfile.ZipFile(stage) as z:   # as the stage was trained: its pickle deflated
        assert z.getinfo("archive/data.pkl").compress_type == zipfile.ZIP_DEFLATED
    with torch.no_grad():   # a sparse network: its zero groups deflate
        net.conv2.weight[::2] = 0
    saved = torch.load(stage, weights_only=False)
    saved["model"] = net.state_dict()
    atomic_torch_save(saved, stage, compress=True)
    with zipfile.ZipFile(stage) as z:
        kinds = {i.filename.rsplit("/", 1)[-1]: i.compress_type for i in z.infolist()}
    names = list(net.state_dict())   # archive/data/<n>: the n-th tensor saved
    assert kinds[str(names.index("conv2.weight"))] == zipfile.ZIP_DEFLATED      # half zeros
    assert kinds[str(names.index("fc1.weight"))] == zipfile.ZIP_STORED          # dense: stored as is
    plain = stage.with_name("plain.pt")
    torch.save(saved, plain)
    assert stage.stat().st_size < plain.stat().st_size
    for name, weights_only in (("plain", True), ("deflated", True), ("deflated", False)):
        state = torch.load(plain if name == "plain" else stage, weights_only=weights_only)["model"]
        assert state.keys() == net.state_dict().keys()
        assert all(state[k].equal(v) for k, v in net.state_dict().items()), name
    again = stage.with_name("again.pt")
    atomic_torch_save(saved, again, compress=True)
    assert again.read_bytes() == stage.read_bytes()
    with zipfile.ZipFile(again) as z:   # no clock in the bytes
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
