"""JupyterLab in a real browser: start it on a free localhost port, open a notebook in headless
Chromium (Debian's package, driven by Playwright), run all cells through the UI on the smoke
profile, and check that the comparison table and a figure are rendered. The screenshot goes
to build/browser/. CI installs chromium (.ci/run); elsewhere the test is skipped without it."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = REPO / "build" / "browser" / "baselines_smoke.png"
# Flags for a closed network and a root user (see the machine notes): no sandbox, no
# background requests that the network would refuse.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer at {url} within {timeout} s")


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server over a folder holding the baselines notebook with the smoke
    profile injected (as papermill would), results and caches in ``tmp_path``."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run should have installed it (apt-get install chromium)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    nb = load_notebook_node(str(REPO / "notebooks" / "baselines.ipynb"))
    nb = parameterize_notebook(nb, {"profile": "smoke"})
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    root = tmp_path / "lab"
    root.mkdir()
    nbformat.write(nb, root / "baselines.ipynb")
    port, token = _free_port(), "sslkit-test"
    env = {**os.environ, "SSLKIT_FIGURES": str(tmp_path / "figures"), "SSLKIT_CACHE": str(tmp_path / "cache"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc)
        yield f"http://127.0.0.1:{port}/lab/tree/baselines.ipynb?token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_notebook_runs_in_jupyterlab_in_chromium(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2000})
            try:
                headers, errors, width = _run_all_cells(page, lab)
            finally:  # what the page showed, also when something above timed out
                page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert errors == 0, (tmp_path / "lab.log").read_text()[-3000:]
    assert "paper error %" in headers and "our error %" in headers, headers
    assert width > 100  # the figure's PNG really loaded
    assert json.loads((tmp_path / "figures" / "baseline_lenet" / "provenance.json").read_text())["profile"] == "smoke"


def _run_all_cells(page, url: str) -> tuple[list[str], int, int]:
    """Open ``url``, run all cells from the Run menu, wait for a table and a figure; return the
    table's headers, the number of error outputs and the figure's pixel width."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    # The kernel is connected and idle when the status bar says so.
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    table = page.locator(".jp-OutputArea-output table").first
    table.wait_for(timeout=int(os.environ.get('SSLKIT_BROWSER_TIMEOUT_S', 240)) * 1000)
    figure = page.locator(".jp-OutputArea-output img").first
    figure.wait_for(timeout=60_000)
    figure.scroll_into_view_if_needed()
    headers = table.locator("th").all_inner_texts()
    errors = page.locator("[data-mime-type='application/vnd.jupyter.error']").count()
    return headers, errors, figure.evaluate("img => img.naturalWidth")
