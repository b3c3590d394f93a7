#!/usr/bin/env bash
# Builds the double-clickable application with PyInstaller, then a Debian package that installs it:
#   /opt/restoration-studio/            the PyInstaller bundle
#   /usr/bin/restoration-studio         launcher (also the command line: restoration-studio restore ...)
#   /usr/share/applications/...desktop  menu entry; images open with it on double-click ("Open with")
#   /usr/share/icons/hicolor/scalable/apps/restoration-studio.svg
#
#   scripts/build_installer.sh [full|lite]     (default: full = with ZSSR and training; lite = inference only)
# Output: dist/restoration-studio_<version>_<arch>.deb  (install: sudo apt install ./dist/restoration-studio_*.deb)
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-full}
scripts/setup.sh --app
.venv/bin/python -m pip install -q -r requirements-build.txt
STUDIO_BUNDLE=$flavour .venv/bin/pyinstaller build.spec --noconfirm --workpath build/pyinstaller --distpath build/dist

version=$(.venv/bin/python -c "import engine; print(engine.__version__)")
arch=$(dpkg --print-architecture)
suffix=$([ "$flavour" = lite ] && echo "-lite" || echo "")
root=build/deb/restoration-studio
rm -rf build/deb && mkdir -p "$root/DEBIAN" "$root/opt" "$root/usr/bin" "$root/usr/share/applications" \
    "$root/usr/share/icons/hicolor/scalable/apps"
cp -a build/dist/RestorationStudio "$root/opt/restoration-studio"
ln -s /opt/restoration-studio/RestorationStudio "$root/usr/bin/restoration-studio"
cp resources/icons/app.svg "$root/usr/share/icons/hicolor/scalable/apps/restoration-studio.svg"
cat > "$root/usr/share/applications/restoration-studio.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Name=Restoration Studio
Comment=Denoise renders and photos, clean documents, upscale images — locally
Exec=/opt/restoration-studio/RestorationStudio %F
Icon=restoration-studio
Terminal=false
Categories=Graphics;Photography;2DGraphics;
MimeType=image/png;image/jpeg;image/tiff;image/bmp;image/webp;image/x-exr;image/vnd.radiance;image/x-hdr;
DESKTOP
size=$(du -sk "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: restoration-studio$suffix
Version: $version
Architecture: $arch
Maintainer: Restoration Studio developers <dev@restoration-studio.invalid>
Installed-Size: $size
Depends: libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, libxkbcommon-x11-0, libegl1, libgl1, libfontconfig1
Section: graphics
Priority: optional
Description: Image restoration on your own machine
 Denoises HDR renders (with albedo and normal buffers) and photos, restores scanned documents, upscales
 images and trains Zero-Shot Super-Resolution on the image itself. Runs on NVIDIA GPUs or the CPU.
CONTROL
mkdir -p dist
dpkg-deb --root-owner-group -Zgzip -z3 --build "$root" "dist/restoration-studio${suffix}_${version}_${arch}.deb"
ls -lh dist/*.deb
