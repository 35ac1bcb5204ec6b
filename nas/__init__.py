"""densenas: architecture search and ablation over the DenseNet family."""

__version__ = "0.1.0"
