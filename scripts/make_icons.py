"""Render the application icon (resources/icons/app.svg) to the raster sizes desktops want.

    .venv/bin/python scripts/make_icons.py        # rewrites resources/icons/app/*.png, app.ico and app.icns

PNGs 16..512 px (the freedesktop hicolor sizes, installed by the .deb), a Windows .ico (16..256) and a macOS
.icns (16..512). The outputs are committed (small); run this again after editing app.svg. Qt's SVG renderer
draws them, so the result matches what the app itself shows; Pillow writes the .ico and .icns containers.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ICONS = ROOT / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render_png(svg: Path, size: int) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    svg = ICONS / "app.svg"
    out = ICONS / "app"
    out.mkdir(exist_ok=True)
    images = {}
    for size in SIZES:
        png = render_png(svg, size)
        (out / f"{size}.png").write_bytes(png)
        images[size] = Image.open(io.BytesIO(png)).convert("RGBA")
    # Each size drawn by the SVG renderer itself (not scaled down from 256), so small sizes stay crisp.
    images[256].save(ICONS / "app.ico", format="ICO", sizes=[(s, s) for s in ICO_SIZES],
                     append_images=[images[s] for s in ICO_SIZES if s != 256])
    images[512].save(ICONS / "app.icns", format="ICNS", append_images=[images[s] for s in (16, 32, 64, 128, 256)])
    print(f"wrote {len(SIZES)} PNGs to {out.relative_to(ROOT)}, app.ico and app.icns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
