"""Schedule sizes per profile and experiment, in one place.

    smoke  seconds per notebook, for tests: tiny subsets, a few dozen iterations. Its numbers
           mean nothing and are never written to figures/.
    quick  the default: the whole suite on a 2-core laptop CPU within about an hour. MNIST runs
           use the authors' full schedules; CIFAR runs are shortened (see the README).
    paper  the authors' solver schedules (a GPU for CIFAR-10 and ImageNet).

Iteration counts are Caffe iterations (one mini-batch each). ``train``/``test`` cap the number
of samples used (None: the whole split).
"""
from __future__ import annotations

PROFILES: dict[str, dict[str, dict]] = {
    "smoke": {
        "lenet":   dict(baseline=40, ssl=40, finetune=20, train=2048, test=1000),
        "mlp":     dict(baseline=40, ssl=40, finetune=20, train=2048, test=1000),
        "convnet": dict(baseline=20, ssl=20, finetune=10, train=1024, test=500),
        "resnet":  dict(baseline=10, ssl=10, finetune=10, train=512, test=256),
        "bench":   dict(min_run_time=0.01, threads=(1,)),
    },
    "quick": {
        # LeNet: Caffe's lenet_solver (10k iterations, batch 64); SSL 10k; fine-tune 5k.
        "lenet":   dict(baseline=10_000, ssl=10_000, finetune=5_000, train=None, test=None),
        # MLP: the paper gives no solver; ours (see experiments/_stages.py) runs 30k iterations.
        "mlp":     dict(baseline=30_000, ssl=10_000, finetune=10_000, train=None, test=None),
        # CIFAR on a CPU: about a tenth of the authors' schedules.
        "convnet": dict(baseline=6_000, ssl=4_000, finetune=2_000, train=None, test=None),
        "resnet":  dict(baseline=2_000, ssl=2_000, finetune=1_000, train=None, test=None),
        "bench":   dict(min_run_time=0.2, threads=(1, 2)),
    },
    "paper": {
        "lenet":   dict(baseline=10_000, ssl=10_000, finetune=10_000, train=None, test=None),
        "mlp":     dict(baseline=30_000, ssl=10_000, finetune=10_000, train=None, test=None),
        "convnet": dict(baseline=300_000, ssl=200_000, finetune=150_000, train=None, test=None),
        "resnet":  dict(baseline=64_000, ssl=64_000, finetune=96_000, train=None, test=None),
        "bench":   dict(min_run_time=1.0, threads=(1, 2, 4, 8)),
    },
}


def sizes(profile: str, experiment: str, **overrides) -> dict:
    """The schedule sizes of ``experiment`` under ``profile``, with ``overrides`` applied
    (only keys the profile defines; ``None`` values are ignored)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    base = dict(PROFILES[profile][experiment])
    for key, value in overrides.items():
        if key not in base:
            raise ValueError(f"{experiment!r} has no schedule size {key!r}; it has {sorted(base)}")
        if value is not None:
            base[key] = value
    return base
