"""The papers' numbers, with their own row labels (from ../shared/paper/TARGETS.md), so every
notebook can put them beside its own results. Errors are in percent.

Each table the SSL pipeline compares with is declared as a :class:`PaperTable`: the network
it is about, its rows, and its columns, each naming the statistic of ours it compares with
(a column of :func:`sslkit.sparsity.stats.sparsity_report`, or a function of that report). A
network's own baseline error is in its record (``sslkit/models/``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

# Per-layer values are lists in layer order (conv1, conv2, ... or input, hidden1, ...).
TABLE1 = [  # LeNet, filter-wise and channel-wise SSL
    dict(row="LeNet 1", error=0.9, filters=[20, 50], channels=[1, 20], flop=[100, 100], speedup=[1.00, 1.00]),
    dict(row="LeNet 2", error=0.8, filters=[5, 19], channels=[1, 4], flop=[25, 7.6], speedup=[1.64, 5.23]),
    dict(row="LeNet 3", error=1.0, filters=[3, 12], channels=[1, 3], flop=[15, 3.6], speedup=[1.99, 7.44]),
]
TABLE2 = [  # LeNet, shape-wise (and channel-wise) SSL; filter size = C*M*K left
    dict(row="LeNet 1", error=0.9, filter_size=[25, 500], channels=[1, 20], flop=[100, 100], speedup=[1.00, 1.00]),
    dict(row="LeNet 4", error=0.8, filter_size=[21, 41], channels=[1, 2], flop=[8.4, 8.2], speedup=[2.33, 6.93]),
    dict(row="LeNet 5", error=1.0, filter_size=[7, 14], channels=[1, 1], flop=[1.4, 2.8], speedup=[5.19, 10.82]),
]
MLP_TABLE = [  # neurons: input, hidden1, hidden2, output; FLOP per layer
    dict(row="MLP 1", error=1.43, neurons=[784, 500, 300, 10], flop=[100, 100, 100]),
    dict(row="MLP 2", error=1.34, neurons=[469, 294, 166, 10], flop=[35.18, 32.54, 55.33]),
    dict(row="MLP 3", error=1.53, neurons=[434, 174, 78, 10], flop=[19.26, 9.05, 26.00]),
]
MLP_TABLE[1]["dead_pixels"] = 40.18  # Figure 4(b): % of input pixels with no connection left in MLP 2
TABLE3 = [  # ConvNet on CIFAR-10; row/column sparsity of the lowered weight matrices (%)
    dict(row="ConvNet 1", error=17.9, row_sparsity=[12.5, 0, 0], column_sparsity=[0, 0, 0], speedup=[1.00, 1.00, 1.00]),
    dict(row="ConvNet 2", error=17.9, row_sparsity=[50.0, 28.1, 1.6], column_sparsity=[0, 59.3, 35.1], speedup=[1.43, 3.05, 1.57]),
    dict(row="ConvNet 3", error=16.9, row_sparsity=[31.3, 0, 1.6], column_sparsity=[0, 42.8, 9.8], speedup=[1.25, 2.01, 1.18]),
]
# Figure 6, ResNet-20 with depth-wise SSL: the SSL-ResNet-# errors (%) the text states. The
# baselines (ResNet-20 8.82%, ResNet-32 7.51%) are in the networks' records.
FIGURE6_POINTS = {18: 7.40}
FIGURE6_SHALLOW = 14          # "SSL learns a ResNet with 14 layers (SSL-ResNet-14) that reaching a lower error than" ResNet-20
RESNET20_ABSTRACT_ACCURACY = 91.25   # the abstract's "from 91.25% to 92.60%": 8.75% error, vs 8.82% in the text
SSL_RESNET18_ABSTRACT_ACCURACY = 92.60
# Table 3's text: "SSL can reduce the size of weight matrix in ConvNet 2 by 50%, 70.7% and 36.1%"
TABLE3_SHRINK = {"ConvNet 2": [50.0, 70.7, 36.1]}
# Table 4, AlexNet (CaffeNet) on ILSVRC 2012: per conv1..conv5. Sparsities in %.
TABLE4 = [
    dict(row=1, method="l1", error=44.67, sparsity=[67.6, 92.4, 97.2, 96.6, 94.3],
         cpu_speedup=[0.80, 2.91, 4.84, 3.83, 2.76], gpu_speedup=[0.25, 0.52, 1.38, 1.04, 1.36]),
    dict(row=2, method="ssl", error=44.66, column_sparsity=[0.0, 63.2, 76.9, 84.7, 80.7],
         row_sparsity=[9.4, 12.9, 40.6, 46.9, 0.0],
         cpu_speedup=[1.05, 3.37, 6.27, 9.73, 4.93], gpu_speedup=[1.00, 2.37, 4.94, 4.03, 3.05]),
    dict(row=3, method="pruning", error=42.80, sparsity=[16.0, 62.0, 65.0, 63.0, 63.0]),
    dict(row=4, method="l1", error=42.51, sparsity=[14.7, 76.2, 85.3, 81.5, 76.3],
         cpu_speedup=[0.34, 0.99, 1.30, 1.10, 0.93], gpu_speedup=[0.08, 0.17, 0.42, 0.30, 0.32]),
    dict(row=5, method="ssl", error=42.53, column_sparsity=[0.0, 20.9, 39.7, 39.7, 24.6],  # no row sparsity given
         cpu_speedup=[1.00, 1.27, 1.64, 1.68, 1.32], gpu_speedup=[1.00, 1.25, 1.63, 1.72, 1.36]),
]
TABLE4_NETWORK = "caffenet"
# Figure 7(a), AlexNet with 2-D-filter-wise SSL (the text): 30-40% of the 2-D convolutions' FLOP
# saved with no accuracy loss, or the error 1% lower, 41.69% (the baseline's is in the caffenet record).
FIGURE7A = dict(flop_saved_no_loss=(30.0, 40.0), best_error=41.69)
# The text beside Figure 7(a): "AlexNet 5 achieves on average 1.4x layer-wise speedup on both CPU and GPU
# without accuracy loss"; "the top-1 error can also be reduced down to 41.83% if the parameters are retained".
ALEXNET5_SPEEDUP = 1.4
ALEXNET5_RETAINED_ERROR = 41.83
# Table 4's text: "after l1-norm regularization, the DNN is also fine-tuned ... so that 1.39% accuracy is
# recovered for the AlexNet 1"; "SSL achieves on average 5.1x and 3.1x ... l1-norm ... only 3.0x and 0.9x".
ALEXNET1_RECOVERED = 1.39
TABLE4_MEANS = {"ssl": {"cpu": 5.1, "gpu": 3.1}, "l1": {"cpu": 3.0, "gpu": 0.9}}
# Figure 7(c)'s text: "SSL can achieve on average 3x speedup on GPU"; "SSL can always achieve averagely 2x
# speedup compared to non-structured sparsity", "the benefit grows as the processors become weaker".
FIGURE7C = dict(ssl_gpu=3.0, ssl_over_l1=2.0)
# Figure 1's text: "the achieved speedups are either very limited or negative even the actual sparsity is
# high, say, >95%" (CSR on three GPUs; the figure's speedup axis ends at 1.5).
FIGURE1 = dict(sparsity=95.0, speedup_axis=1.5)
# Mao et al. 2017, abstract: "coarse-grained sparsity saves about 2x the memory references".
MAO_MEMORY_SAVING = 2.0
TABLE4_DEVICES = {"cpu": "Intel Xeon E5-2630, 1 thread (MKL)", "gpu": "GeForce GTX TITAN Black (cuBLAS/cuSPARSE)"}


def table4_row(row: int) -> dict:
    """Table 4's row ``row`` (1-5)."""
    for r in TABLE4:
        if r["row"] == row:
            return r
    raise ValueError(f"Table 4 has rows 1-5, got {row!r}")


