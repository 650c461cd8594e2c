"""The papers' numbers, with their own row labels (from ../shared/paper/TARGETS.md), so every
notebook can put them beside its own results. Errors are in percent."""
from __future__ import annotations

import pandas as pd

# Baseline top-1 test errors (%).
BASELINE_ERROR = {
    "lenet": 0.9,       # Table 1 / Table 2, LeNet 1
    "mlp": 1.43,        # MLP table, MLP 1
    "convnet": 17.9,    # Table 3, ConvNet 1
    "resnet20": 8.82,   # Figure 6
    "resnet32": 7.51,   # Figure 6
    "caffenet": 42.63,  # Table 4
}


def baseline_error(model: str) -> float:
    """The paper's baseline error (%) of ``model``."""
    return BASELINE_ERROR[model]


def table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)
