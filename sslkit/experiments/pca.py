"""Figure 7(b): PCA rank analysis of the conv filters, baseline vs SSL. Each conv layer's filters
are the samples; the figure plots the normalized reconstruction error of the weight matrix
against the % of principal components kept (baseline dashed, SSL solid), and a table gives
the components needed for 5% and 10% error. The paper's claim: SSL's filters need fewer."""
from __future__ import annotations

import time

import pandas as pd

from sslkit import pipeline
from sslkit.analysis.pca import components_for, network_curves
from sslkit.results.claims import WEN, Claim
from sslkit.results.record import ExperimentResult, provenance
from sslkit.training.runtime import default_device
from sslkit.util import profiles

CLAIM = "SSL's filters need fewer principal components than the baseline's for the same error"


def run(networks: dict, *, train: list | None = None, errors: list | None = None, profile: str = profiles.DEFAULT,
        seed: int = 0, data_root: str | None = None, device: str | None = None, force: bool = False,
        progress: bool = True) -> ExperimentResult:
    """PCA reconstruction curves of each network's baseline and SSL run.

    Args:
        networks: ``{network: {label: group-Lasso spec}}``, one SSL run per network, e.g.
            ``{"lenet": {"LeNet 2": {"filter": 0.005, "channel": 0.005}}}`` (the spec of the
            table notebook's row, so that its trained weights are found).
        train: the networks to train here when their weights are not found (default: none;
            the others are analysed only when their table notebook has trained them with this
            profile, and are otherwise listed as missing, never invented).
        errors: the reconstruction errors (%) to count components for (default 5 and 10).
        profile, seed, data_root, device, force, progress: as everywhere.
    Returns:
        Tables ``curves`` (network, run, layer, components, % components, % error),
        ``components`` (per layer: components for each error, baseline vs SSL, and whether
        SSL needs fewer) and ``missing`` (networks whose weights were not there); figure
        ``figure7b_pca``.
    """
    if not networks:
        raise ValueError("networks must name at least one network, e.g. {'lenet': {'LeNet 2': {...}}}")
    errors = list(errors or [5.0, 10.0])
    train = list(train or [])
    t0 = time.perf_counter()
    curves, missing, trained_on, data, schedules = [], [], {}, {}, {}
    for name, runs in networks.items():
        if len(runs) != 1:
            raise ValueError(f"networks[{name!r}] must hold one SSL run ({{label: spec}}), got {len(runs)}")
        (label, spec), = runs.items()
        context = pipeline.setup(name, profile, data_root=data_root, device=device, seed=seed, force=force,
                                 progress=progress)
        regularization = pipeline.Regularization(spec)
        if name not in train and not pipeline.is_trained(context, regularization):
            missing.append({"network": name, "run": label, "why": f"not trained with profile {profile!r}: run "
                            f"its table notebook first, or add it to train"})
            continue
        base = pipeline.baseline(context)
        one = pipeline.ssl(context, regularization, base)
        shape = context.network.input_shape
        curves += [network_curves(base[0], shape).assign(network=name, run="baseline"),
                   network_curves(one.model, shape).assign(network=name, run=label)]
        trained_on[name], data[name], schedules[name] = one.trained_on, context.data.description, \
            context.schedule_note()
    curves = (pd.concat(curves, ignore_index=True) if curves else
              pd.DataFrame(columns=["network", "run", "layer", "components", "% components", "% error"]))
    curves = curves[["network", "run", "layer", "components", "% components", "% error"]]
    data_text = "; ".join(f"{k}: {v}" for k, v in data.items()) or "none (no trained weights found)"
    meta = provenance(profile=profile, device=device or default_device(), data=data_text, wall_s=time.perf_counter() - t0,
                      seed=seed, networks=networks, trained_on=trained_on, schedule=schedules, claim=CLAIM)
    tables = {"curves": curves, "components": components_table(curves, errors),
              "missing": pd.DataFrame(missing, columns=["network", "run", "why"])}
    return ExperimentResult("figure7b_pca", tables, meta, figures=("figure7b_pca",))


def components_table(curves: pd.DataFrame, errors: list[float]) -> pd.DataFrame:
    """Per network and layer: the components each run needs for each error, and whether SSL
    needs fewer than the baseline (the paper's claim)."""
    rows = []
    for (network, layer), part in curves.groupby(["network", "layer"], sort=False):
        runs = dict(tuple(part.groupby("run", sort=False)))
        ssl = next(r for r in runs if r != "baseline")
        row = {"network": network, "layer": layer, "run": ssl, "components (max)": int(part["components"].max())}
        for e in errors:
            b, s = components_for(runs["baseline"], e), components_for(runs[ssl], e)
            row |= {f"baseline for {e:g}%": b, f"SSL for {e:g}%": s, f"SSL needs fewer ({e:g}%)": s < b}
        rows.append(row)
    return pd.DataFrame(rows)


def claims(result: ExperimentResult) -> list[Claim]:
    """Figure 7(b)'s claim per network: SSL's filters need fewer principal components (10%
    reconstruction error) than the baseline's in every conv layer."""
    table = result.tables.get("components")
    table = table if table is not None and "network" in table else None   # no network analysed
    names = list(dict.fromkeys(["lenet", "convnet", "caffenet10"] + ([] if table is None else list(table["network"]))))
    out = []
    for name in names:
        part = None if table is None else table[table["network"] == name]
        quantity = "SSL needs fewer components (10% error), every layer"
        if part is None or part.empty:
            out.append(Claim(WEN, "Figure 7(b)", name, quantity, paper_value=1.0, rule="claim", network=name,
                             why_not="the Figure 7(b) notebook with this network's SSL weights"))
            continue
        fewer = part["SSL needs fewer (10%)"].astype(str) == "True"
        note = "; ".join(f"{r['layer']}: {r['SSL for 10%']} vs {r['baseline for 10%']}" for _, r in part.iterrows())
        out.append(Claim(WEN, "Figure 7(b)", f"{name} ({part['run'].iloc[0]})", quantity, paper_value=1.0,
                         ours=float(fewer.all()), rule="claim", network=name,
                         note="components SSL vs baseline: " + note + "; the SSL run's error is not checked here"))
    return out
