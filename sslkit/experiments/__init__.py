"""One module per table or figure (or study), each with ``run(**params) -> ExperimentResult``,
and the one entry point that notebooks, ``python -m sslkit`` and tests call:

    outcome = experiments.run("baseline", {"model": "lenet", "profile": "smoke"})
    outcome.result.tables, outcome.figures, outcome.folder

It checks the parameters against the experiment's signature (names and annotated types),
runs it, draws the figures the result names (:mod:`sslkit.results.figures`) and publishes tables,
figures and provenance to the results folder, with ``verdicts.csv``: the experiment's
``claims(result)`` judged (:mod:`sslkit.results.claims`). Adding an experiment: a module here
with a documented ``run`` (and ``claims`` where it reproduces paper numbers) and one line in
:data:`EXPERIMENTS`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from sslkit.experiments import params
from sslkit.results import figures as figure_registry
from sslkit.results.claims import judge
from sslkit.results.record import ExperimentResult, publish
from sslkit.training import distributed
from sslkit.training.runtime import check_device

EXPERIMENTS = {
    "baseline": "sslkit.experiments.baseline",
    "ssl": "sslkit.experiments.ssl",
    "speed": "sslkit.experiments.speed",
    "depth": "sslkit.experiments.depth",
    "pca": "sslkit.experiments.pca",
    "granularity": "sslkit.experiments.granularity",
    "tradeoff": "sslkit.experiments.tradeoff",
    "alexnet": "sslkit.experiments.alexnet",
    "filters2d": "sslkit.experiments.filters2d",
    "precision": "sslkit.experiments.precision",
}


def get(name: str):
    """The experiment module called ``name``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}")
    return import_module(EXPERIMENTS[name])


def describe(name: str) -> str:
    """The first sentence of experiment ``name``'s docstring, on one line."""
    text = " ".join((get(name).__doc__ or "").split())
    return text.split(". ")[0].rstrip(".") + "."


@dataclass
class Outcome:
    """A published run: the result, its figures (name -> matplotlib figure) and the folder."""

    result: ExperimentResult
    figures: dict
    folder: Path


def run(name: str, parameters: dict, *, fixed: dict | None = None, fixed_by: str = "the caller",
        out: str | os.PathLike | None = None) -> Outcome:
    """Run experiment ``name`` and publish what it returns.

    Args:
        name: a key of :data:`EXPERIMENTS`.
        parameters: the user's parameters (checked: unknown names and ill-typed values raise).
        fixed: arguments the caller sets itself (a notebook's table, the command line's own
            options); ``parameters`` may not set them too.
        fixed_by: who sets ``fixed``, for the error message.
        out: the results folder (default: the profile's, see :mod:`sslkit.util.settings`).
    Returns:
        The :class:`Outcome`.
    Raises:
        ValueError: an unknown experiment, parameter, figure or device, or an ill-typed value.
    """
    experiment = get(name)
    kwargs = params.merge(params.check(experiment.run, parameters), fixed or {}, by=fixed_by)
    if params.missing(experiment.run, kwargs):
        raise ValueError(f"experiment {name!r} needs parameter(s) {params.missing(experiment.run, kwargs)}")
    check_device(kwargs.get("device"))
    result = experiment.run(**kwargs)
    if not distributed.is_main():   # under torchrun, rank 0 alone publishes
        return Outcome(result, {}, None)
    if hasattr(experiment, "claims"):  # what the result claims of the papers, judged (the report collects them)
        result.tables["verdicts"] = judge(experiment.claims(result), result.meta)
    drawn = figure_registry.draw(result)
    return Outcome(result, drawn, publish(result, drawn, out))