def dashed(values, fmt: str = "{:g}", dash: str = "–") -> str:
    """Per-layer values the paper's way: ``[5, 19]`` -> ``"5–19"``."""
    return dash.join(fmt.format(v) for v in values)


def _neurons(report: pd.DataFrame) -> list[int]:
    """Neurons left per layer of a fully connected network: the first layer's inputs, then
    each layer's outputs."""
    return [int(report["channels left"].iloc[0])] + [int(v) for v in report["filters left"]]


def _dead_inputs(report: pd.DataFrame) -> float:
    """% of the first layer's inputs (an MLP's pixels) with no connection left."""
    first = report.iloc[0]
    return 100 * (1 - first["channels left"] / first["channels"])


@dataclass(frozen=True)
class Column:
    """One column of a paper table and the statistic of ours it compares with.

    Attributes:
        key: the column's key in the paper's rows (a per-layer list, or one number).
        ours: a column of the sparsity report (one value per layer), or a function of the
            report returning a list (or one number).
        fmt: how our values are written; ``paper_fmt``: the paper's.
        layers: ``conv`` (the report's conv layers) or ``all``.
    """

    key: str
    ours: str | Callable[[pd.DataFrame], object]
    fmt: str
    paper_fmt: str = "{:g}"
    layers: str = "conv"


@dataclass(frozen=True)
class PaperTable:
    """A paper table: the network it is about, its rows (the first is the baseline), the
    columns that compare with ours, and the registered figures (:mod:`sslkit.results.figures`) that
    go with it."""

    name: str
    network: str
    rows: list[dict]
    columns: tuple[Column, ...]
    figures: tuple[str, ...] = ()


_FLOP = Column("flop", "FLOP %", "{:.3g}%", "{:g}%")
_SPEEDUP = Column("speedup", "speedup (1 thread)", "{:.2f}", "{:.2f}")
TABLES = {t.name: t for t in (
    PaperTable("table1", "lenet", TABLE1, (Column("filters", "filters left", "{:d}", "{:d}"),
                                           Column("channels", "channels left", "{:d}", "{:d}"), _FLOP, _SPEEDUP),
               figures=("figure3_conv1_filters",)),
    PaperTable("table2", "lenet", TABLE2, (Column("filter_size", "filter size left", "{:g}"),
                                           Column("channels", "channels left", "{:d}", "{:d}"), _FLOP, _SPEEDUP),
               figures=("figure3_conv1_filters",)),
    PaperTable("mlp", "mlp", MLP_TABLE, (Column("neurons", _neurons, "{:d}", "{:d}", layers="all"),
                                         Column("flop", "FLOP %", "{:.4g}%", "{:g}%", layers="all"),
                                         Column("dead_pixels", _dead_inputs, "{:.2f}%", "{:.2f}%", layers="all")),
               figures=("figure4b_input_pixels",)),
    PaperTable("table3", "convnet", TABLE3, (Column("row_sparsity", "row sparsity %", "{:.1f}%", "{:g}%"),
                                             Column("column_sparsity", "column sparsity %", "{:.1f}%", "{:g}%"),
                                             _SPEEDUP),
               figures=("figure5_conv1_filters",)),
)}


def table(name: str) -> PaperTable:
    """The paper table ``name``; a ``ValueError`` naming the known ones otherwise."""
    if name not in TABLES:
        raise ValueError(f"no paper table {name!r}; there are {sorted(TABLES)}")
    return TABLES[name]
