"""Training: degradations, patch mining, datasets, architectures, the trainer job, ONNX export (see README.md).

Importing this package is free: torch is imported only by ``archs``, ``losses`` and inside the trainer and
export functions, so the command line and the GUI can list recipes without loading torch.
"""
