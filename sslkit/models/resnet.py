"""ResNet-20/32 for CIFAR-10 (He et al. 2016, section 4.2) with 1x1 conv shortcuts where the
shape changes, BN after each conv."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from sslkit.models._network import Network, Sizes
from sslkit.training.augment import pad_crop_flip
from sslkit.training.solver import Solver


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus shortcut, then ReLU. ``conv1`` and ``conv2`` lie between the
    shortcut's endpoints: these are what depth-wise SSL may remove."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """conv 16@3x3 -> 3 stages of ``n`` blocks (16, 32, 64 channels; 32, 16, 8 maps) -> global
    average pool -> fc. Depth 6n + 2: n=3 is ResNet-20, n=5 ResNet-32."""

    def __init__(self, n: int = 3, num_classes: int = 10, widths=(16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks = [BasicBlock(cin if j == 0 else w, w, 2 if (i > 0 and j == 0) else 1) for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            cin = w
        self.stage1, self.stage2, self.stage3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet20(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(3, num_classes)


def resnet32(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(5, num_classes)


def _cifar_resnet(name: str, build, paper_error: float, quick_baseline: int) -> Network:
    """The record of a CIFAR ResNet: He et al.'s solver and augmentation. ``quick_baseline``:
    the quick profile's baseline iterations (a 2-core CPU runs ResNet-20 at about 250
    images/s, ResNet-32 at about 160)."""
    he = dict(policy="multistep", gamma=0.1, momentum=0.9, weight_decay=1e-4, batch_size=128)
    return Network(
        name=name, build=build, input_shape=(3, 32, 32), dataset="cifar10", normalize="std",
        augment=pad_crop_flip,  # He et al.: pad 4, random 32x32 crop, horizontal flip
        solvers={
            # He et al.: lr 0.1, /10 at 32k and 48k of 64k iterations, batch 128, weight decay 1e-4
            "baseline": Solver(lr=0.1, **he),
            # The authors' depth-wise SSL: from the baseline, same solver; then fine-tuning at lr 0.01.
            "ssl": Solver(lr=0.1, **he),
            "finetune": Solver(lr=0.01, **he),
        },
        sizes={
            "smoke": Sizes(baseline=3, ssl=3, finetune=2, train=384, test=128, evals=1),
            # A 2-core CPU: Figure 6 within 30 minutes (a few epochs; errors far from the paper's).
            # Strengths x50, so that 200 SSL iterations can zero whole layers.
            "quick": Sizes(baseline=quick_baseline, ssl=200, finetune=100, evals=2, strength_factor=50.0),
            # A 2-core CPU in bf16 (ResNet-20 about 730 images/s, ResNet-32 about 480): 40 epochs
            # of baseline with lr 0.1 decayed linearly to 0 (Caffe's "poly", power 1: the best of
            # the usual policies for a short budget; He et al.'s steps at 50%/75% leave a 40-epoch
            # run short of converged), 4k SSL iterations with the strengths x16 (the authors' 64k,
            # same policy, 16x shorter: the same total shrinkage), 2k of fine-tuning.
            "converged": Sizes(baseline=15_600, ssl=4_000, finetune=2_000, strength_factor=16.0, precision="bf16"),
            "paper": Sizes(baseline=64_000, ssl=64_000, finetune=96_000),
        },
        profile_solvers={"converged": {"baseline": Solver(lr=0.1, **{**he, "policy": "poly", "power": 1.0})}},
        paper_error=paper_error,  # Figure 6
    )


NETWORKS = (_cifar_resnet("resnet20", resnet20, 8.82, quick_baseline=800),
            _cifar_resnet("resnet32", resnet32, 7.51, quick_baseline=400))
