"""Compaction: for every structure, on the paper's networks and on torchvision CNNs, the
compacted model computes what the masked model computes, with the parameter and FLOP counts
the sparsity report predicted. FLOP accounting agrees with torch.utils.flop_counter."""
import os
import warnings

import pytest
import torch
import torch.nn as nn
import torchvision
from helpers import expand, num_weights, total_flops
from torch.utils.flop_counter import FlopCounterMode

from sslkit import models
from sslkit.compaction.compact import (GroupedConv, LoweredConv, LoweredLinear, ShortcutBlock, compact, kept_constants,
                                      propagate_zeros)
from sslkit.sparsity import groups as G
from sslkit.sparsity import lowering
from sslkit.sparsity.stats import sparsity_report

NETS = {  # name: (constructor, input shape)
    "lenet": (lambda: models.build("lenet"), (1, 28, 28)),
    "mlp": (lambda: models.build("mlp"), (1, 28, 28)),
    "convnet": (lambda: models.build("convnet"), (3, 32, 32)),
    "resnet20": (lambda: models.build("resnet20"), (3, 32, 32)),
    "caffenet": (lambda: models.build("caffenet", num_classes=10), (3, 227, 227)),
    "tv_resnet18": (lambda: torchvision.models.resnet18(num_classes=10), (3, 64, 64)),
    "tv_vgg11": (lambda: _narrow_classifier(torchvision.models.vgg11(num_classes=10)), (3, 32, 32)),
}


def _narrow_classifier(vgg):
    """torchvision's VGG with its classifier 128 wide instead of 4,096 (same layers: flatten of
    the 7x7 pooled map, then linear-ReLU-dropout twice), so the tests take seconds."""
    vgg.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 128), nn.ReLU(True), nn.Dropout(),
                                   nn.Linear(128, 128), nn.ReLU(True), nn.Dropout(), nn.Linear(128, 10))
    return vgg
LAYER = (nn.Conv2d, nn.Linear)


def _prepare(name, seed=0):
    torch.manual_seed(seed)
    make, shape = NETS[name]
    return _prepare_bn(make().eval()), shape


