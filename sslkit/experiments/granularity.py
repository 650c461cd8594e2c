"""Mao et al. 2017's granularity study: magnitude pruning of whole groups at four granularities
(fine, vector, kernel, filter), iterated with retraining down a ladder of per-layer densities
that is the same for every granularity; error against sparsity, the compression ratio counting
the index storage, and memory references of an SCNN-like accelerator at equal accuracy, and a
verdict on each of the abstract's three claims."""
from __future__ import annotations

import copy
import time

import pandas as pd
import torch.nn as nn

from sslkit import pipeline
from sslkit.results import paper
from sslkit.results.claims import MAO, Claim
from sslkit.results.record import ExperimentResult, provenance
from sslkit.sparsity.masks import ZeroFreezer
from sslkit.sparsity.pruning import GRANULARITIES, memory_references, nonzero_inputs, prune, storage_bits
from sslkit.training.runtime import default_device
from sslkit.util import profiles

COARSE = ("vector", "kernel", "filter")
SIMILAR_PP = 5.0   # "a similar sparsity": within this many percentage points of fine-grained's
ABOUT_2X = 1.5     # "about 2x fewer memory references": a ratio of at least this
CLAIMS = {
    "sparsity": "coarse-grained pruning reaches a sparsity similar to fine-grained pruning at no loss of accuracy",
    "compression": "counting the index storage, coarse-grained pruning compresses better than fine-grained "
                   "at the same accuracy",
    "memory": "on the SCNN accelerator, coarse-grained sparsity needs about 2x fewer memory references "
              "than fine-grained (CVPR-W version: 30-35% fewer)",
}


