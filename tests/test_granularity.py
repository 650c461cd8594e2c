"""Granularity pruning (Mao et al. 2017): exact densities per layer and granularity, whole groups
kept by magnitude, and the index storage against hand counts."""
import pytest
import torch
import torch.nn as nn

from sslkit import models
from sslkit.sparsity.pruning import GRANULARITIES, grouped, magnitude_mask, prune, storage_bits


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


def _two_filters() -> torch.Tensor:
    """N=2, C=1, M=2, K=3: rows [1, 2, 0] (filter 0, m 0) and [3, 0, 0] (filter 1, m 1)."""
    w = torch.zeros(2, 1, 2, 3)
    w[0, 0, 0] = torch.tensor([1.0, 2.0, 0.0])
    w[1, 0, 1] = torch.tensor([3.0, 0.0, 0.0])
    return w


def test_memory_references_by_hand():
    from sslkit.sparsity.pruning import memory_references

    w, act = _two_filters(), torch.tensor([10.0])
    # fine: 3 weights + 3 indices; 10 activations (+ indices) read for each of 2 one-filter blocks;
    # one accumulator read + write per product (10 activations x 3 weights); 20 outputs.
    fine = memory_references(w, "fine", act, 20, block=1)
    assert fine == {"weights": 6.0, "activations": 40.0, "accumulators": 60.0, "outputs": 20.0, "total": 126.0}
    # vector: 2 rows of 3 values + 2 indices; SCNN: still one accumulator access per product...
    vector = memory_references(w, "vector", act, 20, block=1)
    assert vector == {"weights": 8.0, "activations": 40.0, "accumulators": 60.0, "outputs": 20.0, "total": 128.0}
    # ... row-wide: one wide access per non-zero row (fine keeps one per product).
    assert memory_references(w, "vector", act, 20, block=1, wide_rows=True)["accumulators"] == 40.0
    assert memory_references(w, "fine", act, 20, block=1, wide_rows=True)["accumulators"] == 60.0
    # both filters in one block: the activations are read once.
    assert memory_references(w, "vector", act, 20, block=2)["activations"] == 20.0
    # 1-bit indices: the gap of 8 (position 1 -> 9) takes 7 fillers, each a value and an index.
    assert memory_references(w, "fine", act, 20, block=1, index_bits=1)["weights"] == 20.0
    with pytest.raises(ValueError, match="one count per input channel"):
        memory_references(w, "fine", torch.ones(3), 20)


def test_nonzero_inputs_counts_each_channel():
    from sslkit.sparsity.pruning import nonzero_inputs

    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 2 * 2, 4))
    x = torch.zeros(2, 2, 4, 4)
    x[0, 0, 0, :3] = 1.0          # image 0: 3 non-zeros in channel 0; image 1: 1 in channel 0, 4 in channel 1
    x[1, 0, 2, 2] = 1.0
    x[1, 1, 1, :] = -2.0
    found = nonzero_inputs(net.train(), x)
    counts, outputs = found["0"]
    assert counts.tolist() == [2.0, 2.0] and outputs == 3 * 2 * 2
    assert found["2"][0].shape == (12,) and found["2"][1] == 4
    assert net.training                       # the mode is restored
