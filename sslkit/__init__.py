"""sslkit: Structured Sparsity Learning (Wen et al., NIPS 2016), reproduced.

Modules, one concern each:
    data         data roots, MNIST / CIFAR-10 / image folders as device tensors
    models       LeNet, MLP, ConvNet, ResNet-20/32, CaffeNet
    train        SGD with Caffe learning-rate policies, hooks, checkpoint/resume
    profiles     smoke / quick / paper schedule sizes
"""

__version__ = "0.1.0"
