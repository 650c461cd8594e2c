"""The trainer: Caffe lr policies, determinism, and exact resume after an interruption."""
from types import SimpleNamespace as Hooks  # any object with the hook methods it needs

import pytest
import torch

from sslkit import models
from sslkit.training.loop import evaluate, seed_everything, train
from sslkit.training.solver import Schedule


def test_caffe_lr_policies():
    assert Schedule(10, 0.01).lr_at(9) == 0.01
    s = Schedule(100, 0.1, policy="step", gamma=0.1, stepsize=30)
    assert [round(s.lr_at(i), 6) for i in (0, 29, 30, 60, 99)] == [0.1, 0.1, 0.01, 0.001, 0.0001]
    m = Schedule(64, 0.1, policy="multistep", stepvalues=(32, 48))
    assert [round(m.lr_at(i), 6) for i in (31, 32, 47, 48)] == [0.1, 0.01, 0.01, 0.001]
    inv = Schedule(10_000, 0.01, policy="inv", gamma=1e-4, power=0.75)
    assert inv.lr_at(0) == 0.01
    assert inv.lr_at(10_000) == pytest.approx(0.01 * 2 ** -0.75)  # Caffe LeNet's final lr: 0.00595
    with pytest.raises(ValueError):
        Schedule(10, 0.1, policy="cosine")


class Crash(Exception):
    pass


def _run(data, test, ckpt=None, crash_at=None, iters=12):
    seed_everything(3)
    net = models.build("lenet")

    def post_step(model, opt, it):
        if it == crash_at:
            raise Crash
    sched = Schedule(iters, 0.01, policy="inv", gamma=1e-4, weight_decay=5e-4, batch_size=32)
    res = train(net, data, sched, seed=5, test=test, hooks=Hooks(post_step=post_step), checkpoint=ckpt,
                checkpoint_every=5, eval_every=4, progress=False)
    return net, res


def test_resume_after_interruption_matches_uninterrupted_run(mnist_small, tmp_path):
    data, test = mnist_small
    ref_net, ref = _run(data, test)
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(Crash):  # killed at iteration 7; last checkpoint at 5
        _run(data, test, ckpt=ckpt, crash_at=7)
    assert torch.load(ckpt, weights_only=False)["iter"] == 5
    net, res = _run(data, test, ckpt=ckpt)
    for (k, a), b in zip(ref_net.state_dict().items(), net.state_dict().values()):
        assert torch.equal(a, b), k
    assert res.test_error == ref.test_error
    assert [h["test_error"] for h in res.history] == [h["test_error"] for h in ref.history]


def test_the_last_checkpoint_is_left_to_a_caller_that_writes_its_own_final_file(mnist_small, tmp_path):
    """checkpoint_at_end=False (the stage store's case): the run ends with its last periodic
    checkpoint on disk (iteration 4 of 6), not a 7th save of weights and momentum."""
    data, _ = mnist_small
    sched = Schedule(6, 0.01, batch_size=32)
    for at_end, saved in ((True, 6), (False, 4)):
        ckpt = tmp_path / f"{at_end}.ckpt"
        train(models.build("lenet"), data, sched, checkpoint=ckpt, checkpoint_every=4, checkpoint_at_end=at_end,
              progress=False)
        assert torch.load(ckpt, weights_only=False)["iter"] == saved


def test_same_seed_same_result_and_training_learns(mnist_small):
    data, test = mnist_small
    net_a, a = _run(data, test, iters=30)
    net_b, b = _run(data, test, iters=30)
    assert a.test_error == b.test_error
    assert all(torch.equal(x, y) for x, y in zip(net_a.parameters(), net_b.parameters()))
    seed_everything(3)
    untrained = evaluate(models.build("lenet"), test)[0]
    assert a.test_error < untrained


def test_hooks_are_called_in_order(mnist_small):
    data, _ = mnist_small
    calls = []
    hooks = Hooks(loss_term=lambda m: calls.append("loss") or torch.zeros(()),
                  after_backward=lambda m: calls.append("grad"),
                  post_step=lambda m, o, it: calls.append(f"post{it}"))
    train(models.build("lenet"), data, Schedule(2, 0.01, batch_size=16), hooks=hooks, progress=False)
    assert calls == ["loss", "grad", "post0", "loss", "grad", "post1"]



def test_cache_follows_the_solver(mnist_small, monkeypatch, tmp_path):
    """A changed recipe retrains instead of reusing the run cached under the old one."""
    import dataclasses

    from sslkit import pipeline
    from sslkit.training.data import Splits

    monkeypatch.setenv("SSLKIT_RUNS", str(tmp_path / "runs"))
    data, test = mnist_small
    network = models.get("mlp")
    context = pipeline.Context(network, "smoke", models.Sizes(baseline=2, ssl=2, finetune=2),
                               Splits(data, test, "small MNIST"), progress=False)
    run = lambda: pipeline.baseline(context)  # noqa: E731
    run()
    run()                                           # same recipe: the cached run
    assert len(list((tmp_path / "runs" / "baseline").iterdir())) == 1
    monkeypatch.setitem(network.solvers, "baseline", dataclasses.replace(network.solvers["baseline"], lr=0.05))
    run()
    folders = list((tmp_path / "runs" / "baseline").iterdir())
    assert len(folders) == 2 and all((f / "baseline.pt").exists() for f in folders)


def test_a_corrupt_checkpoint_restarts_the_run_with_a_warning(mnist_small, tmp_path, capsys):
    data, test = mnist_small
    sched = Schedule(iters=6, lr=0.01, batch_size=32)
    torch.manual_seed(0)
    a = models.build("mlp")
    torch.manual_seed(0)
    b = models.build("mlp")
    ckpt = tmp_path / "run.ckpt"
    ckpt.write_bytes(b"not a checkpoint")
    ra = train(a, data, sched, seed=3, test=test, checkpoint=ckpt, progress=False)
    assert "is unreadable" in capsys.readouterr().err
    rb = train(b, data, sched, seed=3, test=test, checkpoint=tmp_path / "fresh.ckpt", progress=False)
    assert ra.test_error == rb.test_error
    assert all(x.equal(y) for x, y in zip(a.parameters(), b.parameters()))
