"""The SSL pipeline of the paper, one table row per run: baseline -> SSL (group Lasso from the
baseline weights) -> fine-tuning with the zeros frozen -> sparsity report and compaction."""
from __future__ import annotations

import time

import pandas as pd
import torch

from .. import models, paper, profiles, report, timing
from ..compact import compact, propagate_zeros
from ..masks import ZeroFreezer
from ..regularizers import GroupLasso
from ..results import ExperimentResult, provenance
from ..train import Hooks, evaluate
from . import _stages as S


def ssl_row(model: str, spec: dict, sizes: dict, train, test, data_desc: str, baseline, *, seed: int = 0,
            weighted: bool = False, mode: str = "subgradient", threshold: float = 1e-4,
            force: bool = False, progress: bool = True) -> dict:
    """One row: SSL with group-Lasso ``spec`` (see :meth:`GroupLasso.from_spec`) from the
    ``baseline`` (network, :class:`Result`) pair of :func:`_stages.baseline`, then fine-tuning
    with zeros frozen.

    Returns:
        dict with ``model`` (fine-tuned, zeros propagated), ``compact`` (compacted copy),
        ``report`` (per-layer DataFrame), errors (baseline, ssl, final, compacted, in %) and
        wall times.
    """
    dev = train.x.device
    base, base_res = baseline
    ssl_sched, ft_sched = S.schedule(model, sizes["ssl"], "ssl"), S.schedule(model, sizes["finetune"], "finetune")
    key = dict(model=model, spec=spec, sizes=sizes, seed=seed, data=data_desc, device=dev.type,
               weighted=weighted, mode=mode, threshold=threshold, solvers=(ssl_sched, ft_sched),
               baseline=S.baseline_dir(model, sizes, data_desc, dev, seed=seed).name)
    folder = S.run_dir("ssl", key)
    net = models.build(model).to(dev)
    net.load_state_dict(base.state_dict())
    reg = GroupLasso.from_spec(net, spec, weighted=weighted, mode=mode, threshold=threshold)
    ssl_res = S.stage(folder, "ssl", net, train, test, ssl_sched, seed=seed + 1,
                      hooks=reg.hooks(), augment=S.augmentation(model), force=force, progress=progress)
    shape = models.INPUT_SHAPES[model]
    propagate_zeros(net, shape)        # remove all-zero groups (and what they make useless)
    freezer = ZeroFreezer(net)
    ft_res = S.stage(folder, "finetune", net, train, test, ft_sched, seed=seed + 2,
                     hooks=Hooks(post_step=freezer.post_step), augment=S.augmentation(model),
                     force=force, progress=progress)
    freezer.remove()
    small = compact(net, shape)
    return {
        "model": net, "compact": small, "report": report.sparsity_report(net, shape),
        "baseline error %": 100 * base_res.test_error, "ssl error %": 100 * ssl_res.test_error,
        "error %": 100 * ft_res.test_error, "compact error %": 100 * evaluate(small, test)[0],
        "parameters": sum(p.numel() for p in net.parameters()),
        "compact parameters": sum(p.numel() for p in small.parameters()),
        "wall s": base_res.wall_s + ssl_res.wall_s + ft_res.wall_s,
    }


# Which per-layer report columns each paper table shows, under the paper's names.
COLUMNS = {
    "table1": {"filters": ("filters left", "{:d}"), "channels": ("channels left", "{:d}"), "flop": ("FLOP %", "{:.3g}%")},
    "table2": {"filter_size": ("filter size left", "{:g}"), "channels": ("channels left", "{:d}"), "flop": ("FLOP %", "{:.3g}%")},
    "table3": {"row_sparsity": ("row sparsity %", "{:.1f}%"), "column_sparsity": ("column sparsity %", "{:.1f}%")},
}


def conv_speedups(net: torch.nn.Module, model: str, *, min_run_time: float = 0.2) -> list[float]:
    """Measured speedup of each conv layer's compact GEMM (non-zero rows and columns) over the
    dense GEMM, one thread, as the paper timed Tables 1-3 (lowered GEMM only)."""
    specs, weights = timing.specs_from_model(net, models.INPUT_SHAPES[model])
    out = []
    for spec, w in zip(specs, weights):
        row = timing.time_layer(spec, w.cpu(), threads=1, min_run_time=min_run_time,
                                methods=["gemm: dense", "gemm: compact"])
        out.append(timing.speedups(row)["speedup gemm: compact"])
    return out