def _prepare_bn(net):
    """Non-trivial BN statistics and biases (in place)."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
        elif isinstance(m, LAYER) and m.bias is not None:
            nn.init.uniform_(m.bias, -0.1, 0.1)
    return net


@torch.no_grad()
def _mask(net, structure, frac=0.4, seed=1):
    """Zero a random ``frac`` of the groups of ``structure`` in every conv/linear layer except
    the classifier's rows. A zeroed filter takes its bias and its BN's affine parameters along
    (its channel then outputs exactly zero)."""
    g = torch.Generator().manual_seed(seed)
    layers = [m for m in net.modules() if isinstance(m, LAYER)]
    last = layers[-1]
    bn_after = {}
    prev = None
    for m in net.modules():  # conv immediately followed by a BN (in registration order)
        if isinstance(m, nn.BatchNorm2d) and isinstance(prev, nn.Conv2d):
            bn_after[prev] = m
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
            prev = m
    for m in layers:
        if structure in ("filter",) and m is last:
            continue
        gr = G.module_groups(m)
        norms = G.group_norms(m.weight, structure, gr)
        kill = torch.rand(norms.shape, generator=g) < frac
        m.weight.mul_(expand((~kill).float(), m.weight, structure, gr))
        if structure == "filter":
            if m.bias is not None:
                m.bias[kill] = 0
            if m in bn_after:
                bn_after[m].weight[kill] = 0
                bn_after[m].bias[kill] = 0
    return net


def _weights(model):
    return sum(num_weights(m) if isinstance(m, LoweredConv) else m.weight.numel()
               for m in model.modules() if isinstance(m, (*LAYER, LoweredConv, LoweredLinear)))


def _propagate_and_compact(net, shape):
    """The masked ``net``'s outputs on fixed inputs, then ``propagate_zeros`` (in place), its
    report and ``compact``: returns (inputs, expected outputs, report, compacted network)."""
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = net(x)
    propagate_zeros(net, shape)
    return x, expected, sparsity_report(net, shape), compact(net, shape)


def _check(name, structure):
    net, shape = _prepare(name)
    _mask(net, structure)
    x, expected, report, small = _propagate_and_compact(net, shape)
    with torch.no_grad():
        got = small(x)
        assert torch.allclose(net(x), expected, atol=1e-5)  # propagation changes nothing
    assert (got - expected).abs().max().item() <= 1e-5
    return net, small, report


@pytest.mark.parametrize("name", ["lenet", "mlp", "convnet", "tv_vgg11"])
@pytest.mark.parametrize("structure", ["filter", "channel", "shape", "kernel2d"])
def test_compaction_chains(name, structure):
    _, small, report = _check(name, structure)
    assert _weights(small) == report["weights left"].sum()
    if name != "mlp" or structure != "shape":
        assert total_flops(small, NETS[name][1]) <= report["FLOP"].sum()
    if name != "mlp" and structure != "kernel2d":  # the compact network's FLOPs as predicted
        assert _lowered_flops(small, NETS[name][1]) == report["FLOP left"].sum()


def _lowered_flops(model, shape):
    """FLOPs of a compacted model, LoweredConv included (2 * weights * positions)."""
    found = []

    def hook(mod, _i, o):
        if isinstance(mod, LoweredLinear):
            found.append(2 * mod.weight.numel() * (o.numel() // mod.out_features))
        else:
            found.append(2 * num_weights(mod) * o.shape[-2] * o.shape[-1])
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (LoweredConv, LoweredLinear))]
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for h in hs:
        h.remove()
    return total_flops(model, shape) + sum(found)


@pytest.mark.parametrize("name", ["resnet20", "tv_resnet18"])
@pytest.mark.parametrize("structure", ["filter", "channel", "shape"])
def test_compaction_residual_networks(name, structure):
    _, small, report = _check(name, structure)
    assert _weights(small) == report["weights left"].sum()
    shape = NETS[name][1]
    assert _lowered_flops(small, shape) == report["FLOP left"].sum()


@pytest.mark.parametrize("structure", ["shape", "filter"])
def test_compaction_caffenet(structure):
    """CaffeNet's grouped conv2/4/5 compact group by group, to exactly the report's counts; the
    channels behind the cross-channel LRNs (conv1, conv2) are kept, those of conv3 and conv4
    (grouped consumers) are removed where dead."""
    net, small, report = _check("caffenet", structure)
    shape = NETS["caffenet"][1]
    assert _weights(small) == report["weights left"].sum()
    assert _lowered_flops(small, shape) == report["FLOP left"].sum()
    if structure == "filter":
        thin = compact(net, shape, columns=False)
        convs = [m for m in thin.modules() if isinstance(m, (nn.Conv2d, GroupedConv)) and not _in_grouped(thin, m)]
        assert [c.out_channels for c in convs[:2]] == [96, 256]                   # LRN after them: kept
        assert convs[2].out_channels < 384 and convs[3].out_channels < 384       # conv3, grouped conv4
        assert convs[3].in_channels == convs[2].out_channels


def _in_grouped(model, m):
    return any(m is c for g in model.modules() if isinstance(g, GroupedConv) for c in g.convs.modules())


def _grouped_net(groups):
    """Stem, two inverted-residual-style blocks (1x1 expand, grouped 3x3 or depthwise, 1x1
    project, residual add) and a classifier: small enough for seconds, every kind of coupling."""
    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            g = 2 * c if groups == "depthwise" else groups
            self.body = nn.Sequential(nn.Conv2d(c, 2 * c, 1), nn.BatchNorm2d(2 * c), nn.ReLU(),
                                      nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=g), nn.BatchNorm2d(2 * c),
                                      nn.ReLU6(), nn.Conv2d(2 * c, c, 1), nn.BatchNorm2d(c))

        def forward(self, x):
            return torch.relu(x + self.body(x))
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), Block(16), Block(16),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


GROUPED = {"grouped4": (lambda: _grouped_net(4), (3, 16, 16)),
           "depthwise": (lambda: _grouped_net("depthwise"), (3, 16, 16)),
           "tv_mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(width_mult=0.5, num_classes=10), (3, 64, 64)),
           "tv_mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(num_classes=10), (3, 64, 64))}


@pytest.mark.parametrize("name", list(GROUPED))
@pytest.mark.parametrize("structure", ["filter", "channel", "shape"])
def test_grouped_and_depthwise_compact_to_the_prediction(name, structure):
    """Grouped and depthwise convs: the compacted network computes the same and holds exactly
    the weights and FLOPs the sparsity report predicts (no group padded to the largest)."""
    torch.manual_seed(0)
    make, shape = GROUPED[name]
    net = _mask(_prepare_bn(make().eval()), structure)
    x, expected, report, small = _propagate_and_compact(net, shape)
    with torch.no_grad():
        assert (net(x) - expected).abs().max().item() <= 1e-5
        assert (small(x) - expected).abs().max().item() <= 1e-5 * max(1.0, expected.abs().max().item())
    assert _weights(small) == report["weights left"].sum() < report["weights"].sum()
    assert _lowered_flops(small, shape) == report["FLOP left"].sum()
    if structure == "filter" and name in ("grouped4", "depthwise"):   # channels really went
        assert sum(m.out_channels for m in small.modules() if isinstance(m, (nn.Conv2d, GroupedConv))
                   and not _in_grouped(small, m)) < sum(m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d))


def test_grouped_conv_with_emptied_groups():
    """A GroupedConv whose groups hold different channel counts, one group with no output and
    one with no input left, computes what the grouped conv computed on the kept channels."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, 3, padding=1, groups=4)
    with torch.no_grad():
        conv.weight[3:6] = 0                # group 1 computes only its bias ...
        conv.bias[3:6] = torch.tensor([0.5, -1.0, 2.0])
        conv.weight[6:9] = 0                # ... group 2 outputs zeros
        conv.bias[6:9] = 0
    x = torch.randn(2, 8, 7, 7)
    x[:, 2:4] = 0                           # group 1's inputs: removable
    expected = conv(x)
    grouped = GroupedConv.split(conv)
    g1, g2 = grouped.convs[1], grouped.convs[2]
    g1.weight, g1.in_channels = nn.Parameter(g1.weight[:, :0]), 0
    g2.weight, g2.out_channels, g2.bias = nn.Parameter(g2.weight[:0]), 0, nn.Parameter(g2.bias[:0])
    keep_in = [0, 1, 4, 5, 6, 7]
    keep_out = [i for i in range(12) if i not in (6, 7, 8)]
    with torch.no_grad():
        assert torch.allclose(grouped(x[:, keep_in]), expected[:, keep_out], atol=1e-6)
    assert grouped.merged() is grouped      # unequal groups stay a GroupedConv
    assert isinstance(GroupedConv.split(conv).merged(), nn.Conv2d)


