"""Command line: run an experiment without Jupyter (e.g. on a GPU machine).

    python -m sslkit list
    python -m sslkit run baseline --profile quick -p model=lenet [--data-root DIR] [--device cuda]
    python -m sslkit run ssl -p table=table1 -p 'runs={"LeNet 2": {"filter": 5e-3, "channel": 5e-3}}'
    torchrun --standalone --nproc_per_node=4 -m sslkit run alexnet -p model=caffenet --profile paper ...
    python -m sslkit headless --profile paper --budget-s 1500 table3_convnet_figure5 figure6_resnet_depth
    python -m sslkit report [--figures DIR]     # DIR/REPORT.md: every paper number, ours, a verdict
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import distributed, experiments, headless, params, profiles, reproduction, settings
from .data import DataNotFoundError
from .results import banner


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sslkit", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the experiments")
    run = sub.add_parser("run", help="run one experiment, print its tables, write them to figures/")
    run.add_argument("experiment")
    run.add_argument("--profile", default=profiles.DEFAULT, choices=profiles.PROFILES)
    run.add_argument("--data-root", default=None, help="data root (else $SSLKIT_DATA, else ../shared/data, else ~/.cache/sslkit/data)")
    run.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--force", action="store_true", help="recompute even when cached")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--out", default=None, help="results folder (default figures/, smoke: build/figures-smoke)")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="an experiment parameter (repeatable)")
    headless_cmd = sub.add_parser("headless", help="run notebooks' experiments without Jupyter within a time budget, "
                                  "training stages kept in the run store (runs/); exit 3 when out of time")
    headless_cmd.add_argument("notebooks", nargs="+", help="notebook names in notebooks/ (or paths)")
    headless_cmd.add_argument("--profile", default="paper", choices=profiles.PROFILES)
    headless_cmd.add_argument("--budget-s", type=float, default=None, help="stop (with a checkpoint) after this long")
    headless_cmd.add_argument("--out", default=None, help="results folder (default figures/, smoke: build/figures-smoke)")
    headless_cmd.add_argument("--jobs", type=int, default=1, help="train the points of each notebook's sweep in this "
                              "many processes on the same device, then render (default 1: one after another)")
    report = sub.add_parser("report", help="write REPORT.md: every number of the papers, ours beside it, a verdict")
    report.add_argument("--figures", default=None, help="the results folder to read and write into (default figures/)")
    args = ap.parse_args(argv)
    if args.cmd == "report":
        folder = args.figures or settings.results_dir("quick")
        if not Path(folder).is_dir():
            print(f"error: no results folder {folder}: run the notebooks first (make reproduce) or name "
                  "the folder with --figures", file=sys.stderr)
            return 2
        path, counts = reproduction.write(folder)
        print(f"{path}: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("reproduced", "deviates", "not run")))
        return 0
    if args.cmd == "headless":
        try:
            left = headless.run(args.notebooks, profile=args.profile, budget_s=args.budget_s, out=args.out,
                                jobs=args.jobs)
        except (DataNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if left:
            print(f"not finished: {' '.join(left)} (run the same command again to go on)")
        return 3 if left else 0
    if args.cmd == "list":
        for name in sorted(experiments.EXPERIMENTS):
            print(f"{name:10s} {experiments.describe(name)}")
        return 0
    if distributed.init() and not distributed.is_main():
        args.no_progress = True      # one progress bar, one printout: rank 0's
    try:
        pairs = [kv.split("=", 1) for kv in args.param]
        if any(len(p) != 2 for p in pairs):
            raise ValueError("parameters are NAME=VALUE")
        options = dict(profile=args.profile, data_root=args.data_root, device=args.device, seed=args.seed,
                       force=args.force, progress=not args.no_progress)
        outcome = experiments.run(args.experiment, {k: params.parse_value(v) for k, v in pairs}, fixed=options,
                                  fixed_by="options of their own (--profile, --data-root, --device, --seed, "
                                           "--force, --no-progress)", out=args.out)
    except (DataNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not distributed.is_main():
        return 0
    print(banner(outcome.result))
    for name, df in outcome.result.tables.items():
        if name != "history":
            print(f"\n{name}\n{df.to_string(index=False)}")
    print(f"\nwritten to {outcome.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
