"""Caffe's weight fillers, so training starts where the authors' solvers started."""
import math

import torch.nn as nn


def caffe_xavier_(module: nn.Module) -> nn.Module:
    """Caffe's ``xavier`` filler on every conv/linear weight (uniform, +-sqrt(3 / fan_in)),
    biases zero. Returns the module."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            bound = math.sqrt(3.0 / fan_in)
            nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