@pytest.mark.parametrize("name", ["resnet20", "tv_resnet18"])
def test_depth_removal(name):
    net, shape = _prepare(name)
    blocks = [m for m in net.modules() if hasattr(m, "conv2") and hasattr(m, "bn2")]
    with torch.no_grad():
        for b in blocks[1::2]:           # depth-wise SSL zeroes both convs of a block
            b.conv1.weight.zero_()
            b.conv2.weight.zero_()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        expected = net(x)
        small = compact(net, shape)
        got = small(x)
    assert sum(isinstance(m, ShortcutBlock) for m in small.modules()) == len(blocks[1::2])
    assert (got - expected).abs().max().item() <= 1e-5
    convs = lambda m: sum(1 for c in m.modules() if isinstance(c, nn.Conv2d))  # noqa: E731
    assert convs(small) == convs(net) - 2 * len(blocks[1::2])


def test_mlp_dead_pixels_are_removed():
    net, shape = _prepare("mlp")
    with torch.no_grad():
        img = net.fc1.weight.view(500, 28, 28)
        img[:, :3, :] = 0   # border pixels lose every connection
        img[:, :, :3] = 0
        net.fc2.weight[:, ::3] = 0  # hidden neurons with no outputs
    propagate_zeros(net, shape)
    small = compact(net, shape)
    first = [m for m in small.modules() if isinstance(m, nn.Linear)][0]
    assert first.in_features == 784 - (3 * 28 + 3 * 25)
    assert first.out_features == 500 - len(range(0, 500, 3))
    x = torch.rand(3, *shape)
    with torch.no_grad():
        assert (small(x) - net(x)).abs().max() <= 1e-5


