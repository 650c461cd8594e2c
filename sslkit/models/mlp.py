"""The paper's MNIST multilayer perceptron, 784-500-300-10 with ReLU."""
import torch.nn as nn

from ._init import caffe_xavier_


class MLP(nn.Sequential):
    """fc1 784->500 -> ReLU -> fc2 500->300 -> ReLU -> fc3 300->10. 545,810 parameters."""

    def __init__(self, sizes: tuple[int, ...] = (784, 500, 300, 10)):
        super().__init__()
        self.flatten = nn.Flatten()
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            self.add_module(f"fc{i}", nn.Linear(a, b))
            if i < len(sizes) - 1:
                self.add_module(f"relu{i}", nn.ReLU())
        caffe_xavier_(self)
