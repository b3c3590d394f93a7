#!/usr/bin/env bash
# macOS recipe: "Restoration Studio.app" and a .dmg. It cannot be built on the Linux CI machine (PyInstaller
# builds for the OS it runs on, and the .app needs macOS's codesign/hdiutil). On a Mac (Python 3.11):
#
#   packaging/macos/build_app.sh [lite|full]
#
# build.spec's BUNDLE step writes the .app with an Info.plist that declares the document types it opens
# (.exr .hdr .png .jpg/.jpeg .tif/.tiff), so Finder lists the app under "Open With"; a double-clicked file
# reaches the running app as a QFileOpenEvent (gui/app.py opens it). The icon is resources/icons/app.icns
# (scripts/make_icons.py). Signing and notarising need an Apple Developer ID: set CODESIGN_IDENTITY to sign.
set -euo pipefail
cd "$(dirname "$0")/../.."
flavour=${1:-lite}
python3.11 -m venv .venv
.venv/bin/pip install -q -r requirements-build.txt
STUDIO_BUNDLE=$flavour .venv/bin/pyinstaller build.spec --noconfirm
app="dist/Restoration Studio.app"
"$app/Contents/MacOS/RestorationStudio" --selftest
if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --deep --force --options runtime --sign "$CODESIGN_IDENTITY" "$app"
fi
hdiutil create -volname "Restoration Studio" -srcfolder "$app" -ov -format UDZO "dist/RestorationStudio-$flavour.dmg"
echo "dist/RestorationStudio-$flavour.dmg"
