"""Run one notebook with papermill as ``make reproduce`` does, keeping the last good result:

    python -m sslkit execute notebooks/table1_lenet_filters_channels.ipynb build/quick \\
        -p profile quick [-p NAME VALUE ...] [-y 'runs: {...}'] [-k KERNEL]

The executed copy is written beside its final name and moved there only when every cell ran:
a failed run leaves the last good ``OUT_DIR/<notebook>`` as it was, keeps the failed copy (with
its traceback) as ``OUT_DIR/<notebook stem>.failed.ipynb``, and ends with one line saying what
went wrong, e.g. ``error: table1_lenet_filters_channels.ipynb: ValueError: unknown profile
'fast'; choose one of ['smoke', 'quick', 'paper']``. Exit status 0, or 1 when the notebook
failed, 2 when it could not be started.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def execute(notebook: str | Path, out_dir: str | Path, parameters: dict, *, kernel: str | None = None,
            progress: bool = True) -> int:
    """Execute ``notebook`` (working directory: its folder) with ``parameters`` into ``out_dir``.

    Returns:
        0 on success, 1 when a cell raised (the error printed as the last line), 2 when the
        notebook could not be run at all.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook = Path(notebook)
    out = Path(out_dir) / notebook.name
    out.parent.mkdir(parents=True, exist_ok=True)
    running = out.with_name(f".{notebook.stem}.running.ipynb")
    failed = out.with_name(f"{notebook.stem}.failed.ipynb")
    try:
        papermill.execute_notebook(str(notebook), str(running), parameters=parameters, kernel_name=kernel,
                                   cwd=str(notebook.parent), progress_bar=progress)
        os.replace(running, out)
    except PapermillExecutionError as exc:
        os.replace(running, failed)
        kept = f"{out} is the last good run, unchanged" if out.exists() else f"no earlier run in {out.parent}"
        print(f"the failed run, with its traceback: {failed} ({kept})", file=sys.stderr)
        print(f"error: {notebook.name}: {exc.ename}: {exc.evalue}", file=sys.stderr)
        return 1
    except Exception as exc:  # no such notebook or kernel, unreadable file ...
        print(f"error: {notebook.name}: could not run it: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        if running.exists():            # interrupted: no half-written copy left
            running.unlink()
    if failed.exists():                 # an older failure, now superseded
        failed.unlink()
    return 0


def _value(text: str):
    """A ``-p`` value typed as papermill's command line types it (True/False/None, int, float, str)."""
    from papermill.cli import _resolve_type

    return _resolve_type(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sslkit execute", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook")
    ap.add_argument("out_dir")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("-y", "--yaml", action="append", default=[], help="parameters as YAML")
    ap.add_argument("-k", "--kernel", default=None)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    import yaml

    parameters = {}
    for text in args.yaml:
        try:
            parameters.update(yaml.safe_load(text) or {})
        except (yaml.YAMLError, TypeError, ValueError) as exc:
            print(f"error: -y {text!r} is not a YAML mapping: {exc}", file=sys.stderr)
            return 2
    parameters.update({name: _value(value) for name, value in args.parameter})
    return execute(args.notebook, args.out_dir, parameters, kernel=args.kernel, progress=not args.no_progress)

