"""The packaged app, end to end: PyInstaller lite bundle -> .deb -> unpacked into a temporary root -> the frozen
binary's ``--selftest`` offscreen, an image opened from its command line, the desktop entry validated, the MIME
types resolved, and an install + purge with dpkg into a temporary root leaving nothing behind.

The bundle build (about a minute on the 2-core CI machine) is cached in ``build/packaging-test/<key>/``, keyed
on everything that goes into it (spec, code, resources, requirements, PyInstaller and Python versions), so an
unchanged tree reuses it and any change rebuilds. ``STUDIO_PACKAGING_REBUILD=1`` forces a build. The times of
each step are written to ``build/packaging-test/timings.json`` (and printed with ``-s``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from configparser import RawConfigParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "packaging-test"
INPUTS = ["build.spec", "main.py", "engine", "gui", "resources", "requirements.txt", "requirements-build.txt"]
DEB_INPUTS = ["scripts/make_deb.sh", "packaging/linux"]
#: The image types a double-click must open, and the MIME type each must resolve to in the desktop entry.
EXTENSIONS = {".exr": "image/x-exr", ".hdr": "image/vnd.radiance", ".png": "image/png", ".jpg": "image/jpeg",
              ".tif": "image/tiff"}
FREEDESKTOP_MIME = Path("/usr/share/mime/packages/freedesktop.org.xml")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian/Ubuntu)"),
    pytest.mark.skipif(sys.platform != "linux", reason="the .deb is Linux-only"),
]
TIMINGS: dict[str, float] = {}


def _record(step: str, seconds: float) -> None:
    TIMINGS[step] = round(seconds, 1)
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "timings.json").write_text(json.dumps(TIMINGS, indent=1) + "\n", encoding="utf-8")
    print(f"packaging: {step}: {seconds:.1f}{'' if step.endswith('MB') else ' s'}")


def _input_key() -> str:
    import PyInstaller

    digest = hashlib.sha256(f"{PyInstaller.__version__} {sys.version}".encode())
    for item in INPUTS:
        path = ROOT / item
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QT_", "XDG_"))}
    (tmp / "home").mkdir(exist_ok=True)
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(tmp / "home"), XDG_CONFIG_HOME=str(tmp / "config"),
               RESTORATION_STUDIO_HOME=str(tmp / "studio"), **extra)
    return env


@pytest.fixture(scope="module")
def bundle() -> Path:
    """The lite one-folder bundle, built by build.spec (or reused when nothing it is made of changed)."""
    pytest.importorskip("PyInstaller", reason="requirements-dev.txt installs pyinstaller; run scripts/setup.sh")
    key = _input_key()
    folder = CACHE / f"lite-{key}"
    app = folder / "dist" / "RestorationStudio"
    if (folder / "complete").is_file() and not os.environ.get("STUDIO_PACKAGING_REBUILD"):
        _record("bundle build (cached)", 0.0)
        return app
    for old in CACHE.glob("lite-*"):  # one bundle (~0.5 GB) is kept, not one per tree state
        shutil.rmtree(old, ignore_errors=True)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "PyInstaller", str(ROOT / "build.spec"), "--noconfirm", "--log-level", "WARN",
         "--workpath", str(folder / "work"), "--distpath", str(folder / "dist")],
        cwd=ROOT, env={**os.environ, "STUDIO_BUNDLE": "lite"}, capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, f"PyInstaller failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    _record("bundle build", time.perf_counter() - started)
    shutil.rmtree(folder / "work", ignore_errors=True)
    (folder / "complete").write_text(key)
    return app


@pytest.fixture(scope="module")
def deb(bundle: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    started = time.perf_counter()
    result = subprocess.run(["bash", str(ROOT / "scripts" / "make_deb.sh"), str(bundle), str(out), "lite"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "DEB_COMPRESSION": "gzip"})
    assert result.returncode == 0, result.stderr
    _record("deb build", time.perf_counter() - started)
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.name.startswith("restoration-studio-lite_") and path.suffix == ".deb"
    return path


@pytest.fixture(scope="module")
def unpacked(deb: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=300)
    return root


@pytest.mark.timeout(1500)
def test_lite_bundle_leaves_out_torch_gpu_providers_and_bm3d(bundle):
    internal = bundle / "_internal"
    licences = internal / "resources" / "licenses"  # notices of full-only libraries are text, not code
    names = {p.name for p in internal.rglob("*") if licences not in p.parents}
    leaks = sorted(n for n in names if n.startswith(("torch", "libtorch", "scipy-", "sympy", "bm3d", "onnxscript")))
    assert not leaks, f"lite bundle holds {leaks[:10]}"
    assert not any("onnxruntime_providers_cuda" in n for n in names)
    assert not any(n.endswith(".pt") for n in names)  # fine-tuning weights: only useful with torch
    assert (internal / "resources" / "models" / "render-kprcan-aov.onnx").is_file()
    assert (internal / "resources" / "licenses" / "index.json").is_file()
    assert any(n.startswith("libOpenImageDenoise_device_cpu") for n in names)
    assert not any(n.startswith("libOpenImageDenoise_device_cuda") for n in names)
    size_mb = sum(p.stat().st_size for p in internal.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20
    _record("bundle size MB", size_mb)
    assert size_mb < 700, f"lite bundle grew to {size_mb:.0f} MB"


def test_deb_layout_and_control(deb):
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    for path in ["./opt/restoration-studio/RestorationStudio", "./usr/share/applications/restoration-studio.desktop",
                 "./usr/share/mime/packages/restoration-studio.xml",
                 "./usr/share/icons/hicolor/scalable/apps/restoration-studio.svg",
                 "./usr/share/doc/restoration-studio-lite/copyright"]:
        assert path in listing, path
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        assert f"./usr/share/icons/hicolor/{size}x{size}/apps/restoration-studio.png" in listing
    assert "./usr/bin/restoration-studio -> /opt/restoration-studio/RestorationStudio" in listing
    info = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout
    assert "Package: restoration-studio-lite" in info and "Depends:" in info and "libxcb-cursor0" in info


@pytest.mark.timeout(600)
def test_frozen_selftest_from_the_unpacked_deb(unpacked, tmp_path):
    binary = unpacked / "opt" / "restoration-studio" / "RestorationStudio"
    started = time.perf_counter()
    result = subprocess.run([str(binary), "--selftest"], capture_output=True, text=True, timeout=300,
                            env=_env(tmp_path))
    _record("frozen selftest", time.perf_counter() - started)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    assert "selftest passed" in result.stdout and "render-kprcan-aov" in result.stdout
    assert "JPEG noise levels: read by the network" in result.stdout  # the estimator's network is bundled
    assert "window built with" in result.stdout
    # The frozen CLI works too, and the lite build has no training commands.
    models = subprocess.run([str(binary), "models"], capture_output=True, text=True, timeout=120, env=_env(tmp_path))
    assert models.returncode == 0 and "render-kprcan-aov" in models.stdout and "bm3d" not in models.stdout
    usage = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=120, env=_env(tmp_path))
    assert "restore" in usage.stdout and "zssr" not in usage.stdout


@pytest.mark.timeout(300)
def test_frozen_app_opens_the_image_given_on_its_command_line(unpacked, tmp_path):
    """What a file manager runs on double-click (``Exec=restoration-studio %F``): the image must open.

    The window adds a file to its recent list only after reading it, and QSettings writes that list to
    $XDG_CONFIG_HOME/RestorationStudio/Restoration Studio.conf, which this test watches.
    """
    from PIL import Image as PILImage

    image = tmp_path / "double clicked.png"
    PILImage.new("RGB", (48, 32), (200, 120, 40)).save(image)
    binary = unpacked / "opt" / "restoration-studio" / "RestorationStudio"
    settings = tmp_path / "config" / "RestorationStudio" / "Restoration Studio.conf"
    started = time.perf_counter()
    process = subprocess.Popen([str(binary), str(image)], env=_env(tmp_path), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        opened = False
        while time.monotonic() < deadline and process.poll() is None:
            if settings.is_file() and "double clicked.png" in settings.read_text(encoding="utf-8", errors="replace"):
                opened = True
                break
            time.sleep(0.25)
        _record("frozen start to image opened", time.perf_counter() - started)
    finally:
        process.terminate()
        try:
            output = process.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0]
    assert opened, f"the image was not opened; app output:\n{output[-3000:]}"


def _mime_globs(*files: Path) -> dict[str, set[str]]:
    """MIME type -> glob patterns, from shared-mime-info XML files."""
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    globs: dict[str, set[str]] = {}
    for file in files:
        for mime in ET.parse(file).getroot().findall("m:mime-type", ns):
            globs.setdefault(mime.get("type"), set()).update(g.get("pattern") for g in mime.findall("m:glob", ns))
    return globs


def test_desktop_entry_validates_and_covers_the_image_types(unpacked):
    desktop = unpacked / "usr" / "share" / "applications" / "restoration-studio.desktop"
    validator = shutil.which("desktop-file-validate")
    assert validator, "desktop-file-validate missing: install desktop-file-utils (scripts/setup.sh does)"
    result = subprocess.run([validator, str(desktop)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr

    entry = RawConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(desktop, encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Exec"].split()[0] == "restoration-studio" and "%F" in section["Exec"]
    assert section["Icon"] == "restoration-studio"
    listed = set(filter(None, section["MimeType"].split(";")))
    ours = unpacked / "usr" / "share" / "mime" / "packages" / "restoration-studio.xml"
    known = _mime_globs(ours, *([FREEDESKTOP_MIME] if FREEDESKTOP_MIME.is_file() else []))
    for extension, mime in EXTENSIONS.items():
        assert mime in listed, f"{extension}: {mime} not in the desktop entry's MimeType"
        if FREEDESKTOP_MIME.is_file() or mime == "image/vnd.radiance":
            assert f"*{extension}" in known.get(mime, set()), f"no MIME definition maps *{extension} to {mime}"
    assert "image/x-exr" not in _mime_globs(ours)  # shared-mime-info defines it; we only add Radiance HDR


@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")
def test_install_and_purge_into_a_temporary_root_leave_nothing_behind(deb, tmp_path):
    """dpkg --instdir installs into a private root (maintainer scripts see it as $DPKG_ROOT): the caches get
    our entries, and purging removes every file of the package and every cache entry mentioning it."""
    root = tmp_path / "root"
    admin = root / "var" / "lib" / "dpkg"
    for folder in (admin / "info", admin / "updates", root / "usr" / "share" / "icons" / "hicolor",
                   root / "usr" / "share" / "mime" / "packages"):
        folder.mkdir(parents=True)
    # Another package's MIME types, as on any real system (shared-mime-info's own file is always there): the
    # database is then rebuilt, not left as it was, when our file goes.
    (root / "usr" / "share" / "mime" / "packages" / "other.xml").write_text(
        '<?xml version="1.0"?><mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">'
        '<mime-type type="application/x-other"><comment>Other</comment><glob pattern="*.other"/></mime-type>'
        "</mime-info>", encoding="utf-8")
    for name in ("status", "available"):
        (admin / name).touch()
    theme = Path("/usr/share/icons/hicolor/index.theme")
    if theme.is_file():
        shutil.copy(theme, root / "usr" / "share" / "icons" / "hicolor")
    dpkg = ["dpkg", f"--instdir={root}", f"--admindir={admin}", "--log=/dev/null", "--force-not-root",
            "--force-script-chrootless", "--force-depends"]
    started = time.perf_counter()
    installed = subprocess.run([*dpkg, "-i", str(deb)], capture_output=True, text=True, timeout=400)
    _record("dpkg install into a temporary root", time.perf_counter() - started)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    assert (root / "opt" / "restoration-studio" / "RestorationStudio").is_file()
    if shutil.which("update-desktop-database"):
        cache = (root / "usr" / "share" / "applications" / "mimeinfo.cache").read_text(encoding="utf-8")
        assert "image/vnd.radiance=restoration-studio.desktop" in cache
    if shutil.which("update-mime-database"):
        assert "image/vnd.radiance:*.hdr" in (root / "usr" / "share" / "mime" / "globs2").read_text(encoding="utf-8")
    (root / "opt" / "restoration-studio" / "stray.log").write_text("left by the app")  # postrm removes it

    purged = subprocess.run([*dpkg, "-P", "restoration-studio-lite"], capture_output=True, text=True, timeout=400)
    assert purged.returncode == 0, purged.stdout[-2000:] + purged.stderr[-2000:]
    assert not (root / "opt" / "restoration-studio").exists()
    left = []
    for path in root.rglob("*"):
        if admin in path.parents or not path.is_file():
            continue
        if "restoration-studio" in path.name or b"restoration-studio" in path.read_bytes() \
                or b"vnd.radiance" in path.read_bytes():
            left.append(str(path.relative_to(root)))
    assert not left, f"left behind after purge: {left}"
    assert not (root / "usr" / "bin" / "restoration-studio").is_symlink()


@pytest.mark.timeout(600)
def test_frozen_app_restores_a_camera_raw_file_and_keeps_its_exif(unpacked, tmp_path):
    """LibRaw (rawpy) and libexiv2 (pyexiv2, loaded with ctypes from its own folder) are in the bundle: a DNG
    is read, denoised with the raw model and saved as a 16-bit TIFF that keeps the camera's EXIF."""
    import numpy as np
    import tifffile

    from engine.imageio.exif_tags import read_file_tags
    from tests.raw_dng import raw_values, scene, write_dng

    rng = np.random.default_rng(0)
    values = raw_values(scene(96, 128), "RGGB", 512, 16383) + rng.normal(0, 60, (96, 128))
    dng = write_dng(tmp_path / "photo.dng", np.clip(values, 0, 16383).astype(np.uint16))
    binary = unpacked / "opt" / "restoration-studio" / "RestorationStudio"
    info = subprocess.run([str(binary), "info", str(dng)], capture_output=True, text=True, timeout=300,
                          env=_env(tmp_path))
    assert info.returncode == 0, info.stdout + info.stderr[-3000:]
    assert "Testmaker" in info.stdout
    out = tmp_path / "photo.tif"
    run = subprocess.run([str(binary), "restore", str(dng), "-o", str(out)], capture_output=True, text=True,
                         timeout=300, env=_env(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    with tifffile.TiffFile(out) as tif:
        assert tif.pages[0].dtype == np.uint16
    tags = read_file_tags(out)
    assert (tags.get("Exif.Image.Make"), tags.get("Exif.Photo.ISOSpeedRatings")) == ("Testmaker", "3200")
