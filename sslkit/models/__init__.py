"""The paper's five networks. ``build(name)`` makes one by name."""
import torch.nn as nn

from .caffenet import CaffeNet
from .convnet import ConvNet
from .lenet import LeNet
from .mlp import MLP
from .resnet import CifarResNet, resnet20, resnet32

MODELS = {
    "lenet": LeNet,
    "mlp": MLP,
    "convnet": ConvNet,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "caffenet": CaffeNet,
}

# Input shape (C, H, W) each network expects.
INPUT_SHAPES = {
    "lenet": (1, 28, 28), "mlp": (1, 28, 28), "convnet": (3, 32, 32),
    "resnet20": (3, 32, 32), "resnet32": (3, 32, 32), "caffenet": (3, 227, 227),
}


def build(name: str, **kwargs) -> nn.Module:
    """A fresh network by name (``lenet``, ``mlp``, ``convnet``, ``resnet20``, ``resnet32``,
    ``caffenet``), initialised as the authors' Caffe models were."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)


__all__ = ["build", "MODELS", "INPUT_SHAPES", "LeNet", "MLP", "ConvNet", "CifarResNet",
           "resnet20", "resnet32", "CaffeNet"]
