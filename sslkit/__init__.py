"""sslkit: Structured Sparsity Learning (Wen et al., NIPS 2016), reproduced.

Modules, one concern each:
    data          data roots, MNIST / CIFAR-10 / image folders as device tensors
    models        LeNet, MLP, ConvNet, ResNet-20/32, CaffeNet
    train         SGD with Caffe learning-rate policies, hooks, checkpoint/resume
    groups        filter / channel / shape / 2-D kernel / depth groups of a weight
    regularizers  group Lasso (subgradient or proximal) and L1
    masks         frozen zeros for fine-tuning
    report        per-layer sparsity and FLOP table (the paper's columns)
    compact       removal of zero groups into a smaller dense network
    flops         lowered GEMM shapes and FLOP counts
    timing, bench dense / CSR / compact / 2:4 GEMM timing
    profiles      smoke / quick / paper schedule sizes
    paper         the papers' numbers
    experiments   one function per table or figure
"""

__version__ = "0.1.0"
