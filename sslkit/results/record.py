"""Experiment results, their provenance, and where they are published."""
from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sslkit import __version__
from sslkit.training.runtime import device_name
from sslkit.util.io import save_figure, write_csv, write_json
from sslkit.util.settings import REPO, results_dir


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


def code_version() -> str:
    """The commit of the code that computed a result, with ``+dirty`` when the working tree had
    changes outside ``runs/`` and ``figures/`` (where results go), or ``unknown`` outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=20,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!runs", ":!figures")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if changed else "")


def provenance(*, profile: str, device, data: str, wall_s: float, **extra) -> dict:
    """What every published result carries: profile, device, data, date, wall time, the code's
    commit, versions (and, on a GPU, whether TF32 matrix units were allowed)."""
    cuda = {"tf32": torch.backends.cuda.matmul.allow_tf32} if torch.device(device).type == "cuda" else {}
    return {"profile": profile, "device": device_name(device), "data": data,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_s": round(wall_s, 1), "commit": code_version(), "sslkit": __version__, "torch": torch.__version__,
            **cuda, **extra}


def publish(result: ExperimentResult, figures: dict | None = None, out: str | os.PathLike | None = None) -> Path:
    """Write ``result``'s tables as CSV, ``figures`` (name -> matplotlib figure) as PNG and PDF,
    and ``provenance.json`` into ``out/<result.name>/`` (default: the profile's results folder,
    see :func:`sslkit.util.settings.results_dir`), replacing that folder as a whole: everything
    is written into a hidden folder beside it, which then takes its place, so no file of an
    earlier run survives and a crash leaves the earlier folder as it was. Returns the folder."""
    folder = Path(out or results_dir(result.meta.get("profile", "quick"))) / result.name
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{result.name}.new-"))
    try:
        for name, df in result.tables.items():
            write_csv(df, staging / f"{name}.csv")
        for name, fig in (figures or {}).items():
            save_figure(fig, staging / f"{name}.png")
            save_figure(fig, staging / f"{name}.pdf")
        write_json(staging / "provenance.json", result.meta)
        staging.chmod(0o755)
        _replace_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _replace_folder(new: Path, folder: Path) -> None:
    """Put ``new`` in ``folder``'s place: two renames (the old one aside, the new one in), then
    the old one is deleted. Only between the two renames is there no folder."""
    if not folder.exists():
        os.rename(new, folder)
        return
    old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old-"))
    os.rename(folder, old / folder.name)
    os.rename(new, folder)
    shutil.rmtree(old, ignore_errors=True)


def banner(result: ExperimentResult) -> str:
    """The provenance as a few lines for the top of a notebook or a command's output."""
    m = result.meta
    schedule = f"schedule: {m['schedule']}\n" if m.get("schedule") else ""
    return (f"profile: {m.get('profile')} | device: {m.get('device')}\n"
            f"data: {m.get('data')}\n{schedule}"
            f"date: {m.get('date')} | wall time: {m.get('wall_s')} s | commit: {m.get('commit', 'not recorded')}")