def run(networks: list, *, granularities: list | None = None, densities: list | None = None,
        retrain: float | dict = 0.1, tolerance: float | dict = 0.1, weight_bits: list | None = None, index_bits: int = 4,
        block: int = 8, probe: int = 256, norm: float = 2.0, profile: str = profiles.DEFAULT, seed: int = 0,
        data_root: str | None = None, device: str | None = None, force: bool = False,
        progress: bool = True) -> ExperimentResult:
    """Iterative magnitude pruning and retraining of each network's conv layers at each granularity.

    Args:
        networks: the networks (e.g. ``["lenet", "convnet"]``), each from its cached baseline.
        granularities: a subset of ``fine``, ``vector``, ``kernel``, ``filter`` (default all).
        densities: the ladder of per-layer densities (fractions of groups kept, decreasing),
            the same for every granularity and every conv layer; linear layers stay dense.
        retrain: iterations of retraining after each pruning step, as a fraction of the
            profile's fine-tuning iterations (with the network's fine-tuning solver, zeros frozen);
            one number, or ``{network: fraction}`` naming every network.
        tolerance: "equal accuracy" means a test error at most the baseline's + ``tolerance`` pp
            (one number, or ``{network: pp}`` naming every network).
        weight_bits: the weight widths the compression ratio is counted at (default 32 and 8).
        index_bits: the width of a relative index (longer gaps take filler entries).
        block: the filters one pass over the activations serves (SCNN's output-channel group).
        probe: test images the non-zero input activations are counted on.
        norm: the p of the group norm that ranks groups.
        profile, seed, data_root, device, force, progress: as everywhere.
    Returns:
        Tables ``curves`` (per network, granularity and step: density, sparsity, error,
        storage and memory references), ``equal_accuracy`` (each granularity at its sparsest
        step within the tolerance) and ``claims`` (the three claims: the paper's words, our
        numbers, yes or no); figure ``granularity``.
    """
    granularities = list(granularities or GRANULARITIES)
    densities = [float(d) for d in (densities or [0.5, 0.35, 0.25, 0.18, 0.12, 0.08, 0.05])]
    weight_bits = [int(b) for b in (weight_bits or [32, 8])]
    _check(networks, granularities, densities)
    retrain = _per_network("retrain", retrain, networks, positive=True)
    tolerance = _per_network("tolerance", tolerance, networks)
    t0 = time.perf_counter()
    curves, data, schedules, trained_on, precisions = [], {}, {}, {}, {}
    for name in networks:
        context = pipeline.setup(name, profile, data_root=data_root, device=device, seed=seed, force=force,
                                 progress=progress)
        base, base_res = pipeline.baseline(context)
        iters = max(1, round(retrain[name] * context.sizes.finetune))
        layers = [n for n, m in base.named_modules() if isinstance(m, nn.Conv2d)]
        x = context.data.test.x[:probe]
        step = dict(network=name, granularity="dense", step=0, density=1.0, error=100 * base_res.test_error)
        curves.append(step | _counts(base, layers, x, "fine", weight_bits, index_bits, block, dense=True))
        base_stage = context.baselines[name]["stage"]   # the folder pipeline.baseline used
        for g in granularities:
            net = copy.deepcopy(base)

            def key(i: int) -> dict:   # step i of this granularity's chain
                return dict(baseline=base_stage, granularity=g, densities=densities[:i],
                            iters=iters, solver=context.schedule("finetune", iters), norm=norm, layers=layers)
            # One precision for the whole chain (each step starts from the one before): that of
            # its last step where the store holds it, see pipeline.stage_dir.
            last = pipeline.stage_dir(context, "granularity", key(len(densities)), f"{g}-{len(densities)}.pt")
            chain = context.stage_precisions[last.name]
            for i, d in enumerate(densities, 1):
                prune(net, g, {layer: d for layer in layers}, p=norm)
                freezer = ZeroFreezer(net, layers)
                folder = pipeline.stage_dir(context, "granularity", key(i), f"{g}-{i}.pt", precision=chain)
                res = pipeline.train_stage(folder, f"{g}-{i}", net, context,
                                           context.schedule("finetune", iters), seed=seed + i,
                                           hooks=[freezer], evals=1)
                freezer.remove()
                trained_on[name] = res.device
                step = dict(network=name, granularity=g, step=i, density=d, error=100 * res.test_error)
                curves.append(step | _counts(net, layers, x, g, weight_bits, index_bits, block))
        precisions[name] = context.precision_note
        data[name], schedules[name] = context.data.description, \
            f"{context.schedule_note(('baseline',))}; retraining {iters} iterations per step"
    curves = pd.DataFrame(curves).rename(columns={"error": "error %"})
    equal = equal_accuracy(curves, tolerance, weight_bits)
    meta = provenance(profile=profile, device=device or default_device(), data="; ".join(f"{k}: {v}" for k, v in data.items()),
                      wall_s=time.perf_counter() - t0, seed=seed, schedule=schedules, trained_on=trained_on,
                      precision="; ".join(f"{k}: {v}" for k, v in precisions.items()), densities=densities, tolerance_pp=tolerance, index_bits=index_bits, block=block,
                      storage_model="kept groups in row-major order, each its weights plus one relative index of "
                                    f"{index_bits} bits; a gap over {2 ** index_bits - 1} groups takes a filler entry",
                      memory_model="sslkit.sparsity.pruning.memory_references (SCNN-like; rules in its docstring): one "
                                   "accumulator access per product (SCNN), and the row-wide variant",
                      layers="conv layers pruned; linear layers dense")
    tables = {"curves": curves, "equal_accuracy": equal, "claims": mao_claims(equal, weight_bits)}
    return ExperimentResult("granularity", tables, meta, figures=("granularity",))


def _check(networks, granularities, densities) -> None:
    if not networks:
        raise ValueError("networks must name at least one network, e.g. ['lenet']")
    unknown = [g for g in granularities if g not in GRANULARITIES]
    if unknown:
        raise ValueError(f"unknown granularities {unknown}; choose from {list(GRANULARITIES)}")
    if not all(0 < d < 1 for d in densities) or any(b >= a for a, b in zip(densities, densities[1:])):
        raise ValueError(f"densities must decrease strictly within (0, 1), got {densities}")


