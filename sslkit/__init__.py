"""sslkit: Structured Sparsity Learning (Wen et al., NIPS 2016), reproduced.

Folders are layers, each importing only from the ones below it (docs/architecture.md):
    app          the command line, notebooks' entry, papermill execution, headless runs, benchmarks
    reporting    figures/REPORT.md: every paper number, ours, a verdict
    experiments  one module per table or figure; experiments.run is the entry point
    pipeline     the paper's recipe (baseline -> SSL -> removal -> frozen fine-tune) over cached stages
    results      the papers' numbers, the result record and its publishing, figures
    analysis     GEMM / layer / network timing, PCA
    models       one file per network: its code and its record
    compaction   zero groups removed into a smaller dense network
    training     solvers, the loop, runtime (device, precision), data, augmentation, torchrun
    sparsity     groups, group Lasso, masks, pruning by granularity, lowering, sparsity tables
    util         settings, profiles, atomic io, progress bars
"""

__version__ = "0.1.0"
