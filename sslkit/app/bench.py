"""Benchmarks (not tests): speed is measured here, never asserted in the test suite.

    python -m sslkit bench layers [--table4-rows 1 2 4 5] [--threads 1 2] [--device cpu|cuda] [--out F.csv]
    python -m sslkit bench layers --model NAME --weights trained.pt      # a trained network's convs
    python -m sslkit bench step --models NAME [NAME ...]                 # SSL step vs plain step
    python -m sslkit bench train --models convnet resnet20               # trainer fp32/bf16 vs a plain loop
    python -m sslkit bench compact --models densenet121                  # compaction wall time (64x64)
    python -m sslkit bench network --model lenet --weights trained.pt    # forward latency dense vs compacted

``layers`` prints, per layer, the time of each method, its speedup over dense, the ideal
speedup (FLOP ratio) and the efficiency measured/ideal, and writes them as CSV.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import pandas as pd
import torch
import torch.nn.functional as F

from sslkit import models
from sslkit.analysis import timing
from sslkit.analysis.timing import benchmark  # imported there without the "No CUDA runtime" noise
from sslkit.experiments import speed
from sslkit.sparsity.regularizers import GroupLasso
from sslkit.training.data import TensorData
from sslkit.training.loop import train
from sslkit.training.runtime import Runtime, check_device, default_device, device_name
from sslkit.util import io

SHOW = ["table4 row", "method", "layer", "threads", "element sparsity %", "ideal speedup", "speedup gemm: csr",
        "speedup gemm: compact", "efficiency", "speedup layer: im2col+compact", "speedup layer: conv thinned",
        "speedup gemm: 2:4", "time gemm: dense", "spread gemm: dense", "spread gemm: csr", "spread gemm: compact"]


def _load(name: str, weights: str | None) -> torch.nn.Module:
    """Network ``name`` with the weights of ``weights`` (a plain state dict, or a stage or
    checkpoint file holding one under ``model``), in eval mode."""
    net = models.get(name).build()
    if weights:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=False)
        except FileNotFoundError:
            raise ValueError(f"no such weights file: {weights}") from None
        except Exception as exc:  # truncated, not a torch file ...
            raise ValueError(f"cannot read the weights {weights} ({type(exc).__name__}: {exc}); give a state "
                             "dict, or a stage or checkpoint file holding one under 'model'") from None
        try:
            net.load_state_dict(state.get("model", state) if isinstance(state, dict) else state.state_dict())
        except (RuntimeError, KeyError, AttributeError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"the weights in {weights} are not {name}'s: {first}") from None
    return net.eval()


@torch.no_grad()
def _zero_random_filters(layers: list, fraction: float, gen: torch.Generator, *, bias: bool) -> None:
    """Zero a random ``fraction`` of each layer's filters (output rows), drawn from ``gen``, with
    their bias when ``bias``: stand-in sparsity for a benchmark without trained weights."""
    for m in layers:
        dead = torch.rand(m.weight.shape[0], generator=gen) < fraction
        m.weight[dead] = 0
        if bias and m.bias is not None:
            m.bias[dead] = 0


def network_cmd(args) -> pd.DataFrame:
    net = _load(args.model, args.weights)
    shape = models.get(args.model).input_shape
    if not args.weights:           # a stand-in for trained weights: zero a fraction of the filters
        layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        _zero_random_filters(layers[:-1], args.zero, torch.Generator().manual_seed(args.seed), bias=True)
    from sslkit.compaction.compact import propagate_zeros
    propagate_zeros(net, shape)
    return timing.network_latency(net, shape, batches=tuple(args.batches), threads=tuple(args.threads),
                                  min_run_time=args.min_run_time, device=args.device).assign(model=args.model)


def layers_cmd(args) -> pd.DataFrame:
    if args.model:
        network = models.get(args.model)
        net = _load(args.model, args.weights).to(args.device)
        lines = []
        for t in args.threads:
            for layer in timing.conv_layers(net, network.input_shape):
                line = timing.time_layer(layer, layer.module.weight.detach(), threads=t, min_run_time=args.min_run_time)
                lines.append({"model": args.model, **line, **timing.speedups(line)})
        return pd.DataFrame(lines)
    return speed.measure(tuple(args.table4_rows), threads=tuple(args.threads), device=args.device,
                         min_run_time=args.min_run_time, seed=args.seed)


def step_times(name: str, *, lam: float = 1e-3, batch: int | None = None, min_run_time: float = 2.0) -> dict:
    """Median time of a plain training step and of an SSL step (filter + channel group Lasso
    on every conv, plus the post-step zeroing) on ``name``, same batch, CPU or CUDA."""
    dev = str(default_device())
    torch.manual_seed(0)
    network = models.get(name)
    net = network.build().to(dev)
    batch = batch or network.solvers.get("ssl", network.solvers.get("baseline")).batch_size
    x = torch.randn(batch, *network.input_shape, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    # filter = a neuron's inputs and channel = its outputs in a network without convs
    reg = GroupLasso.from_spec(net, {"filter": lam, "channel": lam})

    def plain():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    def ssl():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        reg.add_subgradient()
        opt.step()
        reg.zero_small()
    out = {"model": name, "device": device_name(dev), "batch": batch}
    for label, fn in (("plain", plain), ("ssl", ssl)):
        fn()
        t = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
        out[f"{label} step ms"] = 1000 * t.blocked_autorange(min_run_time=min_run_time).median
    out["overhead %"] = 100 * (out["ssl step ms"] / out["plain step ms"] - 1)
    return out


def train_throughput(name: str, *, iters: int = 30, repeats: int = 3, device: str | None = None,
                     precisions: tuple[str, ...] = ("fp32", "bf16")) -> dict:
    """Training images/s of sslkit's trainer in each of ``precisions`` against a plain PyTorch
    loop at the best configuration (bf16 autocast and channels-last where the device has
    bf16, else fp32) on network ``name``: same solver, batch and augmentation, data resident on
    the device. All are timed interleaved (loop, trainer fp32, trainer bf16, loop, ...) after a
    warm-up, ``repeats`` times each.

    Returns:
        The median images/s of each, their min and max, and the ratio of each trainer to the loop.
    """
    network = models.get(name)
    dev = torch.device(device) if device else default_device()
    best = Runtime.resolve(dev, "bf16")
    solver = network.solvers["baseline"]
    bs, n = solver.batch_size, solver.batch_size * 8
    g = torch.Generator().manual_seed(0)
    x_all = torch.randn(n, *network.input_shape, generator=g).to(dev)
    y_all = torch.randint(0, 10, (n,), generator=g).to(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def loop(steps: int) -> float:
        net = best.prepare(network.build().to(dev))
        x_data = best.memory_format(x_all)
        opt = torch.optim.SGD(net.parameters(), lr=solver.lr, momentum=solver.momentum,
                              weight_decay=solver.weight_decay)
        gen = torch.Generator().manual_seed(1)
        torch.set_flush_denormal(network.flush_denormal)   # as the trainer does for this network
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            idx = torch.randint(0, n, (bs,), generator=gen).to(dev)
            x, y = x_data[idx], y_all[idx]
            if network.augment is not None:
                x = network.augment(x, gen)
            with best.autocast():
                loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync()
        torch.set_flush_denormal(False)
        return steps * bs / (time.perf_counter() - t0)

    def trainer(steps: int, precision: str) -> float:
        rt = Runtime.resolve(dev, precision)
        net = rt.prepare(network.build().to(dev))
        data = TensorData(rt.memory_format(x_all), y_all)
        sync()
        t0 = time.perf_counter()
        train(net, data, solver.schedule(steps), param_groups=network.param_groups(net), progress=False,
              augment=network.augment, flush_denormal=network.flush_denormal, precision=precision)
        sync()
        return steps * bs / (time.perf_counter() - t0)

    timed = {"loop": loop, **{f"trainer {p}": (lambda steps, p=p: trainer(steps, p)) for p in precisions}}
    for fn in timed.values():                             # warm-up
        fn(3)
    runs = {key: [] for key in timed}
    for _ in range(repeats):
        for key, fn in timed.items():
            runs[key].append(fn(iters))
    out = {"model": name, "device": device_name(dev), "batch": bs, "iterations": iters, "repeats": repeats,
           "loop precision": best.precision}
    for key, values in runs.items():
        out[f"{key} img/s"] = statistics.median(values)
        out[f"{key} min"], out[f"{key} max"] = min(values), max(values)
    for p in precisions:
        out[f"trainer {p} / loop"] = out[f"trainer {p} img/s"] / out["loop img/s"]
    return out


def compact_time(name: str, *, size: int = 64, zero: float = 0.3, repeats: int = 3, seed: int = 0) -> dict:
    """Wall time of :func:`sslkit.compaction.compact.compact` on a torchvision (or sslkit) network whose
    conv filters are zeroed at random (a fraction ``zero`` per layer), input ``3 x size x size``;
    with the largest output difference, which must be float rounding.

    Returns:
        dict: model, input, channels removed, median / min / max seconds over ``repeats``, max
        abs output difference.
    """
    import torchvision

    from sslkit.compaction.compact import compact

    torch.manual_seed(seed)
    net = (models.build(name) if name in models.NETWORKS else
           torchvision.models.get_model(name, weights=None, num_classes=10)).eval()
    shape = models.get(name).input_shape if name in models.NETWORKS else (3, size, size)
    gen = torch.Generator().manual_seed(seed + 1)
    _zero_random_filters([m for m in net.modules() if isinstance(m, torch.nn.Conv2d)], zero, gen, bias=False)
    times, small = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        small = compact(net, shape)
        times.append(time.perf_counter() - t0)
    x = torch.randn(2, *shape, generator=gen)
    with torch.no_grad():
        diff = (small(x) - net(x)).abs().max().item()
    convs = lambda model: sum(m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d))  # noqa: E731
    return {"model": name, "input": "x".join(map(str, shape)), "channels removed": convs(net) - convs(small),
            "median s": statistics.median(times), "min s": min(times), "max s": max(times), "max abs diff": diff}


def _command(args) -> tuple[pd.DataFrame, list[str]]:
    """Run the subcommand ``args.cmd``: its table and the columns to print."""
    if args.cmd == "layers":
        if max(args.threads) > (os.cpu_count() or 1):
            print(f"note: more threads than the {os.cpu_count()} cores here", file=sys.stderr)
        df = layers_cmd(args)
        return df, [c for c in SHOW if c in df.columns] + (["model"] if "model" in df.columns else [])
    if args.cmd == "network":
        df = network_cmd(args)
    elif args.cmd == "compact":
        df = pd.DataFrame([compact_time(m, size=args.size, zero=args.zero, repeats=args.repeats) for m in args.models])
    elif args.cmd == "step":
        df = pd.DataFrame([step_times(m, min_run_time=args.min_run_time) for m in args.models])
    else:
        df = pd.DataFrame([train_throughput(m, iters=args.iters, repeats=args.repeats, device=args.device)
                           for m in args.models])
    return df, list(df.columns)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sslkit bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    lay = sub.add_parser("layers", help="dense vs CSR vs compact GEMM per conv layer")
    lay.add_argument("--table4-rows", type=int, nargs="+", default=[1, 2, 4, 5],
                     help="Table 4 rows whose sparsity to time")
    lay.add_argument("--model", default=None, choices=sorted(models.NETWORKS),
                     help="time a network's conv layers instead")
    lay.add_argument("--weights", default=None, help="with --model: a checkpoint/stage file with 'model' weights")
    lay.add_argument("--threads", type=int, nargs="+", default=[1])
    lay.add_argument("--device", default=str(default_device()))
    lay.add_argument("--min-run-time", type=float, default=0.2)
    lay.add_argument("--seed", type=int, default=0)
    lay.add_argument("--out", default=None, help="CSV file to write")
    st = sub.add_parser("step", help="time of an SSL training step vs a plain one")
    st.add_argument("--models", nargs="+", required=True, choices=sorted(models.NETWORKS))
    st.add_argument("--min-run-time", type=float, default=2.0)
    st.add_argument("--out", default=None)
    tr = sub.add_parser("train", help="training images/s: sslkit's trainer (fp32, bf16) vs a plain PyTorch loop "
                        "(bf16 autocast + channels-last where the device has bf16)")
    tr.add_argument("--models", nargs="+", required=True, choices=sorted(models.NETWORKS))
    tr.add_argument("--iters", type=int, default=30)
    tr.add_argument("--repeats", type=int, default=3)
    tr.add_argument("--device", default=None)
    tr.add_argument("--out", default=None)
    cp = sub.add_parser("compact", help="wall time of compaction (e.g. torchvision's densenet121 at 64x64)")
    cp.add_argument("--models", nargs="+", default=["densenet121"], help="torchvision or sslkit network names")
    cp.add_argument("--size", type=int, default=64, help="input height and width (torchvision networks)")
    cp.add_argument("--zero", type=float, default=0.3, help="fraction of each conv's filters zeroed")
    cp.add_argument("--repeats", type=int, default=3)
    cp.add_argument("--out", default=None)
    nw = sub.add_parser("network", help="forward latency of a network dense vs compacted, with the FLOP ratio")
    nw.add_argument("--model", required=True, choices=sorted(models.NETWORKS))
    nw.add_argument("--weights", default=None, help="trained weights (state dict, stage or checkpoint file); "
                                                    "without: random filters zeroed (--zero)")
    nw.add_argument("--zero", type=float, default=0.5, help="without --weights: fraction of filters zeroed")
    nw.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    nw.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    nw.add_argument("--device", default="cpu")
    nw.add_argument("--min-run-time", type=float, default=0.5)
    nw.add_argument("--seed", type=int, default=0)
    nw.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    try:
        check_device(getattr(args, "device", None))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"device: {device_name(getattr(args, 'device', None) or default_device())}; torch {torch.__version__}; cores {os.cpu_count()}")
    try:
        df, cols = _command(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 3):
        print(df[cols].to_string(index=False))
    if args.out:
        io.write_csv(df, args.out)
        print(f"written to {args.out}")
    return 0