def _per_network(name: str, value: float | dict, networks: list, *, positive: bool = False) -> dict:
    """``{network: value}`` from one number or a dict naming every network; each at least 0
    (``positive``: above 0)."""
    if not isinstance(value, dict):
        value = {n: float(value) for n in networks}
    missing = [n for n in networks if n not in value]
    if missing:
        raise ValueError(f"{name} names no value for {missing}")
    if any(v < 0 or (positive and v == 0) for v in value.values()):
        raise ValueError(f"{name} must be {'positive' if positive else 'at least 0'}, got {value}")
    return {n: float(value[n]) for n in networks}


def _counts(net: nn.Module, layers: list[str], x, granularity: str, weight_bits: list[int], index_bits: int,
            block: int, dense: bool = False) -> dict:
    """Sparsity, storage and memory references of ``net``'s pruned layers (``dense``: stored
    without indices, as the baseline would be)."""
    modules = dict(net.named_modules())
    weights = [modules[n].weight for n in layers]
    total = sum(w.numel() for w in weights)
    kept = sum(int(w.ne(0).sum()) for w in weights)
    out = {"weights kept": kept, "sparsity %": 100 * (1 - kept / total)}
    for b in weight_bits:
        stored = total * b if dense else sum(storage_bits(w, granularity, weight_bits=b, index_bits=index_bits)
                                             ["total bits"] for w in weights)
        out[f"compression ({b}-bit)"] = total * b / stored
    inputs = nonzero_inputs(net, x)
    refs = {}
    for wide, prefix in ((False, "memory refs: "), (True, "memory refs (row-wide): ")):
        for n, w in zip(layers, weights):
            counts, outputs = inputs[n]
            # dense weights: stored as whole rows (row-wide accumulation), without indices
            found = memory_references(w, "filter" if dense else granularity, counts, outputs, block=block,
                                      index_bits=index_bits, wide_rows=wide)
            if dense:
                found["total"] -= found["weights"] - w.numel()
                found["weights"] = float(w.numel())
            for k, v in found.items():
                if wide and k != "total":
                    continue
                refs[prefix + k] = refs.get(prefix + k, 0.0) + v
    return out | refs


def equal_accuracy(curves: pd.DataFrame, tolerance: dict, weight_bits: list[int]) -> pd.DataFrame:
    """Per network and granularity, the sparsest step whose error is within ``tolerance[network]``
    pp of the baseline's, with its compression and memory references (none within: no values)."""
    rows = []
    for name, part in curves.groupby("network", sort=False):
        base_error = float(part.loc[part["granularity"] == "dense", "error %"].iloc[0])
        for g, steps in part[part["granularity"] != "dense"].groupby("granularity", sort=False):
            ok = steps[steps["error %"] <= base_error + tolerance[name]]
            row = {"network": name, "granularity": g, "baseline error %": base_error,
                   "threshold error %": round(base_error + tolerance[name], 4)}
            if ok.empty:
                rows.append(row | {"steps within": 0})
                continue
            best = ok.loc[ok["sparsity %"].idxmax()]
            rows.append(row | {"steps within": len(ok), "density": best["density"], "sparsity %": best["sparsity %"],
                               "error %": best["error %"],
                               **{f"compression ({b}-bit)": best[f"compression ({b}-bit)"] for b in weight_bits},
                               "memory refs": best["memory refs: total"],
                               "memory refs (row-wide)": best["memory refs (row-wide): total"]})
    return pd.DataFrame(rows)


def _reached(by: pd.DataFrame, granularity: str) -> bool:
    return granularity in by.index and "sparsity %" in by and pd.notna(by.loc[granularity, "sparsity %"])


