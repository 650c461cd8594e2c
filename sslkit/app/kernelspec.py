"""Quiet the registered Jupyter kernel: ``python -m sslkit kernelspec <kernel.json>``.

The kernel logs "Kernel is running over TCP without encryption" at WARNING every time it
starts; on one's own machine (loopback only) that says nothing, and under ``make reproduce``
it would be the last line before every notebook's output. The Makefile registers the kernel
with its log level at ERROR, so real errors still show.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from sslkit.util.io import write_text

QUIET = "--IPKernelApp.log_level=ERROR"


def quiet(path: str | Path) -> None:
    """Add :data:`QUIET` to the kernel spec's command line at ``path`` (once)."""
    spec = json.loads(Path(path).read_text())
    if QUIET not in spec["argv"]:
        spec["argv"].append(QUIET)
        write_text(path, json.dumps(spec, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m sslkit kernelspec KERNEL.json``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m sslkit kernelspec KERNEL.json", file=sys.stderr)
        return 2
    quiet(argv[0])
    return 0
