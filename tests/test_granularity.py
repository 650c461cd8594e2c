"""Granularity pruning (Mao et al. 2017): exact densities per layer and granularity, whole groups
kept by magnitude, and the index storage against hand counts."""
import pytest
import torch
import torch.nn as nn

from sslkit import models
from sslkit.granularity import GRANULARITIES, grouped, magnitude_mask, prune, storage_bits


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_each_layer_keeps_exactly_the_requested_density(granularity):
    torch.manual_seed(0)
    net = models.build("lenet")   # conv 20x1x5x5, conv 50x20x5x5, fc 500x800, fc 10x500
    density = 0.4                 # 0.4 * groups is a whole number for every layer and granularity
    kept = prune(net, granularity, density)
    for name, m in net.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            g = grouped(m.weight, granularity)
            alive = g.ne(0).any(1)
            assert int(alive.sum()) == round(density * g.shape[0]), name
            assert kept[name] == pytest.approx(density)
            assert bool((g[alive] != 0).all())              # a kept group keeps all its weights
            assert int((m.weight != 0).sum()) == int(alive.sum()) * g.shape[1]


def test_the_largest_groups_are_kept():
    w = torch.zeros(2, 1, 2, 3)
    w[0, 0, 0] = torch.tensor([3.0, 0.1, 0.1])   # vector norms: 3.0, 0.5, 1.0, 2.0
    w[0, 0, 1] = torch.tensor([0.3, 0.4, 0.0])
    w[1, 0, 0] = torch.tensor([1.0, 0.0, 0.0])
    w[1, 0, 1] = torch.tensor([0.0, 2.0, 0.0])
    mask = magnitude_mask(w, "vector", 0.5)
    assert grouped(mask, "vector").all(1).tolist() == [True, False, False, True]
    assert sorted(w[magnitude_mask(w, "fine", 0.25)].tolist()) == [1.0, 2.0, 3.0]   # round(0.25 * 12) = 3
    with pytest.raises(ValueError, match="unknown granularity"):
        magnitude_mask(w, "row", 0.5)


def test_index_storage_hand_counts():
    # fine: non-zeros at 0, 3, 19 of 20; 2-bit gaps (at most 3): gaps 1, 3, 16 -> 16 needs 5 fillers
    w = torch.zeros(1, 20)
    w[0, [0, 3, 19]] = 1.0
    s = storage_bits(w, "fine", weight_bits=32, index_bits=2)
    assert (s["groups kept"], s["fillers"]) == (3, 5)
    assert s["total bits"] == 8 * 32 + 8 * 2 and s["dense bits"] == 20 * 32
    # kernel: 4 kernels of 2x2, kernels 0 and 3 kept; 1-bit gaps (at most 1): gap 3 -> 2 fillers
    k = torch.zeros(2, 2, 2, 2)
    k[0, 0] = 1.0
    k[1, 1, 0, 1] = 2.0
    s = storage_bits(k, "kernel", weight_bits=8, index_bits=1)
    assert (s["groups kept"], s["fillers"]) == (2, 2)
    assert s["weight bits"] == 4 * 4 * 8 and s["index bits"] == 4
    assert s["compression"] == pytest.approx(16 * 8 / (4 * 4 * 8 + 4))
