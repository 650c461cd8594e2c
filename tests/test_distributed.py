"""torchrun: two processes (gloo, CPU) train to the same weights as one process with the same
global batch, and a two-process run stopped at a deadline resumes to the uninterrupted weights."""
import os
import subprocess
import sys
import textwrap

import torch

from sslkit import models

SCRIPT = textwrap.dedent('''
    import sys
    import torch
    from sslkit import models
    from sslkit.training import distributed
    from sslkit.training.augment import pad_crop_flip
    from sslkit.training.data import TensorData
    from sslkit.sparsity.regularizers import GroupLasso
    from sslkit.training.loop import OutOfTime, train
    from sslkit.training.solver import Schedule

    out, mode = sys.argv[1], sys.argv[2]
    torch.set_default_dtype(torch.float64)   # rounding far below what a wrong share or order would change
    distributed.init()
    g = torch.Generator().manual_seed(1)
    data = TensorData(torch.rand(96, 1, 28, 28, generator=g), torch.randint(0, 10, (96,), generator=g))
    schedule = Schedule(iters=8, lr=0.05, policy="step", stepsize=4, momentum=0.9, weight_decay=5e-4, batch_size=16)

    def fresh():
        torch.manual_seed(0)
        return models.build("lenet")

    def fit(net, **kw):
        reg = GroupLasso.from_spec(net, {"filter": 1e-3, "shape": 1e-3})
        return train(net, data, schedule, checkpoint=out + ".ckpt", checkpoint_every=100, hooks=[reg],
                     augment=pad_crop_flip, progress=False, **kw)

    net = fresh()
    if mode == "interrupted":
        try:
            fit(net, deadline=0.0)          # stops (and checkpoints) after the first iteration
            raise SystemExit("the deadline did not stop training")
        except OutOfTime:
            pass
        net = fresh()                       # a new process would start like this, then resume
    fit(net)
    if distributed.is_main():
        torch.save({k: v.clone() for k, v in net.state_dict().items()}, out)
''')


def _run(tmp_path, name: str, mode: str, procs: int) -> dict:
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{name}.pt"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] \
        if procs > 1 else [sys.executable]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo")}
    done = subprocess.run(launcher + [str(script), str(out), mode], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return torch.load(out)


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_two_processes_equal_one_and_resume(tmp_path):
    one = _run(tmp_path, "one", "full", 1)
    two = _run(tmp_path, "two", "full", 2)
    resumed = _run(tmp_path, "resumed", "interrupted", 2)
    torch.manual_seed(0)
    untrained = models.build("lenet").state_dict()
    assert _max_diff(one, untrained) > 1e-3          # training moved the weights
    assert _max_diff(one, two) <= 1e-5
    assert _max_diff(two, resumed) <= 1e-6
