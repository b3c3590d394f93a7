"""Restoration Studio engine: everything that computes (I/O, models, inference, training, jobs).

This package never imports Qt (a test checks it). Importing it is cheap: no scanning, no torch,
no downloads. Torch is imported lazily by the training, ZSSR and export code only.
"""

__version__ = "0.1.0"
