"""LeNet as in Caffe's examples/mnist/lenet.prototxt (no ReLU after the convolutions)."""
import torch.nn as nn

from ._init import caffe_xavier_


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
