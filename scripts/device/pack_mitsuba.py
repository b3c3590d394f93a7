"""Pack Mitsuba 3 and Dr.Jit for the device machine: only the RGB variants and the plugins our scene
generator loads, as one .tar.xz small enough to travel with the working tree (the device's limit is 64 MiB in
all; the whole cp312 wheels are 67 MB, this is 17 MB).

    python scripts/device/pack_mitsuba.py --wheels DIR --out .device/mitsuba.tar.xz   # from downloaded wheels
    python scripts/device/pack_mitsuba.py --site .venv/lib/python3.11/site-packages --out /tmp/m.tar.xz

Unpack it into a folder on ``PYTHONPATH`` (scripts/device/render_round.py does). The plugin list is what
rendering 40 scenes of every kind (Gaussian, panel and firefly scenes) loaded, read from /proc/self/maps, plus
``plastic`` (in the generator, rare); a stripped copy of this machine's install rendered 12 scenes identically
to the full one (checked by hand on 2026-12-04). tests/test_device_round.py checks what the pack keeps.
"""

from __future__ import annotations

import argparse
import io
import re
import tarfile
import tempfile
import zipfile
from pathlib import Path

VARIANTS = ("scalar_rgb", "llvm_ad_rgb", "cuda_ad_rgb")
PLUGINS = (
    "aov area bitmap box checkerboard conductor constant cube cylinder d65 dielectric diffuse directional disk "
    "envmap gaussian hdrfilm independent merge path perspective plastic point rectangle regular roughconductor "
    "roughdielectric roughplastic sphere spot srgb twosided uniform"
).split()
#: Folders of the packages nothing at run time needs (headers, CMake files, type stubs).
#: The spectral upsampling table (7 MB packed) and the sky model's data serve variants and plugins we drop.
DROPPED_DIRS = ("mitsuba/include", "mitsuba/cmake", "mitsuba/pkgconfig", "mitsuba/mitsuba_stubs",
                "mitsuba/data/srgb.coeff", "mitsuba/data/sunsky",
                "drjit/include", "drjit/cmake", "drjit/pkgconfig", "drjit/stubs")
_VARIANT_MODULE = re.compile(r"^mitsuba/((?:scalar|llvm|cuda)_\w+?)\.cpython-[^/]+\.so$")


def keep(name: str) -> bool:
    """Whether a path inside the packages (``mitsuba/...`` or ``drjit/...``) goes into the pack."""
    if not name.startswith(("mitsuba/", "drjit/")) or name.endswith((".pyi", ".pyc")):
        return False
    if any(name == d or name.startswith(d + "/") for d in DROPPED_DIRS):
        return False
    variant = _VARIANT_MODULE.match(name)
    if variant:
        return variant.group(1) in VARIANTS
    if name.startswith("mitsuba/plugins/"):
        return Path(name).stem in PLUGINS
    return True


def _members_from_wheels(folder: Path):
    for wheel in sorted(folder.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if not info.is_dir() and keep(info.filename):
                    yield info.filename, archive.read(info), (info.external_attr >> 16) or 0o644


def _members_from_site(site: Path):
    for package in ("mitsuba", "drjit"):
        for path in sorted((site / package).rglob("*")):
            name = path.relative_to(site).as_posix()
            if path.is_file() and "__pycache__" not in name and keep(name):
                yield name, path.read_bytes(), path.stat().st_mode


def pack(members, out: Path) -> int:
    """Write the members into ``out`` (.tar.xz); returns the number of files."""
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with tempfile.NamedTemporaryFile(dir=out.parent, delete=False, suffix=".part") as handle:
        part = Path(handle.name)
    with tarfile.open(part, "w:xz", preset=6) as tar:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode & 0o777 or 0o644
            tar.addfile(info, io.BytesIO(data))
            count += 1
    part.chmod(0o644)
    part.replace(out)
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--wheels", type=Path, help="folder holding the mitsuba and drjit wheels")
    source.add_argument("--site", type=Path, help="a site-packages folder where both are installed")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    members = _members_from_wheels(args.wheels) if args.wheels else _members_from_site(args.site)
    count = pack(members, args.out)
    if count == 0:
        raise SystemExit("no mitsuba / drjit files found")
    print(f"{count} files, {args.out.stat().st_size / 2**20:.1f} MiB -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
