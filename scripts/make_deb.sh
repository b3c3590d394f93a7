#!/usr/bin/env bash
# Packs a built PyInstaller bundle into a Debian package (scripts/build_installer.sh calls this):
#   scripts/make_deb.sh BUNDLE_DIR OUT_DIR [lite|full]      -> OUT_DIR/restoration-studio[-lite]_<version>_<arch>.deb
#
# The package installs:
#   /opt/restoration-studio/                                the bundle (RestorationStudio + _internal/)
#   /usr/bin/restoration-studio                             -> the bundle's binary (app and command line)
#   /usr/share/applications/restoration-studio.desktop      menu entry; "Open with" / double-click on images
#   /usr/share/mime/packages/restoration-studio.xml         image/vnd.radiance (.hdr), which Debian lacks
#   /usr/share/icons/hicolor/{16x16..512x512,scalable}/apps/restoration-studio.{png,svg}
#   /usr/share/doc/restoration-studio/copyright             licences of the bundled libraries
# postinst/postrm refresh the MIME, desktop and icon caches. DEB_COMPRESSION (gzip, xz, zstd, none; default
# gzip, which every dpkg reads) picks the compressor.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bundle=$(realpath "${1:?usage: make_deb.sh BUNDLE_DIR OUT_DIR [lite|full]}")
out=$(realpath -m "${2:?usage: make_deb.sh BUNDLE_DIR OUT_DIR [lite|full]}")
flavour=${3:-lite}
[ -x "$bundle/RestorationStudio" ] || { echo "error: $bundle/RestorationStudio not found (build the bundle first)" >&2; exit 1; }

version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$repo/engine/__init__.py")
arch=$(dpkg --print-architecture)
name=restoration-studio$([ "$flavour" = lite ] && echo "-lite" || true)
conflicts=$([ "$flavour" = lite ] && echo restoration-studio || echo restoration-studio-lite)
stage=$(mktemp -d "${TMPDIR:-/tmp}/restoration-studio-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/$name
share=$root/usr/share

mkdir -p "$root/DEBIAN" "$root/opt" "$root/usr/bin" "$share/applications" "$share/mime/packages" \
    "$share/icons/hicolor/scalable/apps" "$share/doc/$name"
cp -a "$bundle" "$root/opt/restoration-studio"
ln -s /opt/restoration-studio/RestorationStudio "$root/usr/bin/restoration-studio"
install -m 644 "$repo/packaging/linux/restoration-studio.desktop" "$share/applications/"
install -m 644 "$repo/packaging/linux/restoration-studio-mime.xml" "$share/mime/packages/restoration-studio.xml"
install -m 644 "$repo/resources/icons/app.svg" "$share/icons/hicolor/scalable/apps/restoration-studio.svg"
for png in "$repo"/resources/icons/app/*.png; do
    size=$(basename "$png" .png)
    install -D -m 644 "$png" "$share/icons/hicolor/${size}x${size}/apps/restoration-studio.png"
done
install -m 644 "$repo/resources/licenses/THIRD_PARTY.md" "$share/doc/$name/copyright"
install -m 755 "$repo/packaging/linux/postinst" "$repo/packaging/linux/postrm" "$root/DEBIAN/"
# dpkg wants group/other-readable files and no setuid bits; PyInstaller keeps the wheels' modes, which are.
chmod -R u+rwX,go+rX,go-w "$root/opt"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
# The bundle carries libpython and libraries built against this machine's glibc: require at least that one.
glibc=$(dpkg-query -W -f='${Version}' libc6 2>/dev/null | sed 's/-.*//')
cat > "$root/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: Restoration Studio developers <dev@restoration-studio.invalid>
Installed-Size: $size
Depends: libc6 (>= ${glibc:-2.31}), libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, libxcb-image0, libxcb-render-util0, libxcb-xkb1, libxkbcommon-x11-0, libegl1, libgl1, libfontconfig1, libdbus-1-3
Recommends: shared-mime-info, desktop-file-utils
Conflicts: $conflicts
Replaces: $conflicts
Section: graphics
Priority: optional
Homepage: https://restoration-studio.invalid
Description: Image restoration on your own machine
 Denoises HDR renders (with albedo and normal buffers) and photos, restores
 scanned documents and upscales images, with small neural networks that run
 on the CPU. Opens EXR, Radiance HDR, PNG, JPEG, TIFF, BMP and WebP images.
CONTROL
if [ "$flavour" = full ]; then
    cat >> "$root/DEBIAN/control" <<'CONTROL'
 .
 This full build also trains: Zero-Shot Super-Resolution on the image itself
 and fine-tuning of the bundled models (it contains PyTorch).
CONTROL
else
    cat >> "$root/DEBIAN/control" <<'CONTROL'
 .
 This lite build leaves out PyTorch: no ZSSR and no training (the
 restoration-studio package has them).
CONTROL
fi

mkdir -p "$out"
deb="$out/${name}_${version}_${arch}.deb"
compression=${DEB_COMPRESSION:-gzip}
level=()
[ "$compression" = gzip ] && level=(-z6)
dpkg-deb --root-owner-group -Z"$compression" "${level[@]}" --build "$root" "$deb" >/dev/null
echo "$deb"