@pytest.mark.parametrize("name", ["lenet", "mlp", "convnet", "resnet20", "caffenet", "tv_resnet18"])
def test_dense_flops_agree_with_torch_flop_counter(name):
    net, shape = _prepare(name)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(1, *shape))
    assert total_flops(net, shape) == counter.get_total_flops()


def test_lowered_conv_matches_conv():
    torch.manual_seed(0)
    for groups in (1, 2):
        conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=groups)
        with torch.no_grad():
            conv.weight[:, 1, 0, :] = 0
            conv.weight[:, 0, 2, 2] = 0
            conv.weight[3] = 0              # a zero filter: computed as zero (plus bias)
        x = torch.randn(2, 4, 9, 9)
        low = LoweredConv(conv)
        assert torch.allclose(low(x), conv(x), atol=1e-5)
        rows, cols = lowering.live(conv.weight, groups)
        assert num_weights(low) == int((rows.sum(1) * cols.sum(1)).sum()) < conv.weight.numel()


def test_depth_groups_are_the_in_block_convs():
    from sslkit.compaction.compact import branch_convs

    names = branch_convs(models.build("resnet20"))
    assert len(names) == 18 and len(set(names)) == 18
    assert all(n.endswith((".conv1", ".conv2")) and n.startswith("stage") for n in names)  # not the first conv
    assert not any("shortcut" in n for n in names)


@pytest.mark.parametrize("name,blocks", [("resnet20", [1, 4, 8]), ("resnet32", [0, 2, 6, 7, 13])])
def test_zeroed_blocks_compact_to_a_shallower_network(name, blocks):
    """Depth-wise SSL zeroes whole layers: a block whose conv2 is zero (conv1 then feeds nothing
    and is zeroed by propagation) becomes its shortcut plus a constant; the network is
    shallower by two layers per block, computes the same, and has the depth the report predicts."""
    from sslkit.compaction.compact import depth, shortcut_layers
    from sslkit.experiments.depth import predicted_depth

    torch.manual_seed(0)
    net = models.build(name).eval()
    _prepare_bn(net)
    all_blocks = [m for m in net.modules() if hasattr(m, "conv2") and hasattr(m, "bn2")]
    with torch.no_grad():
        for i in blocks:
            all_blocks[i].conv2.weight.zero_()
            if i % 2:                               # both convs zero in some, only conv2 in others
                all_blocks[i].conv1.weight.zero_()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = net(x)
    propagate_zeros(net, (3, 32, 32))
    report = sparsity_report(net, (3, 32, 32))
    small = compact(net, (3, 32, 32))
    with torch.no_grad():
        assert (small(x) - expected).abs().max().item() <= 1e-5
    assert sum(isinstance(m, ShortcutBlock) for m in small.modules()) == len(blocks)
    assert depth(small) == depth(net) - 2 * len(blocks) == predicted_depth(report, set(shortcut_layers(net)))


