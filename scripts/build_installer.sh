#!/usr/bin/env bash
# Builds the packaged app from a clean checkout, in one command:
#   scripts/build_installer.sh [lite|full]        (default: lite)
#
#   lite: inference only (ONNX Runtime on the CPU, classical engines, Intel OIDN); no torch, so no ZSSR/training
#   full: lite + PyTorch for ZSSR, training and fine-tuning, + ONNX Runtime's CUDA provider
#
# Steps: Python environment (scripts/setup.sh --app + requirements-build.txt) -> PyInstaller one-folder bundle
# (build.spec) -> the bundle's own --selftest -> on Debian/Ubuntu, a .deb (scripts/make_deb.sh).
# Output: dist/RestorationStudio-<flavour>/ (the bundle: run dist/RestorationStudio-<flavour>/RestorationStudio)
#         dist/restoration-studio[-lite]_<version>_<arch>.deb   (install: sudo apt install ./dist/<that file>)
# Windows and macOS: see packaging/windows and packaging/macos (they cannot be built on Linux).
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-lite}
case "$flavour" in lite|full) ;; *) echo "usage: $0 [lite|full]" >&2; exit 2 ;; esac

scripts/setup.sh --app
.venv/bin/python -m pip install -q -r requirements-build.txt
started=$(date +%s)
STUDIO_BUNDLE=$flavour .venv/bin/pyinstaller build.spec --noconfirm --log-level WARN \
    --workpath "build/pyinstaller-$flavour" --distpath "build/dist-$flavour"
rm -rf "dist/RestorationStudio-$flavour"
mkdir -p dist
mv "build/dist-$flavour/RestorationStudio" "dist/RestorationStudio-$flavour"
echo "bundle: dist/RestorationStudio-$flavour ($(du -sh "dist/RestorationStudio-$flavour" | cut -f1), built in $(( $(date +%s) - started )) s)"

# The bundle checks itself before it is packed: sample -> default model -> file -> verify, and its window.
QT_QPA_PLATFORM=offscreen "dist/RestorationStudio-$flavour/RestorationStudio" --selftest

if command -v dpkg-deb >/dev/null 2>&1; then
    deb=$(scripts/make_deb.sh "dist/RestorationStudio-$flavour" dist "$flavour")
    echo "package: $deb ($(du -h "$deb" | cut -f1))"
else
    echo "no dpkg-deb here: skipped the .deb (the bundle folder above is the app)"
fi
