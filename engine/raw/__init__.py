"""Camera raw files: reading them through LibRaw (``rawpy``), denoising the Bayer mosaic before demosaicing, and
developing the result to a 16-bit TIFF that keeps the EXIF.

- :mod:`.mosaic`: the packed Bayer mosaic (4 planes R, G, G, B, half size) a raw denoiser sees, whatever the
  camera's CFA pattern, and its Poisson-Gaussian noise-level map (numpy only; training shares it).
- engine/imageio/camera_raw.py (the image reader's part): what is in a raw file (camera, ISO, CFA, black / white
  levels, EXIF) and developing it.
- :mod:`.noise`: the shot / read noise of a raw file, measured on its own mosaic.
- :mod:`.denoise`: running a raw denoiser (ONNX) on a file's mosaic and developing the result.
"""
