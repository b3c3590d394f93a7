"""Restoration Studio engine: everything that computes (I/O, models, inference, training, jobs).

This package never imports Qt (a test checks it). Importing it is cheap: no scanning, no torch,
no downloads. Torch is imported lazily by the training, ZSSR and export code only.
"""

import os

# OpenCV reads OpenEXR files only when this is set before its first EXR call; every engine module (and so every
# cv2 call the app, the tests and the benches make through the engine) runs this first. The one place it is set.
os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")

__version__ = "0.1.0"
