"""Degradations as pure functions: noise, JPEG, blur kernels, downscaling.

The numpy functions take and return float32 H x W x C arrays (C = 1 or 3) without modifying their input; noise
levels are in [0, 1] units (an 8-bit sigma of 25 is ``25 / 255``). Randomness always comes from a
``numpy.random.Generator`` passed in, so a seed reproduces a degradation exactly. Noisy results are not clipped
here (the benchmark protocols add unclipped noise); real sensors and 8-bit files clip, which recipes ask for with
``clip_prob`` (:func:`engine.training.datasets.degrade` clips after the noise, as a camera does).

The torch twins at the end (``*_torch``) apply the same noise models to whole N x C x H x W batches on the
training device, with one level per sample.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: inference never needs it
    import torch


def _as_float_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"expected an H x W x C image, got shape {image.shape}")
    return image


# ----------------------------------------------------------------------------------------------- noise


def sample_level(level: float | tuple[float, float], rng: np.random.Generator) -> float:
    """A fixed level, or one drawn uniformly from ``(low, high)``."""
    if isinstance(level, (tuple, list)):
        low, high = float(level[0]), float(level[1])
        return float(rng.uniform(low, high)) if high > low else low
    return float(level)


def correlated_normal(shape: tuple[int, ...], correlation_sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian noise of ``shape`` (H x W x C), spatially correlated by a Gaussian of
    ``correlation_sigma`` pixels (0: white noise). Real camera noise after demosaicing is correlated like this."""
    noise = rng.standard_normal(shape).astype(np.float32)
    if correlation_sigma <= 0:
        return noise
    import cv2

    blurred = cv2.GaussianBlur(noise, (0, 0), sigmaX=correlation_sigma, borderType=cv2.BORDER_REFLECT)
    if blurred.ndim == 2:
        blurred = blurred[:, :, None]
    # Renormalise so that the level still means the per-pixel standard deviation.
    std = float(blurred.std())
    return blurred / max(std, 1e-8)


def add_gaussian_noise(
    image: np.ndarray,
    sigma: float | tuple[float, float],
    rng: np.random.Generator,
    per_channel: bool = False,
    correlation_sigma: float = 0.0,
) -> tuple[np.ndarray, float]:
    """``image + sigma * n``. ``sigma`` fixed or a ``(low, high)`` range; ``per_channel`` draws one level per
    channel (within the range) to mimic colour-dependent sensor noise. Returns the noisy image and the mean
    level used (what a noise-level input should be told)."""
    image = _as_float_image(image)
    channels = image.shape[2]
    if per_channel:
        levels = np.array([sample_level(sigma, rng) for _ in range(channels)], dtype=np.float32)
    else:
        levels = np.full(channels, sample_level(sigma, rng), dtype=np.float32)
    noise = correlated_normal(image.shape, correlation_sigma, rng)
    return image + noise * levels[None, None, :], float(levels.mean())


