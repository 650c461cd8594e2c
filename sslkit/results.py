"""Experiment results, their provenance, and where they are published."""
from __future__ import annotations

import datetime as _dt
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import __version__
from .io import save_figure, write_csv, write_json

REPO = Path(__file__).resolve().parent.parent


@dataclass
class ExperimentResult:
    """Tables (pandas DataFrames, by name), the provenance of the run that made them, and
    objects for plotting or further use (e.g. trained models; not published)."""

    name: str
    tables: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)


def device_name(device: str | torch.device) -> str:
    """A human name for ``device``: the GPU's name, or the CPU's model and core count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def provenance(*, profile: str, device, data: str, wall_s: float, **extra) -> dict:
    """What every published result carries: profile, device, data, date, wall time, versions."""
    return {"profile": profile, "device": device_name(device), "data": data,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_s": round(wall_s, 1), "sslkit": __version__, "torch": torch.__version__, **extra}


def figures_dir(profile: str) -> Path:
    """Where results go: ``$SSLKIT_FIGURES`` if set; else ``figures/`` of the repository, except
    for the smoke profile, whose meaningless numbers go to ``build/figures-smoke/``."""
    if os.environ.get("SSLKIT_FIGURES"):
        return Path(os.environ["SSLKIT_FIGURES"])
    return REPO / ("build/figures-smoke" if profile == "smoke" else "figures")


def publish(result: ExperimentResult, figures: dict | None = None, out: str | os.PathLike | None = None) -> Path:
    """Write ``result``'s tables as CSV, ``figures`` (name -> matplotlib figure) as PNG and PDF,
    and ``provenance.json``, atomically, into ``out/<result.name>/``. Returns that folder."""
    folder = Path(out or figures_dir(result.meta.get("profile", "quick"))) / result.name
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
    return (f"profile: {m.get('profile')} | device: {m.get('device')}\n"
            f"data: {m.get('data')}\n"
            f"date: {m.get('date')} | wall time: {m.get('wall_s')} s")