@pytest.mark.parametrize("name", ["resnet20", "tv_resnet18", "tv_vgg11"])
def test_zeroed_filter_whose_bn_still_adds_a_constant(name):
    """A zero filter followed by a BN with a non-zero shift outputs a constant channel, not a
    zero one: compaction must keep that channel or fold its constant, never drop it."""
    net, shape = _prepare(name)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for conv in convs[:-1]:
            conv.weight[: conv.out_channels // 3] = 0       # BN after it keeps its weight and bias
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = net(x)
    propagate_zeros(net, shape)
    small = compact(net, shape)
    with torch.no_grad():
        assert torch.allclose(net(x), expected, atol=1e-5)
        assert (small(x) - expected).abs().max().item() <= 1e-5 * max(1.0, expected.abs().max().item())


ZERO_AT_ZERO = [nn.ReLU(), nn.Tanh(), nn.SiLU(), nn.GELU(), nn.ELU(), nn.LeakyReLU(0.1), nn.Hardswish(), nn.Mish(),
                nn.Softsign(), nn.CELU(), nn.SELU(), nn.ReLU6(), nn.Tanhshrink(), nn.Hardtanh()]
NONZERO_AT_ZERO = [nn.Sigmoid(), nn.Softplus(), nn.Hardsigmoid(), nn.LogSigmoid()]
MIXING = [nn.Softmax(dim=1), nn.LogSoftmax(dim=1), nn.GroupNorm(2, 8), nn.LocalResponseNorm(3),
          nn.ChannelShuffle(2), nn.InstanceNorm2d(8, affine=True),
          nn.PReLU(8)]  # channel-wise, but a layer with parameters sslkit does not prune: left alone


@pytest.mark.parametrize("act", ZERO_AT_ZERO + NONZERO_AT_ZERO + MIXING, ids=lambda a: type(a).__name__)
def test_zero_filter_before_any_activation_or_norm(act):
    """conv1 -> act -> conv2: filter 0 of conv1 is zero (weight and bias) and no weight of
    conv2 reads channel 1. Compaction keeps the function exactly; it removes channel 0 only
    where act maps a zero channel to zero without mixing channels, channel 1 only where act
    mixes nothing, and keeps both otherwise."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), act, nn.Conv2d(8, 6, 3, padding=1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(6 * 8 * 8, 5)).eval()
    with torch.no_grad():
        for p in act.parameters():
            p.uniform_(0.5, 1.5)
        net[0].weight[0] = 0
        net[0].bias[0] = 0
        net[2].weight[:, 1] = 0
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = net(x)
    propagate_zeros(net, (3, 8, 8))
    small = compact(net, (3, 8, 8))
    with torch.no_grad():
        scale = expected.abs().max().item()
        assert (net(x) - expected).abs().max().item() <= 1e-5 * scale        # propagation exact
        assert (small(x) - expected).abs().max().item() <= 1e-5 * scale      # compaction exact
    first = next(m for m in small.modules() if isinstance(m, (nn.Conv2d, LoweredConv)))
    kept = first.out_channels
    if any(act is a for a in ZERO_AT_ZERO):
        assert kept == 6
    elif any(act is a for a in NONZERO_AT_ZERO):
        assert kept == 7                        # channel 0 reaches conv2 as a constant: kept
    else:
        assert kept == 8                        # mixing (or PReLU): nothing removed


def _resnext_narrow():
    from torchvision.models import resnet
    return resnet.ResNet(resnet.Bottleneck, [1, 1, 1, 1], groups=4, width_per_group=8, num_classes=10)


def _convnext_narrow():
    """torchvision's ConvNeXt with its blocks (depthwise conv, LayerNorm, two linear layers on
    (N, H, W, C) maps, layer scale) at 16-64 channels."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    return ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1), CNBlockConfig(64, None, 1)], num_classes=10)