def add_poisson_gaussian_noise(
    image: np.ndarray,
    shot: float | tuple[float, float],
    read: float | tuple[float, float],
    rng: np.random.Generator,
    correlation_sigma: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Heteroscedastic sensor noise: variance ``shot * x + read**2`` (the Gaussian approximation of
    Poisson-Gaussian noise, exact enough at photographic exposures and differentiable), optionally spatially
    correlated like demosaiced camera noise. Returns the noisy image and the mean standard deviation."""
    image = _as_float_image(image)
    a = sample_level(shot, rng)
    b = sample_level(read, rng)
    variance = a * np.clip(image, 0.0, None) + b * b
    std = np.sqrt(variance).astype(np.float32)
    noisy = image + std * correlated_normal(image.shape, correlation_sigma, rng)
    return noisy, float(std.mean())


def jpeg_compress(image: np.ndarray, quality: int, subsampling: str = "420") -> np.ndarray:
    """Round-trip through an 8-bit JPEG of ``quality`` (1-100) with chroma ``subsampling`` "420" (libjpeg's
    default, what phones and most cameras write) or "444". Input values are clipped to [0, 1]."""
    import cv2

    factors = {"420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444}
    if subsampling not in factors:
        raise ValueError(f"JPEG subsampling must be 420 or 444, got {subsampling!r}")
    image = _as_float_image(image)
    channels = image.shape[2]
    as_uint8 = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    if channels == 3:
        as_uint8 = as_uint8[:, :, ::-1]  # OpenCV encodes BGR
    flags = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    if channels == 3:
        flags += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, factors[subsampling]]
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(as_uint8), flags)
    if not ok:
        raise ValueError("JPEG encoding failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    if decoded.ndim == 2:
        decoded = decoded[:, :, None]
    elif channels == 3:
        decoded = decoded[:, :, ::-1]
    return np.ascontiguousarray(decoded, dtype=np.float32) / 255.0


# ----------------------------------------------------------------------------------------------- camera noise

#: XYZ -> camera matrices of four cameras (Adobe DNG converter's ColorMatrix1 for a Canon EOS 5D Mark III, Canon
#: EOS 5D, Nikon D700 and Sony SLT-A57), the ones Brooks et al. 2019 draw random colour corrections from.
_XYZ2CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
])
_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                     [0.0193339, 0.1191920, 0.9503041]])


def random_camera(rng: np.random.Generator) -> dict:
    """A random camera as Brooks et al. 2019 ("Unprocessing Images for Learned Raw Denoising") draw one: a colour
    correction mixed from real cameras' matrices, red / blue white-balance gains, a digital gain (brightness), and
    shot / read noise levels related as in their fit to real sensors (log read = 2.18 log shot + 1.2 + N(0, 0.26))."""
    weights = rng.uniform(1e-8, 1e8, len(_XYZ2CAMS))
    xyz2cam = np.tensordot(weights / weights.sum(), _XYZ2CAMS, axes=1)
    rgb2cam = xyz2cam @ _RGB2XYZ
    rgb2cam = rgb2cam / rgb2cam.sum(axis=-1, keepdims=True)
    log_shot = rng.uniform(np.log(1e-4), np.log(1.2e-2))
    log_read = 2.18 * log_shot + 1.20 + rng.normal(0.0, 0.26)
    return {
        "rgb2cam": rgb2cam,
        "red_gain": float(rng.uniform(1.9, 2.4)),
        "blue_gain": float(rng.uniform(1.5, 1.9)),
        "digital_gain": float(rng.normal(0.8, 0.1)),
        "shot": float(np.exp(log_shot)),
        "read": float(np.exp(log_read)),
    }


def _smoothstep_inverse(image: np.ndarray) -> np.ndarray:
    image = np.clip(image, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * image) / 3.0)


def _smoothstep(image: np.ndarray) -> np.ndarray:
    image = np.clip(image, 0.0, 1.0)
    return 3.0 * image**2 - 2.0 * image**3


def _demosaic_rggb(mosaic: np.ndarray) -> np.ndarray:
    """Bilinear-class demosaicing (OpenCV's, as many camera pipelines' first step) of an RGGB mosaic in [0, 1]."""
    import cv2

    samples = np.clip(np.rint(mosaic * 65535.0), 0, 65535).astype(np.uint16)
    # OpenCV names Bayer patterns by the second row's first two pixels: RGGB is its "BayerBG".
    rgb = cv2.cvtColor(samples, cv2.COLOR_BayerBG2RGB)
    return rgb.astype(np.float32) / 65535.0


def camera_gains(camera: dict) -> np.ndarray:
    """The white-balance gains times the digital gain, per RGB channel, that :func:`process_mosaic` applies."""
    return np.array([camera["red_gain"], 1.0, camera["blue_gain"]]) * camera["digital_gain"]


def unprocess(image: np.ndarray, camera: dict) -> np.ndarray:
    """A display-referred RGB image (H x W x 3 in [0, 1], even H and W) back to a clean RGGB Bayer mosaic in
    linear raw space (H x W float64 in [0, 1], 0 = black level, 1 = white level), after Brooks et al. 2019:
    inverse tone curve, inverse gamma, inverse colour correction, inverse white balance and digital gain
    (their "safe" inverse that keeps highlights), then mosaicking."""
    image = _as_float_image(image)
    if image.shape[2] != 3:
        raise ValueError("unprocessing needs an RGB image")
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    image = image[:height, :width]
    rgb2cam = np.asarray(camera["rgb2cam"], np.float64)
    linear = np.maximum(_smoothstep_inverse(image.astype(np.float64)), 1e-8) ** 2.2
    raw = linear @ rgb2cam.T
    gray = raw.mean(axis=2, keepdims=True)
    inverse = 1.0 / camera_gains(camera)
    mask = (np.maximum(gray - 0.9, 0.0) / 0.1) ** 2
    raw = np.clip(raw * np.maximum(inverse, (1.0 - mask) * inverse + mask), 0.0, 1.0)
    mosaic = np.empty((height, width))
    mosaic[0::2, 0::2] = raw[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = raw[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = raw[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = raw[1::2, 1::2, 2]
    return mosaic


def add_sensor_noise(mosaic: np.ndarray, shot: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """Heteroscedastic sensor noise on a linear raw mosaic in [0, 1]: variance ``shot * x + read`` (the Gaussian
    approximation of Poisson-Gaussian noise), then the sensor's clipping to [0, 1]."""
    std = np.sqrt(shot * np.clip(mosaic, 0.0, None) + read)
    return np.clip(mosaic + std * rng.standard_normal(mosaic.shape), 0.0, 1.0)


def process_mosaic(mosaic: np.ndarray, camera: dict) -> np.ndarray:
    """The camera's processing of an RGGB raw mosaic in [0, 1] (the inverse of :func:`unprocess`): white balance
    and digital gain, demosaicing, colour correction, gamma and tone curve. Returns H x W x 3 float32 in [0, 1]."""
    demosaiced = _demosaic_rggb(np.asarray(mosaic)).astype(np.float64) * camera_gains(camera)
    cam2rgb = np.linalg.inv(np.asarray(camera["rgb2cam"], np.float64))
    rgb = np.clip(demosaiced @ cam2rgb.T, 0.0, 1.0)
    return _smoothstep(np.maximum(rgb, 1e-8) ** (1.0 / 2.2)).astype(np.float32)


def add_camera_noise(image: np.ndarray, rng: np.random.Generator, camera: dict | None = None,
                     noise_scale: float = 1.0) -> tuple[np.ndarray, float]:
    """Realistic camera noise on a display-referred RGB image (H x W x 3 in [0, 1], even H and W), after Brooks
    et al. 2019: :func:`unprocess` to an RGGB mosaic, heteroscedastic Poisson-Gaussian noise in raw space
    (:func:`add_sensor_noise`, variance ``shot * x + read``, clipped as the sensor does), then
    :func:`process_mosaic` again. Without noise (``noise_scale = 0``) the result differs from the input only by
    demosaicing. Returns the noisy image and the mean noise standard deviation in display units."""
    image = _as_float_image(image)
    if image.shape[2] != 3:
        raise ValueError("camera noise needs an RGB image")
    camera = camera or random_camera(rng)
    mosaic = unprocess(image, camera)
    shot, read = camera["shot"] * noise_scale**2, camera["read"] * noise_scale**2
    display = process_mosaic(add_sensor_noise(mosaic, shot, read, rng), camera)
    return display, float(np.sqrt(shot * 0.2 + read))


# ----------------------------------------------------------------------------------------------- blur kernels


def anisotropic_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float = 0.0) -> np.ndarray:
    """A ``size`` x ``size`` Gaussian kernel with standard deviations ``sigma_x``, ``sigma_y`` (pixels) along
    axes rotated by ``theta`` radians; sums to 1."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    if sigma_x <= 0 or sigma_y <= 0:
        raise ValueError("kernel sigmas must be positive")
    half = size // 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    u = cos_t * x + sin_t * y
    v = -sin_t * x + cos_t * y
    kernel = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (kernel / kernel.sum()).astype(np.float32)


def isotropic_gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    return anisotropic_gaussian_kernel(size, sigma, sigma, 0.0)


def random_gaussian_kernel(
    rng: np.random.Generator, size: int = 15, sigma_range: tuple[float, float] = (0.2, 3.0), isotropic_prob: float = 0.5
) -> np.ndarray:
    """A random isotropic or anisotropic Gaussian kernel, as in blind SR degradation models."""
    if rng.random() < isotropic_prob:
        return isotropic_gaussian_kernel(size, float(rng.uniform(*sigma_range)))
    return anisotropic_gaussian_kernel(
        size, float(rng.uniform(*sigma_range)), float(rng.uniform(*sigma_range)), float(rng.uniform(0, math.pi))
    )


def blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve every channel with ``kernel`` (reflect borders)."""
    import cv2

    image = _as_float_image(image)
    # filter2D correlates; flipping makes it a true convolution for asymmetric kernels.
    flipped = np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32)
    result = cv2.filter2D(image, -1, flipped, borderType=cv2.BORDER_REFLECT)
    if result.ndim == 2:
        result = result[:, :, None]
    return result


