"""LeNet as in Caffe's examples/mnist/lenet.prototxt (no ReLU after the convolutions)."""
import torch.nn as nn

from sslkit.models._init import caffe_xavier_
from sslkit.models._network import Network, Sizes
from sslkit.training.solver import Solver


class LeNet(nn.Sequential):
    """conv1 20@5x5 -> maxpool 2 -> conv2 50@5x5 -> maxpool 2 -> fc1 500 -> ReLU -> fc2 10.

    Input: (N, 1, 28, 28) pixels scaled by 1/256. 431,080 parameters.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(50 * 4 * 4, 500)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(500, num_classes)
        caffe_xavier_(self)


NETWORKS = (Network(
    name="lenet", build=LeNet, input_shape=(1, 28, 28), dataset="mnist", normalize="scale256",
    solvers={
        # examples/mnist/lenet_solver.prototxt
        "baseline": Solver(lr=0.01, policy="inv", gamma=1e-4, power=0.75, momentum=0.9, weight_decay=5e-4,
                           batch_size=64),
        # SSL: lr 0.01 with steps at 60% and 80%, weight decay off while the group Lasso acts.
        "ssl": Solver(lr=0.01, policy="multistep", gamma=0.1, steps_at=(0.6, 0.8), momentum=0.9, weight_decay=0.0,
                      batch_size=64),
        "finetune": Solver(lr=1e-3, policy="inv", gamma=1e-4, power=0.75, momentum=0.9, weight_decay=5e-4,
                           batch_size=64),
    },
    sizes={
        "smoke": Sizes(baseline=40, ssl=40, finetune=20, train=2048, test=1000, evals=2),
        # Caffe's lenet_solver (10k iterations, batch 64); SSL 10k; fine-tune 5k (paper: 10k).
        "quick": Sizes(baseline=10_000, ssl=10_000, finetune=5_000),
        # The authors' full schedules, in bf16 where the CPU has it (fp32 vs bf16: README).
        "converged": Sizes(baseline=10_000, ssl=10_000, finetune=10_000, precision="bf16"),
        "paper": Sizes(baseline=10_000, ssl=10_000, finetune=10_000),
    },
    paper_error=0.9,  # Table 1 / Table 2, LeNet 1
),)
