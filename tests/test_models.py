"""The five networks against the published architectures: parameter counts and each layer's
lowered GEMM shape (groups, filters per group, C/g*k*k, output positions)."""
import pytest

from sslkit import models
from sslkit.sparsity import lowering


def resnet_params(n: int) -> int:
    """ResNet for CIFAR (3 stages of n blocks, 16/32/64 channels, 1x1 conv + BN shortcuts)."""
    conv = lambda cin, cout, k: cin * cout * k * k  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    total = conv(3, 16, 3) + bn(16)
    cin = 16
    for w in (16, 32, 64):
        for j in range(n):
            c = cin if j == 0 else w
            total += conv(c, w, 3) + conv(w, w, 3) + 2 * bn(w)
            if c != w:
                total += conv(c, w, 1) + bn(w)
        cin = w
    return total + 64 * 10 + 10


PARAMS = {
    "lenet": 431_080,        # 520 + 25,050 + 400,500 + 5,010
    "mlp": 545_810,          # 392,500 + 150,300 + 3,010
    "convnet": 89_578,       # 2,432 + 25,632 + 51,264 + 10,250
    "resnet20": resnet_params(3),   # 272,474 (published: 0.27M)
    "resnet32": resnet_params(5),   # 466,906 (published: 0.46M)
    "caffenet": 60_965_224,  # bvlc_reference_caffenet
}

GEMM = {  # layer: (groups, rows per group, C/g*M*K, output positions)
    "lenet": {"conv1": (1, 20, 25, 576), "conv2": (1, 50, 500, 64), "fc1": (1, 500, 800, 1), "fc2": (1, 10, 500, 1)},
    "convnet": {"conv1": (1, 32, 75, 1024), "conv2": (1, 32, 800, 256), "conv3": (1, 64, 800, 64),
                "fc": (1, 10, 1024, 1)},
    "caffenet": {"conv1": (1, 96, 363, 3025), "conv2": (2, 128, 1200, 729), "conv3": (1, 384, 2304, 169),
                 "conv4": (2, 192, 1728, 169), "conv5": (2, 128, 1728, 169), "fc6": (1, 4096, 9216, 1)},
    "resnet20": {"conv1": (1, 16, 27, 1024), "stage1.0.conv1": (1, 16, 144, 1024),
                 "stage2.0.conv1": (1, 32, 144, 256), "stage2.0.conv2": (1, 32, 288, 256),
                 "stage2.0.shortcut.0": (1, 32, 16, 256), "stage3.2.conv2": (1, 64, 576, 64)},
    "mlp": {"fc1": (1, 500, 784, 1), "fc2": (1, 300, 500, 1), "fc3": (1, 10, 300, 1)},
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_count(name):
    net = models.build(name)
    assert sum(p.numel() for p in net.parameters()) == PARAMS[name]


@pytest.mark.parametrize("name", sorted(GEMM))
def test_lowered_gemm_shapes(name):
    net = models.build(name)
    shapes = {layer.name: (layer.groups, layer.rows, layer.cols, layer.positions) for layer in lowering.trace(net, models.get(name).input_shape)}
    for layer, expected in GEMM[name].items():
        assert shapes[layer] == expected, layer


def test_resnet_depths():
    for name, depth in (("resnet20", 20), ("resnet32", 32)):
        net = models.build(name)
        weighted = [layer for layer in lowering.trace(net, (3, 32, 32)) if "shortcut" not in layer.name]
        assert len(weighted) == depth  # convs + fc, projection shortcuts not counted


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model"):
        models.build("vgg")