M = torchvision.models
ZOO = {  # torchvision's CNN families at 64x64 (narrow where the builder allows), with the structure zeroed
    "resnext_narrow": (_resnext_narrow, "channel"),                       # grouped convs: needs the fixpoint
    "shufflenet_v2_x0_5": (lambda: M.shufflenet_v2_x0_5(num_classes=10), "filter"),   # channel shuffle
    "convnext rows": (lambda: _convnext_narrow(), "filter"),              # linear layers on (N, H, W, C)
    "convnext columns": (lambda: _convnext_narrow(), "channel"),
    "squeezenet1_1": (lambda: M.squeezenet1_1(num_classes=10), "filter"),            # concatenations
    "mnasnet0_5": (lambda: M.mnasnet0_5(num_classes=10), "channel"),
}
ZOO_ALL = {  # the rest of the families: minutes on 2 cores, run with SSLKIT_TEST_ZOO=all
    "googlenet": (lambda: M.googlenet(num_classes=10, aux_logits=False, init_weights=True), "shape"),
    "regnet_x_400mf": (lambda: M.regnet_x_400mf(num_classes=10), "channel"),
    "efficientnet_b0": (lambda: M.efficientnet_b0(num_classes=10), "filter"),        # squeeze-and-excitation
    "efficientnet_v2_s": (lambda: M.efficientnet_v2_s(num_classes=10), "channel"),
    "densenet121": (lambda: M.densenet121(num_classes=10), "channel"),
    "resnext50_32x4d": (lambda: M.resnext50_32x4d(num_classes=10), "channel"),
    "alexnet": (lambda: M.alexnet(num_classes=10), "filter"),
    "convnext_tiny": (lambda: M.convnext_tiny(num_classes=10), "filter"),
}
if os.environ.get("SSLKIT_TEST_ZOO") == "all":
    ZOO |= ZOO_ALL


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ZOO))
def test_torchvision_cnns_compact_exactly_to_the_prediction(name):
    """Random zero filters, channels or shape columns in every layer of torchvision's CNNs: the
    compacted network computes the same (relative 1e-5) and holds exactly the weights and FLOPs
    the report predicts after propagate_zeros. Where torch-pruning cannot trace the graph
    (ShuffleNet's channel shuffle), every channel is kept with one warning naming the network."""
    make, structure = ZOO[name]
    torch.manual_seed(0)
    net = _mask(_prepare_bn(make().eval()), structure)
    shape = (3, 64, 64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, expected, report, small = _propagate_and_compact(net, shape)
    said = [str(w.message) for w in caught if "compaction keeps" in str(w.message)]
    assert said == (["compaction keeps every channel of ShuffleNetV2: " + said[0].split(": ", 1)[1]] * len(said)
                    if name.startswith("shufflenet") else [])
    assert not name.startswith("shufflenet") or said
    with torch.no_grad():
        assert (small(x) - expected).abs().max().item() <= 1e-5 * max(1.0, expected.abs().max().item())
    assert _weights(small) == report["weights left"].sum() < report["weights"].sum()
    assert _lowered_flops(small, shape) == report["FLOP left"].sum()


def test_propagate_zeros_runs_to_a_fixpoint_on_grouped_convs():
    """Zeroing the columns of a grouped conv's whole group makes its producers' channels unused
    only in a second pass: one pass predicts more weights than compaction leaves."""
    shape = (3, 16, 16)

    def build():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                            nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.BatchNorm2d(8), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
        net = _prepare_bn(net.eval())
        with torch.no_grad():
            net[8].weight[:, :4] = 0            # the classifier no longer reads group 0's outputs
        return net

    predicted, x = {}, torch.randn(2, *shape)
    for passes in (1, 20):
        net = build()
        propagate_zeros(net, shape, max_passes=passes)
        predicted[passes] = sparsity_report(net, shape)["weights left"].sum()
    small = compact(build(), shape)                        # compaction too repeats to the fixpoint
    assert _weights(small) == _weights(compact(net, shape)) == predicted[20] < predicted[1]
    with torch.no_grad():
        assert torch.allclose(small(x), build()(x), atol=1e-6)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_convs_padded_otherwise_than_with_zeros_lose_their_zero_columns(mode):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1, padding_mode=mode),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()
    with torch.no_grad():
        net[2].weight[:, 1, 0, :] = 0           # shape fibers (columns) of the padded conv
        net[2].weight[:, 5] = 0
    shape = (3, 12, 12)
    x, expected, report, small = _propagate_and_compact(net, shape)
    with torch.no_grad():
        assert (small(x) - expected).abs().max().item() <= 1e-5
    assert _weights(small) == report["weights left"].sum() < report["weights"].sum()
    assert _lowered_flops(small, shape) == report["FLOP left"].sum()


