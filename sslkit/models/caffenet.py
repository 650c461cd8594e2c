"""AlexNet as CaffeNet (models/bvlc_reference_caffenet): grouped conv2/4/5, LRN after the
pooling, 227x227 input. 60,965,224 parameters (1000 classes; ``hidden`` narrows fc6/fc7).

An adaptive average pool to 6x6 sits before ``fc6``: at 227x227 pool5's output is already 6x6
and the pool is the identity (CaffeNet exactly); it lets a CPU profile train on smaller crops
while the conv layers keep their shapes at 227 for timing."""
import torch
import torch.nn as nn

from sslkit.models._network import Multiplier, Network, Sizes
from sslkit.training.augment import crop_flip_mean
from sslkit.training.solver import Solver


class CaffeNet(nn.Sequential):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5, hidden: int = 4096):
        super().__init__()
        lrn = dict(size=5, alpha=1e-4, beta=0.75, k=1.0)
        self.conv1 = nn.Conv2d(3, 96, 11, stride=4)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.norm1 = nn.LocalResponseNorm(**lrn)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.norm2 = nn.LocalResponseNorm(**lrn)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
        self.relu4 = nn.ReLU()
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
        self.relu5 = nn.ReLU()
        self.pool5 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.pool6 = nn.AdaptiveAvgPool2d(6)
        self.flatten = nn.Flatten()
        self.fc6 = nn.Linear(256 * 6 * 6, hidden)
        self.relu6 = nn.ReLU()
        self.drop6 = nn.Dropout(dropout)
        self.fc7 = nn.Linear(hidden, hidden)
        self.relu7 = nn.ReLU()
        self.drop7 = nn.Dropout(dropout)
        self.fc8 = nn.Linear(hidden, num_classes)
        for m in self.modules():  # Caffe: gaussian 0.01 (fc6/fc7: 0.005), biases 0 or 1
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, std=0.005 if m in (self.fc6, self.fc7) else 0.01)
                nn.init.constant_(m.bias, 1.0 if m in (self.conv2, self.conv4, self.conv5, self.fc6, self.fc7) else 0.0)


def caffenet_standin(num_classes: int = 10, dropout: float = 0.5, hidden: int = 4096) -> CaffeNet:
    """CaffeNet with a 10-way classifier for the Imagenette stand-in, initialised as
    torchvision's AlexNet (PyTorch's defaults) with conv1's weights divided by 60, about the
    pixel std of mean-subtracted [0, 255] inputs. Caffe's Gaussian(0.01) init stays at chance
    level for longer than a CPU schedule (we tried: loss 2.301 = ln 10 after 100 iterations
    of 256)."""
    net = CaffeNet(num_classes, dropout, hidden)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.reset_parameters()
    with torch.no_grad():
        net.conv1.weight /= 60.0
    return net


# Caffe's bvlc_reference_caffenet solver (lr 0.01 /10 every 100k of 450k iterations, momentum
# 0.9, weight decay 5e-4, batch 256; biases at 2x lr without decay) and the authors' SSL (lr
# 1e-3, weight decay 2.5e-4, 450k iterations) and fine-tuning (lr 1e-3, 220k) solvers.
_CAFFE = dict(momentum=0.9, batch_size=256)
_SOLVERS = {
    "baseline": Solver(lr=0.01, policy="multistep", weight_decay=5e-4, steps_at=(2 / 9, 4 / 9, 6 / 9, 8 / 9), **_CAFFE),
    "ssl": Solver(lr=1e-3, weight_decay=2.5e-4, **_CAFFE),
    "finetune": Solver(lr=1e-3, weight_decay=5e-4, **_CAFFE),
}
_BIASES = (Multiplier("*.bias", lr_mult=2.0, decay_mult=0.0),)
# The stand-in's baseline: the same solver with its steps at 1/2 and 3/4 of the run (Caffe's every
# 2/9 leaves a shortened run too few iterations at the initial lr).
_STANDIN = {**_SOLVERS, "baseline": Solver(lr=0.01, policy="multistep", weight_decay=5e-4, **_CAFFE)}

NETWORKS = (
    # ILSVRC 2012: the paper's network. Trained only where ImageNet is (a GPU, or several).
    Network(name="caffenet", build=CaffeNet, input_shape=(3, 227, 227), dataset="imagenet",
            normalize="mean", paper_error=42.63,  # Table 4, top-1
            augment=crop_flip_mean, solvers=_SOLVERS, multipliers=_BIASES,
            sizes={"paper": Sizes(baseline=450_000, ssl=450_000, finetune=220_000, resize=256)}),
    # The same network and recipe on the ImageNet stand-in (Imagenette 2, 9,469 training images:
    # 37 iterations of 256 per epoch). Errors are the stand-in's, not comparable with ImageNet's.
    Network(name="caffenet10", build=caffenet_standin, input_shape=(3, 227, 227), dataset="imagenet",
            normalize="mean", augment=crop_flip_mean, solvers=_STANDIN, multipliers=_BIASES,
            sizes={
                # fc6/fc7 256 wide (not 4,096): seconds, not a minute, per smoke run (57M weights
                # to step and save); the convs keep their shapes.
                "smoke": Sizes(baseline=3, ssl=2, finetune=1, train=48, test=32, evals=1, resize=64, hidden=256),
                # 2 CPU cores: 114x114 crops of 128x128 images (about 80 images/s), 8 epochs of
                # baseline, 2 of SSL (strengths x20) and 1 of fine-tuning; layers timed at 227.
                "quick": Sizes(baseline=300, ssl=80, finetune=40, evals=3, resize=128, strength_factor=20.0),
                # One GPU, about 25 minutes for the whole stand-in study.
                # 2 CPU cores in bf16 (about 170 images/s at 114x114): 40 epochs of baseline (steps
                # at 1/2 and 3/4), 16 of SSL (strengths x5), 8 of fine-tuning; layers timed at 227.
                "converged": Sizes(baseline=1_500, ssl=600, finetune=300, evals=10, resize=128, strength_factor=5.0,
                                   precision="bf16"),
                "paper": Sizes(baseline=3000, ssl=1500, finetune=750, evals=5, resize=256),
            }),
)