def _neurons(rep: pd.DataFrame) -> list[int]:
    """An MLP's neurons left per layer: inputs of the first layer, then each layer's outputs."""
    return [int(rep["channels left"].iloc[0])] + [int(v) for v in rep["filters left"]]


def comparison(table: str, rows: dict[str, dict]) -> pd.DataFrame:
    """Paper rows beside ours: for every paper row with a run of the same label, a ``paper``
    line and an ``ours`` line (the baseline row compares with our baseline)."""
    out = []
    base_label = paper.TABLES[table][0]["row"]
    for prow in paper.TABLES[table]:
        label = prow["row"]
        ours = rows.get(label)
        if label == base_label and ours is None and rows:
            ours = {"baseline": True, **next(iter(rows.values()))}
        line = {"row": label, "source": "paper", "error %": prow["error"]}
        for key, fmt in (("filters", "{:d}"), ("channels", "{:d}"), ("filter_size", "{:g}"), ("neurons", "{:d}"),
                         ("flop", "{:g}%"), ("row_sparsity", "{:g}%"), ("column_sparsity", "{:g}%"), ("speedup", "{:.2f}")):
            if key in prow:
                line[key] = paper.dashed(prow[key], fmt)
        out.append(line)
        if ours is None:
            continue
        mine = {"row": label, "source": "ours"}
        if ours.get("baseline"):
            mine["error %"] = round(ours["baseline error %"], 2)
            dense = ours["report"].copy()
            dense["filters left"], dense["channels left"] = dense["filters"], dense["channels"]
            dense["filter size left"], dense["FLOP %"] = dense["filter size"], 100.0
            dense["row sparsity %"] = dense["column sparsity %"] = 0.0
            rep = dense
        else:
            mine["error %"] = round(ours["error %"], 2)
            rep = ours["report"]
            if ours.get("speedup"):
                mine["speedup"] = paper.dashed(ours["speedup"], "{:.2f}")
        if table == "mlp":
            mine["neurons"] = paper.dashed(_neurons(rep), "{:d}")
            mine["flop"] = paper.dashed(rep["FLOP %"], "{:.4g}%")
        else:
            convs = rep[rep["layer"].str.startswith("conv")]
            for key, (col, fmt) in COLUMNS[table].items():
                mine[key] = paper.dashed(convs[col], fmt)
        out.append(mine)
    return pd.DataFrame(out)


def run(model: str = "lenet", rows: dict | None = None, *, table: str = "table1", profile: str = "quick",
        seed: int = 0, data_root=None, device: str | None = None, baseline_iters: int | None = None,
        ssl_iters: int | None = None, finetune_iters: int | None = None, weighted: bool = False,
        mode: str = "subgradient", threshold: float = 1e-4, speed: bool = True, force: bool = False,
        progress: bool = True) -> ExperimentResult:
    """SSL rows of a paper table.

    Args:
        model: ``lenet``, ``mlp``, ``convnet``, ``resnet20`` or ``resnet32``.
        rows: ``{row label: group-Lasso spec}``, e.g. ``{"LeNet 2": {"filter": 5e-3, "channel": 5e-3}}``
            (labels matching the paper's put the paper's row beside ours).
        table: the paper table to compare with (``table1``, ``table2``, ``mlp``, ``table3``).
        profile, seed, data_root, device, force, progress: as everywhere.
        baseline_iters, ssl_iters, finetune_iters: override the profile's schedule sizes.
        weighted: weight groups by sqrt(size); mode: ``subgradient`` or ``proximal``;
        threshold: post-step zeroing threshold.
        speed: measure each conv layer's compact-GEMM speedup on this CPU (1 thread).
    Returns:
        Tables ``comparison`` (paper beside ours), ``runs`` (one line per row: errors, sizes,
        wall time) and ``layers`` (per-layer sparsity report of every row);
        ``objects['models']`` holds the baseline and each row's fine-tuned network.
    """
    if not rows:
        raise ValueError("rows must name at least one SSL run, e.g. {'LeNet 2': {'filter': 5e-3, 'channel': 5e-3}}")
    if table not in paper.TABLES:
        raise ValueError(f"table must be one of {sorted(paper.TABLES)}, got {table!r}")
    t0 = time.perf_counter()
    dev = S.resolve_device(device)
    sizes = profiles.sizes(profile, S.PROFILE_KEY[model], baseline=baseline_iters, ssl=ssl_iters,
                           finetune=finetune_iters)
    train, test, data_desc = S.load(model, sizes, data_root, dev)
    base = S.baseline(model, sizes, train, test, data_desc, seed=seed, force=force, progress=progress)
    results = {}
    for label, spec in rows.items():
        results[label] = ssl_row(model, spec, sizes, train, test, data_desc, base, seed=seed, weighted=weighted,
                                 mode=mode, threshold=threshold, force=force, progress=progress)
        if speed:
            budget = profiles.sizes(profile, "bench")["min_run_time"]
            results[label]["speedup"] = conv_speedups(results[label]["model"], model, min_run_time=budget)
    runs = pd.DataFrame([{"row": k, "baseline error %": round(r["baseline error %"], 2),
                          "ssl error %": round(r["ssl error %"], 2), "fine-tuned error %": round(r["error %"], 2),
                          "compacted error %": round(r["compact error %"], 2), "parameters": r["parameters"],
                          "compacted parameters": r["compact parameters"], "wall s": round(r["wall s"], 1),
                          "conv speedups (1 thread)": paper.dashed(r.get("speedup") or [], "{:.2f}"),
                          "spec": str(rows[k])} for k, r in results.items()])
    layers = pd.concat([r["report"].assign(row=k) for k, r in results.items()], ignore_index=True)
    meta = provenance(profile=profile, device=dev, data=data_desc, wall_s=time.perf_counter() - t0, seed=seed,
                      model=model, table=table, sizes=sizes,
                      training_wall_s={k: round(r["wall s"], 1) for k, r in results.items()},
                      note="wall_s is this run; training_wall_s is each row's baseline + SSL + fine-tuning "
                           "time when first trained (stages are cached per parameter set)")
    tables = {"comparison": comparison(table, results), "runs": runs, "layers": layers}
    if model == "mlp":
        tables["pixels"] = dead_pixels(results)
    objects = {"baseline": base[0],
               **{k: r["model"] for k, r in results.items()}}
    return ExperimentResult(f"{table}_{model}", tables, meta, objects={"models": objects})


