"""Properties the paper's recipe rests on, each checked against an independent formula or the
published value rather than an example: the weighted group-Lasso penalty on grouped convs, the
proximal shrink under a multistep schedule, frozen zeros under any optimizer that already holds
momentum, the FLOPs of linear layers on (N, H, W, C) maps, and the data sets' normalisation."""
import math

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.ops.misc import Permute

from sslkit.sparsity import groups as G
from sslkit.sparsity.lowering import trace
from sslkit.sparsity.masks import ZeroFreezer
from sslkit.sparsity.regularizers import GroupLasso
from sslkit.training import data as D
from sslkit.training.data import TensorData
from sslkit.training.loop import train
from sslkit.training.solver import Schedule
from sslkit.util import settings


def _grouped_conv(groups=2, seed=0):
    torch.manual_seed(seed)
    return nn.Conv2d(6, 8, 3, groups=groups).double()     # weight (8, 3, 3, 3): 2 groups of 4 filters x 3 channels


def _by_hand(w: torch.Tensor, structure: str, groups: int) -> list[torch.Tensor]:
    """The groups of ``structure`` in a conv weight, listed by loops over the paper's indices
    (each a flat tensor), the conv groups respected: W[n,:,:,:]; W[filters of group j, c, :, :];
    W[filters of group j, c, m, k]."""
    n, c, mh, kw = w.shape
    per = n // groups
    if structure == "filter":
        return [w[i].flatten() for i in range(n)]
    if structure == "channel":
        return [w[j * per:(j + 1) * per, ci].flatten() for j in range(groups) for ci in range(c)]
    return [w[j * per:(j + 1) * per, ci, m, k].flatten()
            for j in range(groups) for ci in range(c) for m in range(mh) for k in range(kw)]


@pytest.mark.parametrize("structure", ["filter", "channel", "shape"])
@pytest.mark.parametrize("groups", [1, 2])
def test_weighted_penalty_and_its_gradient_on_grouped_convs_match_the_formula(structure, groups):
    """R = lambda * sum_g sqrt(|g|) ||w_g||, dR/dw = lambda sqrt(|g|) w / ||w_g||, with the groups
    listed by hand (a channel group of a grouped conv spans only its conv group's filters)."""
    conv, lam = _grouped_conv(groups), 0.01
    with torch.no_grad():
        conv.weight[0] = 0                                  # an all-zero filter: subgradient 0 there
    w = conv.weight.detach()
    parts = _by_hand(w, structure, groups)
    expected = lam * sum(math.sqrt(p.numel()) * float(p.norm()) for p in parts)
    reg = GroupLasso.from_spec(nn.Sequential(conv), {structure: lam}, weighted=True)
    assert float(reg.penalty().detach()) == pytest.approx(expected, rel=1e-12)
    grad = torch.zeros_like(w)
    for idx in _index_sets(w.shape, structure, groups):
        g = w[idx]
        if float(g.norm()) > 0:
            grad[idx] = lam * math.sqrt(g.numel()) * g / g.norm()
    assert torch.allclose(reg.subgradient(reg.terms[0]), grad, rtol=1e-12, atol=1e-15)


def _index_sets(shape, structure, groups):
    n, c, mh, kw = shape
    per = n // groups
    if structure == "filter":
        return [(i,) for i in range(n)]
    if structure == "channel":
        return [(slice(j * per, (j + 1) * per), ci) for j in range(groups) for ci in range(c)]
    return [(slice(j * per, (j + 1) * per), ci, m, k)
            for j in range(groups) for ci in range(c) for m in range(mh) for k in range(kw)]


class _Norms:
    """A post-step hook recording the filter norms of a layer."""

    def __init__(self, layer):
        self.layer, self.seen = layer, []

    def post_step(self, model, optimizer, it):
        self.seen.append(self.layer.weight.detach().norm(dim=1).clone())


def test_the_proximal_shrink_is_lr_times_lambda_at_every_step_of_a_multistep_schedule():
    """No data gradient (zero inputs, no bias), no weight decay: each step shrinks every filter's
    norm by exactly lr_t * lambda, lr_t the schedule's rate at that iteration (0.1, then 0.01
    from iteration 3, then 0.001 from 5)."""
    torch.manual_seed(0)
    layer = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        layer.weight.mul_(10)                               # norms well above what 8 steps remove
    model = nn.Sequential(layer)
    schedule = Schedule(iters=8, lr=0.1, policy="multistep", stepvalues=(3, 5), gamma=0.1, momentum=0.9,
                        weight_decay=0.0, batch_size=2)
    lam = 0.5
    reg = GroupLasso.from_spec(model, {"filter": lam}, mode="proximal", threshold=None)
    spy = _Norms(layer)
    start = layer.weight.detach().norm(dim=1).clone()
    train(model, TensorData(torch.zeros(4, 4), torch.zeros(4, dtype=torch.long)), schedule, hooks=[reg, spy],
          progress=False)
    before = start
    for it, after in enumerate(spy.seen):
        assert torch.allclose(before - after, torch.full_like(after, schedule.lr_at(it) * lam), atol=1e-6), it
        before = after
    assert len(spy.seen) == 8


OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
    "nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-2),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_frozen_zeros_stay_zero_with_momentum_built_before_freezing(name):
    """The optimizer has run (momentum, Adam's moments non-zero everywhere) before the zeros are
    frozen; afterwards the zeros stay exactly zero, and so does their optimizer state; a zero
    filter's bias keeps its value while the live filters' biases train."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6 * 6, 4))
    opt = OPTIMIZERS[name](model.parameters())
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 4, (16,))

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(5):
        step()
    with torch.no_grad():
        model[0].weight[1] = 0
        model[0].weight[:, 2, 0, 0] = 0
        model[3].weight[:, :50] = 0
    zeros = {m: m.weight.detach() == 0 for m in (model[0], model[3])}
    dead_bias = model[0].bias.detach()[1].item()         # filter 1 is removed: its bias stays
    freezer = ZeroFreezer(model)
    before = model[0].bias.detach()[[0, 2, 3, 4, 5]].clone()
    for it in range(5):
        step()
        freezer.post_step(model, opt, it)
        for m, z in zeros.items():
            assert (m.weight[z] == 0).all(), it
            for value in opt.state[m.weight].values():
                if torch.is_tensor(value) and value.shape == m.weight.shape:
                    assert (value[z] == 0).all(), it
        assert model[0].bias[1].item() == dead_bias, it
    assert (model[0].weight[~zeros[model[0]]] != 0).all()   # the others still train
    assert (model[0].bias[[0, 2, 3, 4, 5]] != before).all()


def test_flops_of_a_linear_layer_on_channels_last_maps_match_torch_flop_counter():
    """ConvNeXt-style: a linear layer applied to an (N, H, W, C) map costs 2 * in * out per
    position; the lowered description counts what torch.utils.flop_counter counts."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), Permute([0, 2, 3, 1]), nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8),
                          Permute([0, 3, 1, 2]))
    shape = (3, 10, 10)
    ours = sum(layer.flops for layer in trace(model, shape))
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *shape))
    assert ours == counter.get_total_flops()
    assert [layer.positions for layer in trace(model, shape)] == [64, 64, 64]


# Published per-channel statistics of the CIFAR-10 training set (pixels in [0, 1]) and Caffe's
# ILSVRC 2012 mean (ilsvrc_2012_mean.npy, BGR 104.0, 116.7, 122.7 per channel; pixels in [0, 255]).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN_RGB = (122.7, 116.7, 104.0)


def test_normalisation_constants_are_the_published_ones():
    assert D.CIFAR_MEAN == pytest.approx(CIFAR10_MEAN, abs=5e-5)
    assert D.CIFAR_STD == pytest.approx(CIFAR10_STD, abs=5e-5)
    assert D.IMAGENET_MEAN == pytest.approx(IMAGENET_MEAN_RGB, abs=0.05)


@pytest.mark.skipif(not any((settings.data_root() / f).exists() for f in D.CIFAR_FOLDERS), reason="no CIFAR-10 here")
def test_cifar10_normalised_with_the_constants_has_zero_mean_and_unit_std_per_channel():
    """On the real training images (the JPEG copy: a small shift), "std" normalisation gives each
    channel mean ~0 and std ~1; swapped or wrong constants would not."""
    split = D.load("cifar10", "std", train=5000, test=10).train
    x = split.x if isinstance(split, TensorData) else None
    if x is None:
        pytest.skip("CIFAR-10 is read from disk per batch here")
    mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(3), atol=0.03), mean
    assert torch.allclose(std, torch.ones(3), atol=0.03), std


@pytest.mark.parametrize("structure", ["filter", "channel", "shape", "kernel2d", "vector", "depth", "element"])
@pytest.mark.parametrize("shape, groups", [((12, 4, 3, 3), 1), ((12, 2, 3, 3), 2), ((6, 10), 1)])
def test_zero_groups_are_the_groups_of_norm_zero(structure, shape, groups):
    """zero_groups (a boolean reduction) marks exactly the groups whose L2 norm is zero, laid
    out as group_norms lays them out, for convs (grouped too) and linear layers; a weight too
    small for its square to be a float (1e-30) is not zero."""
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    w[torch.rand(*shape, generator=torch.Generator().manual_seed(1)) < 0.7] = 0
    w.view(-1)[:: 7] = 1e-30
    if structure != "element":
        w[: shape[0] // 3] = 0                   # some whole filters (and the groups inside them)
    expected = G.group_norms(w.double() * 1e30, structure, groups) == 0
    got = G.zero_groups(w, structure, groups)
    assert got.shape == expected.shape and torch.equal(got, expected)
    assert not bool(G.zero_groups(torch.full(shape, 1e-30), structure, groups).any())
