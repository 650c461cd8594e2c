"""The one command line: experiments without Jupyter (e.g. on a GPU machine), the notebooks,
the report and the benchmarks.

    python -m sslkit list
    python -m sslkit run baseline --profile quick -p model=lenet [--data-root DIR] [--device cuda]
    python -m sslkit run ssl -p table=table1 -p 'runs={"LeNet 2": {"filter": 5e-3, "channel": 5e-3}}'
    torchrun --standalone --nproc_per_node=4 -m sslkit run alexnet -p model=caffenet --profile paper ...
    python -m sslkit headless --profile paper --budget-s 1500 table3_convnet_figure5 figure6_resnet_depth
    python -m sslkit report [--figures DIR]     # DIR/REPORT.md: every paper number, ours, a verdict
    python -m sslkit execute NOTEBOOK OUTDIR -p profile smoke   # one notebook through papermill (make reproduce)
    python -m sslkit bench train --models resnet20          # benchmarks (python -m sslkit bench --help)
    python -m sslkit kernelspec KERNEL.json                 # quiet the registered Jupyter kernel (make env)
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sslkit import experiments
from sslkit.app import headless
from sslkit.experiments import params
from sslkit.pipeline.store import StageMissing
from sslkit.reporting import report
from sslkit.results.record import banner
from sslkit.training import distributed
from sslkit.training.data import DataNotFoundError
from sslkit.util import profiles, settings


def _tools() -> dict:
    """The subcommands with command lines of their own: name -> (main(argv), help)."""
    from sslkit.app import bench, execute, gpu, kernelspec

    return {"execute": (execute.main, "run one notebook through papermill (make reproduce): a failed run "
                                      "never replaces the last good executed copy"),
            "bench": (bench.main, "benchmarks (not tests): layer timings, SSL step overhead, trainer speed, "
                                  "compaction time, network latency"),
            "gpu": (gpu.main, "the prepared GPU session: Table 4's GPU and 2:4 rows, Figure 1, the thread "
                              "sweep, then the ResNet-20 paper baseline, within one budget"),
            "kernelspec": (kernelspec.main, "quiet the registered Jupyter kernel's start-up warning (make env)")}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    tools = _tools()
    if argv and argv[0] in tools:
        return tools[argv[0]][0](argv[1:])
    ap = argparse.ArgumentParser(prog="python -m sslkit", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the experiments")
    for name, (_, text) in tools.items():
        sub.add_parser(name, help=text, add_help=False)
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
    headless_cmd.add_argument("--profile", default=profiles.DEFAULT, choices=profiles.PROFILES)
    headless_cmd.add_argument("--budget-s", type=float, default=None, help="stop (with a checkpoint) after this long")
    headless_cmd.add_argument("--out", default=None, help="results folder (default figures/, smoke: build/figures-smoke)")
    headless_cmd.add_argument("--jobs", type=int, default=1, help="train the points of each notebook's sweep in this "
                              "many processes on the same device, then render (default 1: one after another)")
    headless_cmd.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                              help="replace a value of the notebooks' parameters cells (repeatable)")
    headless_cmd.add_argument("--progress", action="store_true", help="progress bars on stderr (for a log file: "
                              "a line every few seconds per stage)")
    report_cmd = sub.add_parser("report", help="write REPORT.md: every number of the papers, ours beside it, a verdict")
    report_cmd.add_argument("--figures", default=None, help="the results folder to read and write into "
                            "(default: the profile's, figures/; smoke: build/figures-smoke)")
    report_cmd.add_argument("--profile", default=profiles.DEFAULT, choices=profiles.PROFILES)
    args = ap.parse_args(argv)
    if args.cmd == "report":
        folder = args.figures or settings.results_dir(args.profile)
        if not Path(folder).is_dir():
            print(f"error: no results folder {folder}: run the notebooks first (make reproduce) or name "
                  "the folder with --figures", file=sys.stderr)
            return 2
        readme = settings.REPO / "README.md" if Path(folder).resolve() == (settings.REPO / "figures").resolve() else None
        path, counts = report.write(folder, readme)
        print(f"{path}: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
        return 0
    if args.cmd == "headless":
        if args.progress:
            os.environ["SSLKIT_PROGRESS"] = "log"   # plain lines, also into a log file
        try:
            left = headless.run(args.notebooks, profile=args.profile, budget_s=args.budget_s, out=args.out,
                                jobs=args.jobs, progress=args.progress, parameters=_parameters(args.param))
        except (DataNotFoundError, StageMissing, ValueError) as exc:
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
        options = dict(profile=args.profile, data_root=args.data_root, device=args.device, seed=args.seed,
                       force=args.force, progress=not args.no_progress)
        outcome = experiments.run(args.experiment, _parameters(args.param), fixed=options,
                                  fixed_by="options of their own (--profile, --data-root, --device, --seed, "
                                           "--force, --no-progress)", out=args.out)
    except (DataNotFoundError, StageMissing, ValueError) as exc:
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


def _parameters(pairs: list[str]) -> dict:
    """``-p NAME=VALUE`` options as a dict of parsed values (see :func:`params.parse_value`)."""
    split = [kv.split("=", 1) for kv in pairs]
    if any(len(p) != 2 for p in split):
        raise ValueError("parameters are NAME=VALUE")
    return {k: params.parse_value(v) for k, v in split}


if __name__ == "__main__":
    sys.exit(main())
