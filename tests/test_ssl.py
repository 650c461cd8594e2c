"""Groups, regularizers, masks: gradients against autograd, exact zeros, frozen zeros."""
import pytest
import torch
import torch.nn as nn
from helpers import expand

from sslkit import models
from sslkit.sparsity import groups as G
from sslkit.sparsity.masks import ZeroFreezer
from sslkit.sparsity.regularizers import GroupLasso
from sslkit.training.loop import train
from sslkit.training.solver import Schedule

CASES = [((8, 6, 3, 3), 1), ((8, 6, 3, 3), 2), ((10, 7), 1)]


@pytest.mark.parametrize("shape,groups", CASES)
def test_group_counts_and_layout(shape, groups):
    w = torch.randn(shape)
    n, c = shape[0], shape[1]
    mk = shape[2] * shape[3] if len(shape) == 4 else 1
    assert G.group_norms(w, "filter", groups).shape == (n,)
    assert G.group_norms(w, "channel", groups).shape == (c * groups if groups > 1 else c,)
    assert G.group_norms(w, "shape", groups).numel() == groups * c * mk
    assert G.group_norms(w, "kernel2d", groups).shape == (n, c)
    assert G.group_norms(w, "depth", groups).shape == ()
    assert torch.allclose(G.group_norms(w, "filter", groups), w.reshape(n, -1).norm(dim=1))
    assert torch.allclose(G.group_norms(w, "depth"), w.norm())
    if groups == 1:  # channel c = W[:, c]; shape fiber = a column of the lowered matrix
        assert torch.allclose(G.group_norms(w, "channel"), w.transpose(0, 1).reshape(c, -1).norm(dim=1))
        assert torch.allclose(G.group_norms(w, "shape"), w.reshape(n, -1).norm(dim=0))
    else:  # grouped: input channel 4 lives in the second group of filters (n 4..7, local channel 1)
        gc = G.group_norms(w, "channel", groups)
        assert torch.allclose(gc[c + 1], w[n // 2:, 1].norm())


def test_aliases_and_errors():
    assert G.canonical("neuron_in") == "filter" and G.canonical("column") == "shape"
    with pytest.raises(ValueError, match="unknown structure"):
        G.canonical("rows")


@pytest.mark.parametrize("structure", G.STRUCTURES)
@pytest.mark.parametrize("weighted", [False, True])
def test_subgradient_equals_autograd_on_nonzero_groups(structure, weighted):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 8, 3, groups=2)
    with torch.no_grad():
        conv.weight[1] = 0          # a zero filter
        conv.weight[:, 2] = 0       # a zero input channel
    reg = GroupLasso.from_spec(conv, {structure: 0.3}, weighted=weighted)
    w = conv.weight
    penalty = reg.penalty()
    (auto,) = torch.autograd.grad(penalty, w)
    ours = reg.subgradient(reg.terms[0])
    nonzero = expand(~G.zero_groups(w, structure, 2), w, structure, 2)
    assert torch.allclose(ours[nonzero], auto[nonzero], atol=1e-6)
    assert torch.all(ours[~nonzero] == 0)


@pytest.mark.parametrize("weighted", [False, True])
def test_penalty_and_subgradient_against_the_paper_formula(weighted):
    """R(W) = lambda * sum_g c_g ||W_g||, c_g = sqrt(|g|) when weighted (Wen et al., eq. 2 and
    the authors' CaffeNet solver), written out here from the weight tensor, not from sslkit."""
    torch.manual_seed(1)
    conv = nn.Conv2d(5, 7, 3)
    w = conv.weight.detach()
    n, c, m, k = w.shape
    lam = 0.25
    groups = {"filter": (w.reshape(n, -1), c * m * k),                       # rows of the lowered W
              "channel": (w.transpose(0, 1).reshape(c, -1), n * m * k),      # W[:, c]
              "shape": (w.reshape(n, -1).t(), n)}                            # columns of the lowered W
    for structure, (rows, size) in groups.items():
        cg = size ** 0.5 if weighted else 1.0
        reg = GroupLasso.from_spec(conv, {structure: lam}, weighted=weighted)
        assert reg.penalty().item() == pytest.approx(lam * cg * rows.norm(dim=1).sum().item(), rel=1e-5)
        expected = lam * cg * rows / rows.norm(dim=1, keepdim=True)           # d/dW_g of c_g ||W_g||
        got = reg.subgradient(reg.terms[0])
        got = {"filter": got.reshape(n, -1), "channel": got.transpose(0, 1).reshape(c, -1),
               "shape": got.reshape(n, -1).t()}[structure]
        assert torch.allclose(got, expected, atol=1e-6), structure


def test_authors_update_reaches_exact_zero_groups():
    """Subgradient steps shrink each group's norm by lr*lambda; once its weights fall below
    1e-4 the post-step zeroing makes the group exactly zero, and with no data gradient it stays
    zero (the subgradient is 0 on a zero group). Groups of larger norm survive."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    with torch.no_grad():
        conv.weight[:2] *= 1e-2          # two small filters, two large ones
    reg = GroupLasso.from_spec(conv, {"filter": 0.01})
    opt = torch.optim.SGD(conv.parameters(), lr=0.01)
    for it in range(300):
        opt.zero_grad()
        conv.weight.grad = torch.zeros_like(conv.weight)
        reg.add_subgradient()
        opt.step()
        reg.post_step(conv, opt, it)
    zero = G.zero_groups(conv.weight, "filter")
    assert zero.tolist() == [True, True, False, False]
    assert not torch.any((conv.weight.abs() > 0) & (conv.weight.abs() < 1e-4))


def test_ssl_training_on_lenet_zeroes_weights_exactly(mnist_small):
    data, _ = mnist_small
    torch.manual_seed(0)
    net = models.build("lenet")
    assert not (net.conv2.weight == 0).any()          # the initialisation has no zero
    reg = GroupLasso.from_spec(net, {"filter": 0.01, "channel": 0.01})
    train(net, data, Schedule(40, 0.01, batch_size=32), hooks=[reg], progress=False)
    for w in (net.conv1.weight, net.conv2.weight):
        assert not torch.any((w.abs() > 0) & (w.abs() < 1e-4))
    assert (net.conv2.weight == 0).sum() >= 10      # the threshold made them


def test_proximal_shrinks_groups_to_exact_zero():
    conv = nn.Conv2d(2, 4, 3)
    with torch.no_grad():
        conv.weight[0] *= 1e-3
    reg = GroupLasso.from_spec(conv, {"filter": 1.0}, mode="proximal", threshold=None)
    before = G.group_norms(conv.weight, "filter").clone()
    reg.prox(lr=before[0].item() * 1.01)
    after = G.group_norms(conv.weight, "filter")
    assert after[0] == 0 and torch.all(after[1:] > 0) and torch.all(after[1:] < before[1:])


def test_per_layer_spec_and_validation():
    net = models.build("lenet")
    reg = GroupLasso.from_spec(net, {"conv1": {"filter": 1e-3}, "fc1": {"neuron_in": 2e-3, "neuron_out": 0}})
    assert [(t.name, t.structure, t.strength) for t in reg.terms] == [("conv1", "filter", 1e-3), ("fc1", "filter", 2e-3)]
    with pytest.raises(ValueError, match="no conv/linear layer"):
        GroupLasso.from_spec(net, {"conv9": {"filter": 1e-3}})
    with pytest.raises(ValueError, match="finite number"):
        GroupLasso.from_spec(net, {"filter": -1})


def test_l1_gradient_matches_autograd():
    torch.manual_seed(0)
    net = models.build("lenet")
    reg = GroupLasso.from_spec(net, {"l1": 0.01})   # one-weight groups: sum |w|
    (auto,) = torch.autograd.grad(reg.penalty(), net.conv2.weight)
    net.conv2.weight.grad = torch.zeros_like(net.conv2.weight)
    net.conv1.weight.grad = torch.zeros_like(net.conv1.weight)
    reg.add_subgradient()
    assert torch.allclose(net.conv2.weight.grad, auto)


def test_frozen_zeros_survive_finetuning_with_weight_decay_and_momentum(mnist_small):
    data, _ = mnist_small
    torch.manual_seed(0)
    net = models.build("lenet")
    with torch.no_grad():
        net.conv2.weight[:, :5] = 0
        net.fc1.weight[::2] = 0
    freezer = ZeroFreezer(net)
    from types import SimpleNamespace as Hooks  # any object with the hook methods it needs
    captured = {}
    spy = Hooks(post_step=lambda m, opt, it: captured.update(opt=opt))
    train(net, data, Schedule(30, 0.05, weight_decay=5e-3, momentum=0.9, batch_size=32),
          hooks=[freezer, spy], progress=False)
    assert torch.all(net.conv2.weight[:, :5] == 0) and torch.all(net.fc1.weight[::2] == 0)
    buf = captured["opt"].state[net.conv2.weight]["momentum_buffer"]
    assert torch.all(buf[:, :5] == 0)
    assert net.conv2.weight[:, 5:].abs().sum() > 0
    assert "weight_mask" in dict(net.conv2.named_buffers())
