"""AlexNet as CaffeNet (models/bvlc_reference_caffenet): grouped conv2/4/5, LRN after the
pooling, 227x227 input. 60,965,224 parameters."""
import torch.nn as nn

from ._network import Network


class CaffeNet(nn.Sequential):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
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
        self.flatten = nn.Flatten()
        self.fc6 = nn.Linear(256 * 6 * 6, 4096)
        self.relu6 = nn.ReLU()
        self.drop6 = nn.Dropout(dropout)
        self.fc7 = nn.Linear(4096, 4096)
        self.relu7 = nn.ReLU()
        self.drop7 = nn.Dropout(dropout)
        self.fc8 = nn.Linear(4096, num_classes)
        for m in self.modules():  # Caffe: gaussian 0.01 (fc6/fc7: 0.005), biases 0 or 1
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, std=0.005 if m in (self.fc6, self.fc7) else 0.01)
                nn.init.constant_(m.bias, 1.0 if m in (self.conv2, self.conv4, self.conv5, self.fc6, self.fc7) else 0.0)


# Not trained by the suite yet: its layers are timed at the paper's sparsity (Table 4, Figure 1).
NETWORKS = (Network(name="caffenet", build=CaffeNet, input_shape=(3, 227, 227), dataset="imagenet",
                    normalize="mean", paper_error=42.63),)  # Table 4, top-1
