"""Every notebook runs end to end on the smoke profile (papermill), and rejects bad parameters."""
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import papermill as pm
import pytest

from sslkit.reporting import report
from sslkit.util import settings

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
# Shorter sweeps than the notebooks' own (two points each, where a point is a trained run): the
# end-to-end path is the same, at a third of the time. Every value here is one of the
# notebook's own, so the plan stays the notebook's.
SHORTER = {
    "figure6_resnet_depth": {"strengths": [0.002, 0.007], "references": []},
    "figure7a_2d_filters": {"fractions": [0.1, 0.35]},
    "granularity_mao2017": {"networks": ["lenet"], "densities": [0.5, 0.25, 0.12]},
    "precision_bf16": {"networks": {"lenet": None}, "seeds": [0, 1]},
    "table3_convnet_figure5": {"runs": {"ConvNet 2": {"filter": 3e-3, "shape": 3e-3}}},
    "table4_alexnet_standin": {"runs_keep": [1, 2]},
    "table4_speed": {"table4_rows": [1, 2]},          # an l1 row and an SSL row
    "figure1_csr_speedup": {"table4_rows": [1]},
    "tradeoff_curves": {"sweeps_keep": {"table1": [0.01, 0.013], "mlp": [6e-4, 8e-4]}},
}


def _shorter(nb: Path) -> dict:
    """The parameters that shorten ``nb``'s sweep (see :data:`SHORTER`), from its own values."""
    from sslkit.app import headless

    want = dict(SHORTER.get(nb.stem, {}))
    _, values, _ = headless.plan(nb)
    if "runs_keep" in want:
        want["runs"] = {k: values["runs"][k] for k in want.pop("runs_keep")}
    if "sweeps_keep" in want:
        want["sweeps"] = {t: {**values["sweeps"][t], "strengths": s} for t, s in want.pop("sweeps_keep").items()}
    for key, value in want.items():
        assert key in values, (nb.stem, key)
    return want


# One notebook of each experiment kind runs through papermill (a kernel, the parameters
# injected, the executed copy's outputs checked). The others of a kind already run that way run
# their notebook's plan in this process, as `python -m sslkit headless` does: the same call with
# the same parameters, without a kernel's start and imports (about 7 s a notebook here).
IN_PROCESS = {"table1_lenet_filters_channels", "table2_lenet_filter_shapes", "mlp_table_figure4b",
              "figure1_csr_speedup"}
PAPERMILL = [nb for nb in NOTEBOOKS if nb.stem not in IN_PROCESS]


def test_every_experiment_kind_has_a_notebook_run_through_papermill():
    from sslkit.app import headless

    kinds = {nb.stem: headless.plan(nb)[0] for nb in NOTEBOOKS}
    assert IN_PROCESS <= set(kinds)
    assert {kinds[s] for s in IN_PROCESS} <= {k for s, k in kinds.items() if s not in IN_PROCESS}


def _in_process(nb: Path) -> None:
    """``nb``'s plan run here (see :data:`IN_PROCESS`): its tables and figures published."""
    from sslkit.app import headless, notebook

    name, values, fixed = headless.plan(nb)
    values.update(profile="smoke", progress=False, **_shorter(nb))
    outcome = notebook.run(name, values, show=False, **fixed)
    assert [t for t in outcome.result.tables if t != "history"] and outcome.figures
    for table in outcome.result.tables:
        assert (outcome.folder / f"{table}.csv").exists(), table
    for figure in outcome.figures:
        assert (outcome.folder / f"{figure}.png").stat().st_size > 0, figure


