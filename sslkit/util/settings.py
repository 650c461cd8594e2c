"""Where things are: the data root, the run cache and the results folder, in one place.

Each is read from the environment when it is asked for (not at import), so a test or a
notebook can point sslkit elsewhere by setting a variable.

    data root      the ``data_root`` argument, else ``$SSLKIT_DATA``, else ``../shared/data`` beside
                   the repository when it exists, else ``~/.cache/sslkit/data``
    cache          ``$SSLKIT_CACHE``, else ``~/.cache/sslkit`` (decoded images; trained runs in
                   ``runs/`` there, or in ``$SSLKIT_RUNS``)
    store          ``runs/`` of the repository: trained stages committed with the results
                   (e.g. from a GPU machine), looked up after the cache
    results        ``$SSLKIT_FIGURES``, else ``figures/`` of the repository; the smoke
                   profile's meaningless numbers go to ``build/figures-smoke/`` instead
    training       ``$SSLKIT_TRAIN=0`` (``make reproduce TRAIN=0``): render from the stores only;
                   a stage they lack is an error instead of a training run
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # sslkit/util/settings.py -> the repository
DATA_ENV = "SSLKIT_DATA"
SHARED_DATA_ROOT = REPO.parent / "shared" / "data"
DEFAULT_DATA_ROOT = Path("~/.cache/sslkit/data").expanduser()


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The data root: ``explicit`` if given, else ``$SSLKIT_DATA``, else ``../shared/data``
    beside the repository when that folder exists, else ``~/.cache/sslkit/data``."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return SHARED_DATA_ROOT if SHARED_DATA_ROOT.is_dir() else DEFAULT_DATA_ROOT


def cache_dir() -> Path:
    """The cache: trained runs (``runs/``) and decoded image folders (``decoded/``)."""
    return Path(os.environ.get("SSLKIT_CACHE", "~/.cache/sslkit")).expanduser()


def runs_dir() -> Path:
    """Where training stages are written: ``$SSLKIT_RUNS``, else ``<cache>/runs``."""
    return Path(os.environ["SSLKIT_RUNS"]).expanduser() if os.environ.get("SSLKIT_RUNS") else cache_dir() / "runs"


def store_dir() -> Path:
    """The committed run store, ``runs/`` of the repository (``$SSLKIT_STORE`` overrides)."""
    return Path(os.environ.get("SSLKIT_STORE", REPO / "runs")).expanduser()


def run_roots() -> list[Path]:
    """Where a training stage is looked for, in order: :func:`runs_dir`, then :func:`store_dir`."""
    roots = [runs_dir(), store_dir()]
    return roots[:1] if roots[0].resolve() == roots[1].resolve() else roots


def training_allowed() -> bool:
    """False when ``$SSLKIT_TRAIN`` is ``0`` (or ``false``, ``no``): stages are only loaded."""
    return os.environ.get("SSLKIT_TRAIN", "1").strip().lower() not in ("0", "false", "no")


def deadline() -> float | None:
    """``$SSLKIT_DEADLINE`` (a ``time.time()``) after which training checkpoints and stops."""
    return float(os.environ["SSLKIT_DEADLINE"]) if os.environ.get("SSLKIT_DEADLINE") else None


def results_dir(profile: str) -> Path:
    """Where published results go for ``profile`` (see the module docstring)."""
    if os.environ.get("SSLKIT_FIGURES"):
        return Path(os.environ["SSLKIT_FIGURES"])
    return REPO / ("build/figures-smoke" if profile == "smoke" else "figures")
