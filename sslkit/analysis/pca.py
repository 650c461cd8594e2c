"""PCA rank analysis of conv filters (Wen et al. 2016, Figure 7(b)).

A conv layer's filters are the samples: the rows of its lowered weight matrix (N x C*M*K, one
matrix per conv group, stacked). scikit-learn's PCA finds the principal directions; keeping
the first k of them (largest eigenvalues) reconstructs the centred weight matrix with the
normalized error

    error(k) = ||Wc - Wc V_k^T V_k||_F / ||Wc||_F,   Wc = W - mean of the rows,

100% with no component kept, 0% with all of them. The paper's claim: SSL's filters need fewer
components for the same error than the baseline's (a lower-rank approximation fits better).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from sslkit.sparsity.lowering import trace


def _filters(weight: torch.Tensor) -> np.ndarray:
    """The rows of ``weight``'s lowered matrix (filters as samples), float64."""
    return weight.detach().reshape(weight.shape[0], -1).double().cpu().numpy()


def reconstruction_error(weight: torch.Tensor) -> pd.DataFrame:
    """Normalized reconstruction error of a conv weight vs the components kept (see module doc).

    Args:
        weight: a conv weight N x C/g x M x K (or a linear weight, out x in).
    Returns:
        One row per k = 0 .. min(N, C/g*M*K): ``components``, ``% components`` (of that
        maximum, the paper's "% dimensionality") and ``% error``.
    """
    from sklearn.decomposition import PCA

    w = _filters(weight)
    centred = w - w.mean(0)
    total = np.linalg.norm(centred)
    full = min(w.shape)
    rows = [{"components": 0, "% components": 0.0, "% error": 100.0 if total > 0 else 0.0}]
    if total > 0:
        basis = PCA(n_components=full, svd_solver="full").fit(w).components_      # (full, C*M*K)
        for k in range(1, full + 1):
            v = basis[:k]
            left = np.linalg.norm(centred - centred @ v.T @ v)
            rows.append({"components": k, "% components": 100.0 * k / full, "% error": 100.0 * left / total})
    else:
        rows += [{"components": k, "% components": 100.0 * k / full, "% error": 0.0} for k in range(1, full + 1)]
    return pd.DataFrame(rows)


def components_for(curve: pd.DataFrame, error: float) -> int:
    """The fewest components whose reconstruction error is at most ``error`` %."""
    return int(curve.loc[curve["% error"] <= error + 1e-9, "components"].min())


def network_curves(model: nn.Module, input_shape: tuple[int, ...]) -> pd.DataFrame:
    """:func:`reconstruction_error` of every conv layer of ``model``, with a ``layer`` column."""
    return pd.concat([reconstruction_error(layer.module.weight).assign(layer=layer.name)
                      for layer in trace(model, input_shape, kinds=nn.Conv2d)], ignore_index=True)