def _first_linear(net: torch.nn.Module) -> torch.nn.Linear:
    return next(m for m in net.modules() if isinstance(m, torch.nn.Linear))


def dead_pixels(results: dict) -> pd.DataFrame:
    """Figure 4(b)'s statistic: the share of input pixels with no connection left, per row."""
    out = []
    for label, r in results.items():
        fc1 = _first_linear(r["model"]).weight.detach()
        share = 100 * float((fc1 == 0).all(0).float().mean())
        paper_value = paper.MLP2_DEAD_PIXELS if label == "MLP 2" else None
        out.append({"row": label, "paper % pixels with no connection": paper_value,
                    "our % pixels with no connection": round(share, 2)})
    return pd.DataFrame(out)


def plot(result: ExperimentResult) -> dict:
    """Figure 3 (LeNet: conv1 filters of the baseline and each SSL row) or Figure 4(b) (MLP:
    connections each input pixel keeps in fc1), plus errors against FLOP."""
    import matplotlib.pyplot as plt
    import numpy as np

    nets = result.objects.get("models", {})
    figs = {}
    if result.meta.get("model") == "lenet" and nets:
        fig, axes = plt.subplots(len(nets), 20, figsize=(12, 0.75 * len(nets) + 0.4), squeeze=False)
        for i, (label, net) in enumerate(nets.items()):
            w = net.conv1.weight.detach().cpu()[:, 0].numpy()
            lim = np.abs(w).max() or 1.0
            for j in range(20):
                ax = axes[i, j]
                ax.imshow(w[j], cmap="gray", vmin=-lim, vmax=lim)
                ax.set_xticks([])
                ax.set_yticks([])
                if not w[j].any():
                    ax.set_facecolor("white")
                    ax.imshow(np.ones_like(w[j]), cmap="gray", vmin=0, vmax=1)
            axes[i, 0].set_ylabel("LeNet 1" if label == "baseline" else label, rotation=0, ha="right", fontsize=8)
        fig.suptitle("conv1 filters (all-zero filters blank)", fontsize=9)
        figs["figure3_conv1_filters"] = fig
    if result.meta.get("model") == "mlp" and nets:
        rows = [k for k in nets if k != "baseline"]
        fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3), squeeze=False)
        pix = result.tables["pixels"].set_index("row")
        for ax, label in zip(axes[0], rows):
            kept = (_first_linear(nets[label]).weight.detach().cpu() != 0).sum(0).view(28, 28).numpy()
            im = ax.imshow(kept, cmap="viridis")
            ax.set_title(f"{label}: {pix.loc[label, 'our % pixels with no connection']:.1f}% pixels dead", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046)
        fig.suptitle("connections kept per input pixel (fc1)", fontsize=9)
        figs["figure4b_input_pixels"] = fig
    return figs
