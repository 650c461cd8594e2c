"""sslkit: Structured Sparsity Learning (Wen et al., NIPS 2016), reproduced.

Modules, one concern each (docs/architecture.md draws how they fit together):
    settings      where things are: data root, run cache, results folder
    data          MNIST / CIFAR-10 as device tensors, augmentation
    models        one file per network: its code and its record (facts, solvers, sizes)
    train         SGD with Caffe learning-rate policies, the hook protocol, checkpoint/resume
    groups        filter / channel / shape / 2-D kernel / depth / element groups of a weight
    regularizers  group Lasso (subgradient or proximal; l1 as one-weight groups)
    masks         frozen zeros for fine-tuning
    lowering      a conv or linear layer as Caffe's GEMM; FLOP counts; live rows and columns
    report        per-layer sparsity and FLOP table (the paper's columns)
    compact       removal of zero groups into a smaller dense network
    timing, bench dense / CSR / compact / 2:4 GEMM timing
    pipeline      baseline -> SSL -> removal -> frozen fine-tune -> report -> compaction
    paper         the papers' numbers and tables
    figures       figures registered by name
    experiments   one module per table or figure; experiments.run is the entry point
    params, results, io, notebook, profiles   parameters, publishing, notebooks, profiles
    progress      progress bars for JupyterLab, terminals and executed notebooks
    reproduction  figures/REPORT.md: every paper number, ours, a verdict
"""

__version__ = "0.1.0"
