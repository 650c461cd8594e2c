"""Every notebook runs end to end on the smoke profile (papermill), and rejects bad parameters."""
from pathlib import Path

import papermill as pm
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_smoke(nb, tmp_path):
    pm.execute_notebook(str(nb), str(tmp_path / nb.name), parameters={"profile": "smoke", "progress": False},
                        kernel_name="python3", cwd=str(nb.parent), progress_bar=False)


def test_unknown_parameter_stops_with_clear_message(tmp_path):
    nb = NOTEBOOKS[0]
    with pytest.raises(pm.PapermillExecutionError, match="unknown parameter 'sede'"):
        pm.execute_notebook(str(nb), str(tmp_path / nb.name), parameters={"profile": "smoke", "sede": 1},
                            kernel_name="python3", cwd=str(nb.parent), progress_bar=False)


def test_notebooks_are_committed_without_outputs():
    import nbformat
    for nb in NOTEBOOKS:
        for cell in nbformat.read(nb, as_version=4).cells:
            assert cell.cell_type != "code" or (not cell.outputs and cell.execution_count is None), nb.name


def test_notebook_parameter_that_the_notebook_fixes_is_refused():
    from sslkit import notebook

    with pytest.raises(ValueError, match=r"\['table'\] are set by this notebook"):
        notebook.run("ssl", {"table": "table2", "runs": {"x": {"filter": 1e-3}}}, table="table1")
