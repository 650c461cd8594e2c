"""The prepared GPU session: what only a GPU machine measures, in one call of at most
``--budget-s`` seconds (a lent machine gives about 12 minutes), the GPU-only timings first,
then the ResNet-20 baseline on the paper's schedule with the time that is left.

    python -m sslkit gpu --out $OUT --budget-s 700                   # on the lent machine
    python -m sslkit gpu --out /tmp/gpu --device cpu --profile smoke  # the same steps here, to test them

Steps, each a subprocess (``python -m sslkit headless ...``) with a time limit of its own, so
that one failure or overrun does not cost the others:

    table4_speed   Table 4's speed rows on the device at the paper's sparsity: dense (cuBLAS) vs
                   CSR (cuSPARSE) vs the compact GEMM, and the 2:4 semi-structured rows
                   (cuSPARSELt), then Figure 1 on the device
    threads        Figure 7(c)'s thread sweep on the machine's CPU cores (1, 2, 4, ... up to all
                   of them) at the same sparsity
    resnet20       the ResNet-20 baseline on the paper's schedule (64k iterations) until the
                   budget ends; its checkpoint comes back, and the next session goes on from it

Not prepared yet: Table 4's GPU rows on the *learned* sparsity, which need the stand-in's
trained CaffeNet stages (228 MB each, more than a call carries; the CPU campaign has not
trained them yet).

What comes back is three files (the device tool returns at most eight): ``gpu-results.tar.gz``
(the results folders the steps wrote, and every file of the run store they changed),
``gpu-summary.json`` (per step: the command, exit code, seconds and the device) and
``gpu.log`` (every step's output). Unpack the archive in the repository and commit it with
the device's name (it is in the summary and in every result's provenance).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from sslkit.util import settings

RESERVE_S = 30   # kept back from the budget for packing the results


def steps(device: str, profile: str, work: Path, threads: list[int]) -> list[dict]:
    """The session's steps in order: name, command line, the most seconds it may take (None:
    what is left)."""
    sslkit = [sys.executable, "-m", "sslkit", "headless", "--progress"]
    return [
        {"name": "table4_speed", "limit_s": 240,
         "argv": sslkit + ["--profile", profile, "--out", str(work / "figures"), "-p", f"device={device!r}",
                           "table4_speed", "figure1_csr_speedup"]},
        {"name": "threads", "limit_s": 240,   # the quick profile's shorter timings: 5 thread counts
         "argv": sslkit + ["--profile", "smoke" if profile == "smoke" else "quick", "--out", str(work / "threads"),
                           "-p", "device='cpu'", "-p", f"threads={threads!r}", "table4_speed"]},
        {"name": "resnet20", "limit_s": None, "budget": True,
         "argv": sslkit + ["--profile", "smoke" if profile == "smoke" else "paper", "--out", str(work / "figures"),
                           "-p", "model='resnet20'", "-p", f"device={device!r}", "baselines"]},
    ]


def thread_counts(cores: int | None = None) -> list[int]:
    """1, 2, 4, ... up to ``cores`` (default: this machine's), ``cores`` itself last."""
    cores = cores or os.cpu_count() or 1
    out = [1]
    while out[-1] * 2 < cores:
        out.append(out[-1] * 2)
    return out + [cores] if cores > 1 else out


def run(out: Path, *, budget_s: float, device: str, profile: str) -> dict:
    """Run every step within ``budget_s`` seconds, then pack what they wrote into ``out``.

    Returns:
        The summary written to ``out/gpu-summary.json``.
    """
    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    summary = {"device": _device_name(device), "profile": profile, "budget_s": budget_s, "steps": []}
    with open(out / "gpu.log", "w") as log:
        for step in steps(device, profile, work, thread_counts()):
            left = budget_s - RESERVE_S - (time.time() - started)
            limit = left if step["limit_s"] is None else min(step["limit_s"], left)
            entry = {"name": step["name"], "command": " ".join(step["argv"][1:])}
            if limit < 20:
                summary["steps"].append({**entry, "skipped": "no time left"})
                continue
            argv = step["argv"] + (["--budget-s", str(int(limit - 20))] if step.get("budget") else [])
            log.write(f"== {step['name']}: {' '.join(argv[1:])}\n")
            log.flush()
            t0 = time.time()
            try:
                rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=limit).returncode
            except subprocess.TimeoutExpired:
                rc = "killed at its time limit"
            summary["steps"].append({**entry, "exit": rc, "seconds": round(time.time() - t0, 1)})
            log.write(f"== {step['name']}: exit {rc} after {time.time() - t0:.0f} s\n")
    _pack(out / "gpu-results.tar.gz", work, settings.store_dir(), since=started)
    (out / "gpu-summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _device_name(device: str) -> str:
    from sslkit.training.runtime import device_name

    return device_name(device)


def _pack(archive: Path, work: Path, store: Path, *, since: float) -> None:
    """The results folders under ``work`` (as ``work/...`` in the archive) and the files of
    ``store`` changed since ``since`` (as ``runs/...``)."""
    with tarfile.open(archive, "w:gz") as tar:
        if work.is_dir():
            tar.add(work, arcname="work")
        for f in sorted(store.rglob("*")) if store.is_dir() else []:
            if f.is_file() and f.stat().st_mtime >= since:
                tar.add(f, arcname=str(Path("runs") / f.relative_to(store)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sslkit gpu", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="where the three result files go (the device tool's $OUT)")
    ap.add_argument("--budget-s", type=float, default=700, help="the whole session's seconds (default 700)")
    ap.add_argument("--device", default="cuda", help="cuda (default), or cpu to try the steps here")
    ap.add_argument("--profile", default="converged", choices=("smoke", "converged"),
                    help="converged (the timings' budget of make reproduce) or smoke (a quick try on a CPU)")
    args = ap.parse_args(argv)
    summary = run(Path(args.out), budget_s=args.budget_s, device=args.device, profile=args.profile)
    for s in summary["steps"]:
        print(f"{s['name']:14s} " + (s.get("skipped") or f"exit {s['exit']} after {s['seconds']} s"))
    return 0 if all(s.get("exit") in (0, 3) for s in summary["steps"]) else 1   # 3: out of time, checkpointed


if __name__ == "__main__":
    sys.exit(main())