# ----------------------------------------------------------------------------------------------- downscaling


def _cubic(x: np.ndarray) -> np.ndarray:
    absx = np.abs(x)
    absx2, absx3 = absx**2, absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * (
        (absx > 1) & (absx <= 2)
    )


def _resize_weights(in_length: int, out_length: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB imresize's contribution weights and indices along one axis (bicubic, antialiased when shrinking)."""
    kernel_width = 4.0
    antialias = scale < 1
    if antialias:
        kernel_width /= scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    weights = scale * _cubic(distance * scale) if antialias else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    # Mirror out-of-range indices (MATLAB's symmetric padding), then go 0-based.
    indices = indices - 1
    indices = np.where(indices < 0, -indices - 1, indices)
    indices = np.where(indices >= in_length, 2 * in_length - indices - 1, indices)
    return weights.astype(np.float64), indices.astype(np.int64)


def imresize_bicubic(image: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB-compatible bicubic resize (antialiased when downscaling), the degradation Set5/Set14 LR images
    were made with. Output size is ``ceil(H * scale) x ceil(W * scale)``."""
    image = _as_float_image(image)
    height, width = image.shape[:2]
    out_h, out_w = int(math.ceil(height * scale)), int(math.ceil(width * scale))
    result = image.astype(np.float64)
    # Resize along the dimension that shrinks most first, as MATLAB does (it changes the result slightly).
    order = (0, 1) if scale <= 1 else (1, 0)
    for axis in order:
        in_len = result.shape[axis]
        out_len = out_h if axis == 0 else out_w
        weights, indices = _resize_weights(in_len, out_len, scale)
        gathered = np.take(result, indices, axis=axis)  # axis replaced by (out_len, taps)
        if axis == 0:
            result = np.einsum("otwc,ot->owc", gathered, weights)
        else:
            result = np.einsum("hotc,ot->hoc", gathered, weights)
    return result.astype(np.float32)


def bicubic_downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Downscale by an integer ``factor`` with MATLAB bicubic; the image is first cropped to a multiple of it."""
    image = _as_float_image(image)
    height, width = image.shape[:2]
    image = image[: height - height % factor, : width - width % factor]
    return imresize_bicubic(image, 1.0 / factor)


def kernel_downscale(image: np.ndarray, kernel: np.ndarray, factor: int) -> np.ndarray:
    """``(x * k) downsampled by factor``: blur with ``kernel`` then keep every ``factor``-th pixel, starting at the
    centre of each factor x factor cell so that the LR grid lines up with bicubic's."""
    image = _as_float_image(image)
    height, width = image.shape[:2]
    image = image[: height - height % factor, : width - width % factor]
    blurred = blur(image, kernel)
    offset = (factor - 1) // 2
    return np.ascontiguousarray(blurred[offset::factor, offset::factor])


def modcrop(image: np.ndarray, factor: int) -> np.ndarray:
    """Crop H and W down to multiples of ``factor``."""
    height, width = image.shape[:2]
    return image[: height - height % factor, : width - width % factor]


# ----------------------------------------------------------------------------------------------- torch twins


def gaussian_noise_torch(batch: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator | None = None):
    """Batch twin of :func:`add_gaussian_noise`: ``sigma`` has one level per sample (shape N), in [0, 1] units."""
    import torch

    noise = torch.randn(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
    return batch + noise * sigma.to(batch).view(-1, 1, 1, 1)


def poisson_gaussian_noise_torch(
    batch: torch.Tensor, shot: torch.Tensor, read: torch.Tensor, generator: torch.Generator | None = None
):
    """Batch twin of :func:`add_poisson_gaussian_noise` with per-sample ``shot`` and ``read`` (shape N)."""
    import torch

    variance = shot.to(batch).view(-1, 1, 1, 1) * batch.clamp(min=0) + read.to(batch).view(-1, 1, 1, 1) ** 2
    noise = torch.randn(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
    return batch + noise * variance.sqrt()
