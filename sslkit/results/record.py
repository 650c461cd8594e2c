"""Experiment results, their provenance, and where they are published."""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sslkit import __version__
from sslkit.training.runtime import device_name
from sslkit.util.io import save_figure, write_csv, write_json
from sslkit.util.settings import results_dir


@dataclass
class ExperimentResult:
    """What an experiment returns.

    Attributes:
        name: the results folder's name (``figures/<name>/``).
        tables: pandas DataFrames by name, each published as CSV.
        meta: the provenance (profile, device, data, date, wall time, versions, parameters).
        figures: names of registered figures (:mod:`sslkit.results.figures`) drawn from this result.
        objects: anything the figures need that is not published (e.g. trained networks).
    """

    name: str
    tables: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    figures: tuple[str, ...] = ()
    objects: dict = field(default_factory=dict)


def provenance(*, profile: str, device, data: str, wall_s: float, **extra) -> dict:
    """What every published result carries: profile, device, data, date, wall time, versions
    (and, on a GPU, whether TF32 matrix units were allowed)."""
    cuda = {"tf32": torch.backends.cuda.matmul.allow_tf32} if torch.device(device).type == "cuda" else {}
    return {"profile": profile, "device": device_name(device), "data": data,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_s": round(wall_s, 1), "sslkit": __version__, "torch": torch.__version__, **cuda, **extra}


def publish(result: ExperimentResult, figures: dict | None = None, out: str | os.PathLike | None = None) -> Path:
    """Write ``result``'s tables as CSV, ``figures`` (name -> matplotlib figure) as PNG and PDF,
    and ``provenance.json``, each atomically, into ``out/<result.name>/`` (default: the
    profile's results folder, see :func:`sslkit.util.settings.results_dir`). Returns that folder."""
    folder = Path(out or results_dir(result.meta.get("profile", "quick"))) / result.name
    for name, df in result.tables.items():
        write_csv(df, folder / f"{name}.csv")
    for name, fig in (figures or {}).items():
        save_figure(fig, folder / f"{name}.png")
        save_figure(fig, folder / f"{name}.pdf")
    write_json(folder / "provenance.json", result.meta)
    return folder


def banner(result: ExperimentResult) -> str:
    """The provenance as a few lines for the top of a notebook or a command's output."""
    m = result.meta
    schedule = f"schedule: {m['schedule']}\n" if m.get("schedule") else ""
    return (f"profile: {m.get('profile')} | device: {m.get('device')}\n"
            f"data: {m.get('data')}\n{schedule}"
            f"date: {m.get('date')} | wall time: {m.get('wall_s')} s")