def _execute(nb: Path, out: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """``nb`` executed by papermill in a process of its own (as ``papermill`` on the command
    line), its kernel on one thread; returns the executed copy and the finished process."""
    # The baselines notebook retrains (force), so that its training bar is surely in the output.
    force = {"force": True} if nb.stem == "baselines" else {}
    call = out / f"{nb.stem}.call.pkl"
    call.write_bytes(pickle.dumps(dict(
        input_path=str(nb), output_path=str(out / nb.name), kernel_name="python3", cwd=str(nb.parent),
        progress_bar=False, parameters={"profile": "smoke", "progress": True, **force, **_shorter(nb)})))
    code = "import pickle, sys, papermill; papermill.execute_notebook(**pickle.load(open(sys.argv[1], 'rb')))"
    return out / nb.name, subprocess.run([sys.executable, "-c", code, str(call)], capture_output=True,
                                         env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=1800,
                                         encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def executed(request, tmp_path_factory) -> dict:
    """The papermill notebooks this session's tests check (see :func:`_execute`), two at a time:
    on two cores a kernel's start and a smoke run are mostly one thread's work, so two at once
    take about half the time of one after another. Concurrent notebooks share the run store as
    ``--jobs`` does (a file lock per stage). Returns ``{stem: (executed copy, finished process)}``."""
    out = tmp_path_factory.mktemp("executed")
    wanted = {item.callspec.params["nb"].stem for item in request.session.items
              if getattr(item, "originalname", "") == "test_notebook_smoke"}
    todo = [nb for nb in PAPERMILL if nb.stem in wanted]
    with ThreadPoolExecutor(2) as pool:
        return dict(zip((nb.stem for nb in todo), pool.map(lambda nb: _execute(nb, out), todo)))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_smoke(nb, request, tmp_path):
    """Runs end to end (through papermill, or in this process: see :data:`IN_PROCESS`); the
    executed copy shows its tables and every figure it made, and its progress bars as plain
    final lines (no widget left in the outputs). Under pytest-xdist each worker runs its own
    notebooks, one at a time (a session fixture would run them all in every worker)."""
    if nb.stem in IN_PROCESS:
        _in_process(nb)
    elif os.environ.get("PYTEST_XDIST_WORKER"):
        _through_papermill(nb, *_execute(nb, tmp_path))
    else:
        _through_papermill(nb, *request.getfixturevalue("executed")[nb.stem])
    _nothing_counted()


def _through_papermill(nb: Path, copy: Path, proc: subprocess.CompletedProcess) -> None:
    """``nb`` run by papermill (see :func:`executed`); its executed copy's outputs checked."""
    import nbformat

    assert proc.returncode == 0, proc.stderr[-4000:]
    outputs = [o for c in nbformat.read(copy, as_version=4).cells if c.cell_type == "code"
               for o in c.outputs]
    kinds = [set(o.get("data", {})) for o in outputs]
    assert any("text/html" in k for k in kinds)                      # a table
    assert any("image/png" in k for k in kinds)                      # a figure, inline
    assert not any("application/vnd.jupyter.widget-view+json" in k for k in kinds)
    texts = [o["data"]["text/plain"] for o, k in zip(outputs, kinds) if k == {"text/plain"}]
    if nb.stem == "baselines":   # the bar's last line ends on the final error, the one published
        line = next((t for t in texts if t.startswith("baseline") and "100%|" in t), None)
        assert line is not None, texts
        published = pd.read_csv(settings.results_dir("smoke") / "baseline_lenet" / "baseline.csv")["our error %"]
        assert f"err={published.iloc[0] / 100:.4f}" in line, (line, published.iloc[0])


def _nothing_counted() -> None:
    """What the notebooks published is judged with them, and the smoke profile counts nothing."""
    rep = report.numbers(settings.results_dir("smoke"))
    counted = rep[rep["verdict"].isin(["reproduced", "deviates", "check holds", "check fails"])]
    assert counted.empty, counted[["item", "row", "quantity", "verdict", "source", "profile"]].to_string()
    assert (rep[rep["ours"].notna()]["verdict"] == "not counted").all()


def test_unknown_parameter_stops_with_clear_message(tmp_path):
    nb = NOTEBOOKS[0]
    with pytest.raises(pm.PapermillExecutionError, match="unknown parameter 'sede'"):
        pm.execute_notebook(str(nb), str(tmp_path / nb.name), parameters={"profile": "smoke", "sede": 1},
                            kernel_name="python3", cwd=str(nb.parent), progress_bar=False)


def test_failed_run_keeps_the_last_good_executed_notebook(tmp_path, capsys):
    """sslkit.app.execute (what make reproduce runs): a failing notebook leaves the earlier executed
    copy byte for byte, keeps the failed one beside it, and its last line is the clear error."""
    from sslkit.app.execute import main

    nb = next(p for p in NOTEBOOKS if p.stem == "baselines")
    good = tmp_path / nb.name
    good.write_text("the last good run")
    rc = main([str(nb), str(tmp_path), "-k", "python3", "--no-progress", "-p", "profile", "smoke",
               "-p", "seed", "1.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and good.read_text() == "the last good run"
    assert (tmp_path / "baselines.failed.ipynb").exists()
    assert err[-1] == "error: baselines.ipynb: ValueError: parameter 'seed' should be int, got 1.5"
    assert not any("Traceback" in line for line in err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baselines.failed.ipynb", "baselines.ipynb"]  # no temp left


def test_notebooks_are_committed_without_outputs():
    import nbformat
    for nb in NOTEBOOKS:
        for cell in nbformat.read(nb, as_version=4).cells:
            assert cell.cell_type != "code" or (not cell.outputs and cell.execution_count is None), nb.name


def test_the_tracked_tree_fits_one_gpu_call():
    """Every tracked file travels to a GPU machine with each call, at most 64 MiB in all: the
    committed store (runs/) and figures/ must leave room for the code."""
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout.split(b"\0")
    sizes = {f.decode(): (root / f.decode()).stat().st_size for f in files if f and (root / f.decode()).is_file()}
    total = sum(sizes.values())
    biggest = sorted(sizes, key=sizes.get)[-3:]
    assert total < 60 * 2**20, f"the tracked tree is {total / 2**20:.1f} MiB (largest: {biggest}); a GPU call carries 64"


def test_notebook_parameter_that_the_notebook_fixes_is_refused():
    from sslkit.app import notebook

    with pytest.raises(ValueError, match=r"\['table'\] are set by this notebook"):
        notebook.run("ssl", {"table": "table2", "runs": {"x": {"filter": 1e-3}}}, table="table1")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_papermill_reads_every_parameter(nb):
    """Every assignment of the parameters cell is a parameter papermill recognizes (what
    `papermill --help-notebook` lists), so none is left out of `-p` help by a comment it cannot parse."""
    import ast

    import nbformat
    from papermill.translators import PythonTranslator

    cell = next(c for c in nbformat.read(nb, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    assigned = [t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign) for t in node.targets]
    assert [p.name for p in PythonTranslator.inspect(cell)] == assigned
