"""The notebooks' experiments without Jupyter, within a time budget, going on where the last
call stopped: for a GPU machine that has torch but no papermill, lent for a limited time.

    python -m sslkit headless --profile paper --budget-s 1500 table3_convnet_figure5 figure6_resnet_depth
    python -m sslkit headless -p 'references=[]' figure6_resnet_depth   # a parameter replaced

Each notebook's parameters cell is the plan (its values, with ``--profile``), and its call
cell names the experiment and what the notebook fixes, so the notebook stays the one place
that says what a figure runs. Training stages are kept in the run store (``runs/`` of the
repository, see :func:`sslkit.util.settings.store_dir`): a finished stage as its final weights and
result, an unfinished one as its last checkpoint. The next call, or a user's notebook, finds
them there: it goes on from the checkpoint, or renders without retraining. When the budget is
spent, the stage in progress saves a checkpoint and the command stops with exit code 3,
naming what remains.

With ``--jobs N`` the independent runs of a notebook's sweep (the parameter its experiment
names in ``SWEEP``: ``strengths``, ``runs``, ``fractions``) train concurrently, in N processes
on the same device, each one point of the sweep (its results discarded, its stages kept); a
stage two of them need, such as the baseline, is trained once (a lock per stage) and the others
wait for it. The whole notebook then runs once more and renders from the stages, so that a
sweep can cost about its baseline plus its longest point.
"""
from __future__ import annotations

import ast
import json
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from sslkit import experiments
from sslkit.training.loop import OutOfTime
from sslkit.util import settings

NOTEBOOKS = settings.REPO / "notebooks"


def plan(notebook: str | os.PathLike) -> tuple[str, dict, dict]:
    """What a notebook runs: (experiment name, its parameters cell's values, the arguments its
    call fixes). ``notebook`` is a path or a name in ``notebooks/``."""
    path = Path(notebook)
    if not path.exists():
        path = NOTEBOOKS / f"{Path(notebook).stem}.ipynb"
    if not path.exists():
        raise ValueError(f"no notebook {notebook!r}; there are {sorted(p.stem for p in NOTEBOOKS.glob('*.ipynb'))}")
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    params_cell = next((c for c in cells if "parameters" in c["metadata"].get("tags", [])), None)
    if params_cell is None:
        raise ValueError(f"{path.name} has no cell tagged 'parameters'")
    values: dict = {}
    exec("".join(params_cell["source"]), {}, values)  # the notebook's own parameters cell
    calls = [node for c in cells if c is not params_cell for node in ast.walk(ast.parse("".join(c["source"])))
             if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "run"]
    if len(calls) != 1:
        raise ValueError(f"{path.name} should make one notebook.run(...) call, found {len(calls)}")
    call = calls[0]
    fixed = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    return ast.literal_eval(call.args[0]), values, fixed


def parts(name: str, values: dict) -> list[dict]:
    """The parameter sets of one sweep point each, for experiment ``name`` with ``values``: its
    ``SWEEP`` parameter (the first of them that is set) cut into single points, with the
    experiment's ``PART`` overrides (what a point need not compute, e.g. timing); ``[values]``
    when the experiment declares no sweep or the sweep has one point."""
    experiment = experiments.get(name)
    for key in getattr(experiment, "SWEEP", ()):
        sweep = values.get(key)
        if sweep is None:
            continue
        items = [{k: v} for k, v in sweep.items()] if isinstance(sweep, dict) else [[v] for v in sweep]
        if len(items) < 2:
            break
        return [{**values, **getattr(experiment, "PART", {}), key: item} for item in items]
    return [values]


def _train_part(name: str, values: dict, fixed: dict, threads: int) -> str | None:
    """One sweep point in its own process (results to a temporary folder, thrown away; the
    stages stay in the run store). Returns None, or the out-of-time message."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as out:
        try:
            experiments.run(name, values, fixed=fixed, fixed_by="the notebook", out=out)
        except OutOfTime as exc:
            return str(exc)
    return None


def _train_concurrently(name: str, values: dict, fixed: dict, jobs: int) -> list[str]:
    """Train the sweep points of one notebook in ``jobs`` processes; the out-of-time messages."""
    points = parts(name, values)
    if jobs < 2 or len(points) < 2:
        return []
    threads = max(1, torch.get_num_threads() // min(jobs, len(points)))
    with ProcessPoolExecutor(min(jobs, len(points)), mp_context=multiprocessing.get_context("spawn")) as pool:
        done = [pool.submit(_train_part, name, p, fixed, threads) for p in points]
    return [d.result() for d in done if d.result() is not None]


def run(notebooks: list[str], *, profile: str, budget_s: float | None = None, out: str | None = None,
        progress: bool = False, jobs: int = 1, parameters: dict | None = None) -> list[str]:
    """Run each notebook's experiment under ``profile`` until done or until ``budget_s``
    seconds have passed; training stages go to the run store. With ``jobs`` > 1 the points of
    each notebook's sweep train first in that many processes (see the module docstring).
    ``parameters`` replace values of the notebooks' parameters cells (as papermill's ``-p``
    does; each must be a parameter of every notebook named). Returns the notebooks not
    finished (empty when all are)."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    parameters = dict(parameters or {})
    plans = [plan(notebook) for notebook in notebooks]   # every notebook checked before anything runs
    for notebook, (_, values, _) in zip(notebooks, plans):
        unknown = sorted(set(parameters) - set(values))
        if unknown:
            raise ValueError(f"{notebook} has no parameter {', '.join(map(repr, unknown))}")
    deadline = None if budget_s is None else time.time() + budget_s
    previous = (os.environ.get("SSLKIT_RUNS"), os.environ.get("SSLKIT_DEADLINE"))
    os.environ["SSLKIT_RUNS"] = str(settings.store_dir())
    if deadline is not None:
        os.environ["SSLKIT_DEADLINE"] = str(deadline)
    try:
        for i, (notebook, (name, values, fixed)) in enumerate(zip(notebooks, plans)):
            values.update(parameters, profile=profile, progress=progress)
            started = time.time()
            stopped = _train_concurrently(name, values, fixed, jobs)
            if stopped:
                print(f"{notebook}: out of time ({stopped[0]}); checkpoints kept in {settings.store_dir()}")
                return list(notebooks[i:])
            try:
                outcome = experiments.run(name, values, fixed=fixed, fixed_by=f"notebook {notebook}", out=out)
            except OutOfTime as exc:
                print(f"{notebook}: out of time ({exc}); checkpoint kept in {settings.store_dir()}")
                return list(notebooks[i:])
            print(f"{notebook}: done in {time.time() - started:.0f} s -> {outcome.folder}")
    finally:
        for key, value in zip(("SSLKIT_RUNS", "SSLKIT_DEADLINE"), previous):
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return []