def mao_claims(equal: pd.DataFrame, weight_bits: list[int]) -> pd.DataFrame:
    """The abstract's three claims per network and coarse granularity: our numbers and a verdict."""
    rows = []
    for name, part in equal.groupby("network", sort=False):
        by = part.set_index("granularity")
        fine = by.loc["fine"] if _reached(by, "fine") else None
        for g in (c for c in COARSE if c in by.index):
            coarse = by.loc[g]
            base = {"network": name, "granularity": g}
            if fine is None or not _reached(by, g):
                why = "no step of " + ("fine" if fine is None else g) + " pruning stays within the tolerance"
                rows += [base | {"claim": k, "paper": CLAIMS[k], "ours": why, "verdict": "not measurable"}
                         for k in CLAIMS]
                continue
            gap = coarse["sparsity %"] - fine["sparsity %"]
            rows.append(base | {"claim": "sparsity", "paper": CLAIMS["sparsity"],
                                "ours": f"{coarse['sparsity %']:.1f}% vs fine {fine['sparsity %']:.1f}% ({gap:+.1f} pp)",
                                "value": gap, "verdict": "yes" if gap >= -SIMILAR_PP else "no"})
            ratios = {b: coarse[f"compression ({b}-bit)"] / fine[f"compression ({b}-bit)"] for b in weight_bits}
            rows.append(base | {"claim": "compression", "paper": CLAIMS["compression"],
                                "ours": "; ".join(f"{b}-bit: {coarse[f'compression ({b}-bit)']:.2f}x vs fine "
                                                  f"{fine[f'compression ({b}-bit)']:.2f}x" for b in weight_bits),
                                "value": min(ratios.values()), "verdict": "yes" if min(ratios.values()) > 1 else "no"})
            saved = fine["memory refs"] / coarse["memory refs"]
            wide = fine["memory refs (row-wide)"] / coarse["memory refs (row-wide)"]
            rows.append(base | {"claim": "memory", "paper": CLAIMS["memory"],
                                "ours": f"fine / {g}: {saved:.2f}x ({g} makes {abs(100 * (1 - 1 / saved)):.0f}% "
                                        f"{'fewer' if saved > 1 else 'more'}) counting one accumulator access per "
                                        f"product as SCNN; {wide:.2f}x with row-wide accumulation (our variant)",
                                "value": saved,
                                "verdict": "yes" if saved >= ABOUT_2X else ("fewer, not 2x" if saved > 1 else "no")})
    return pd.DataFrame(rows, columns=["network", "granularity", "claim", "paper", "ours", "value", "verdict"])


_MAO = {"sparsity": ("similar sparsity at no accuracy loss (within 5 pp)", "claim"),
        "compression": ("better compression ratio counting indices", "claim"),
        "memory": ("memory references saved, fine / coarse (×)", "saving")}


def claims(result: ExperimentResult) -> list[Claim]:
    """Mao et al.'s three claims for each network of the study, kernel-level pruning standing
    for "coarse-grained" (the vector and filter verdicts in the note). A granularity whose
    pruning never stays within the tolerance fails the claims with no number of ours (the
    experiment ran: it deviates, it is not "not run")."""
    table = result.tables.get("claims")
    names = list(dict.fromkeys(["lenet", "convnet", "resnet20"] + ([] if table is None else list(table["network"]))))
    out = []
    for name in names:
        for claim, (text, rule) in _MAO.items():
            part = None if table is None else table[(table["network"] == name) & (table["claim"] == claim)]
            paper_value = paper.MAO_MEMORY_SAVING if rule == "saving" else 1.0
            if part is None or part.empty or "kernel" not in set(part["granularity"]):
                out.append(Claim(MAO, "abstract", f"{name}: kernel vs fine", text, paper_value=paper_value, rule=rule,
                                 network=name, why_not=f"the granularity notebook with {name}"))
                continue
            by = part.set_index("granularity")
            r = by.loc["kernel"]
            others = "; ".join(f"{g}: {q['verdict']} ({q['ours']})" for g, q in by.iterrows() if g != "kernel")
            if r["verdict"] == "not measurable":   # no number of ours, and the claim is not shown: deviates
                out.append(Claim(MAO, "abstract", f"{name}: kernel vs fine", text, paper_value=paper_value,
                                 rule=rule, network=name, missing=str(r["ours"]), note=others))
                continue
            ours = float(r["value"]) if rule == "saving" else float(r["verdict"] == "yes")
            out.append(Claim(MAO, "abstract", f"{name}: kernel vs fine", text, paper_value=paper_value, ours=ours,
                             rule=rule, network=name, note=f"{r['ours']}; {others}"))
    return out