@pytest.mark.parametrize("consumer, folds", [
    (dict(padding=0), True),                               # LeNet's conv2: no padding
    (dict(padding=1, padding_mode="replicate"), True),     # padding that keeps a constant map constant
    (dict(padding=1, padding_mode="circular"), True),
    (dict(padding=1), False),                              # zero padding: the border differs
    (dict(padding=0, bias=False), False),                  # no bias to fold into
], ids=["no-padding", "replicate", "circular", "zero-padding", "no-bias"])
def test_constant_channels_fold_into_the_consumers_bias_where_exact(consumer, folds):
    """A zero filter with a non-zero bias gives a constant map (through a sigmoid, a max-pool,
    a BN): it is removed and its constant added to the consumer's bias exactly where every
    output position receives the same contribution; kept otherwise. A zero filter before a
    flatten into a linear layer always folds. The report predicts the compacted size."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Sigmoid(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 6, 3, **consumer), nn.ReLU(), nn.Flatten(), nn.LazyLinear(5))
    shape = (3, 12, 12)
    net(torch.zeros(1, *shape))
    net = _prepare_bn(net.eval())
    with torch.no_grad():
        net[0].weight[[0, 3]] = 0                  # biases stay: constant channels
        net[4].weight[[1, 4]] = 0
        if net[4].bias is not None:
            net[4].bias[[1, 4]] = torch.tensor([0.5, -0.25])
    x, expected, report, small = _propagate_and_compact(net, shape)
    with torch.no_grad():
        scale = expected.abs().max().item()
        assert (net(x) - expected).abs().max().item() <= 1e-5 * scale        # folding in place is exact
        assert (small(x) - expected).abs().max().item() <= 1e-5 * scale
    convs = [m for m in small.modules() if isinstance(m, (nn.Conv2d, LoweredConv))]
    assert convs[0].out_channels == (6 if folds else 8)
    assert convs[1].out_channels == 4           # zero filters before the linear layer: folded or dead
    assert _weights(small) == report["weights left"].sum()
    assert _lowered_flops(small, shape) == report["FLOP left"].sum()
    kept = kept_constants(net, shape)           # what stays is listed, with the reason
    assert [(k["layer"], k["channel"]) for k in kept] == ([] if folds else [("0", 0), ("0", 3)])
    why = "pads with zeros" if consumer.get("bias", True) else "no bias"
    assert all(why in k["kept because"] for k in kept)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_a_constant_that_arrives_as_zero_is_removed_whatever_the_consumer(padding_mode):
    """A zero filter whose negative bias a ReLU turns into an all-zero map is removed even
    before a padded conv without a bias: there is nothing to fold. One whose constant is not
    zero stays there, and is listed as kept."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1, padding_mode=padding_mode,
                                                                 bias=False),
                        nn.ReLU(), nn.Flatten(), nn.LazyLinear(5))
    shape = (3, 10, 10)
    net(torch.zeros(1, *shape))
    net.eval()
    with torch.no_grad():
        net[0].weight[[2, 5]] = 0
        net[0].bias[[2, 5]] = torch.tensor([-0.3, 0.4])    # 2: zero after the ReLU; 5: a constant 0.4
    x, expected, report, small = _propagate_and_compact(net, shape)
    with torch.no_grad():
        assert (small(x) - expected).abs().max().item() <= 1e-5 * expected.abs().max().item()
    convs = [m for m in small.modules() if isinstance(m, (nn.Conv2d, LoweredConv))]
    assert convs[0].out_channels == 7           # channel 2 gone; 5 stays (no bias to fold 0.4 into)
    assert _weights(small) == report["weights left"].sum()
    kept = kept_constants(net, shape)
    assert [(k["layer"], k["channel"]) for k in kept] == [("0", 5)] and "no bias" in kept[0]["kept because"]
