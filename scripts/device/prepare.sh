#!/usr/bin/env bash
# Packages for the device round (scripts/device/render_round.py), fetched and packed here: the device machine
# has Python 3.12 with PyTorch, NumPy and OpenCV but no Mitsuba, OpenEXR or platformdirs, and cannot reach PyPI.
# Writes .device/ (git-ignored): mitsuba.tar.xz (RGB variants and the plugins we use, ~17 MB) and two wheels.
# The working tree travels with it and may be 64 MiB in all; this prints what would travel.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
# Versions: those of requirements-dev.txt / requirements.txt (the device's Python is 3.12).
pin() { grep -i "^$1==" requirements.txt requirements-dev.txt | head -1 | cut -d: -f2; }
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$wheels" "$(pin mitsuba)" drjit=="$("$PY" -m pip show drjit 2>/dev/null \
    | awk '/^Version/ {print $2}')" "$(pin OpenEXR)" "$(pin platformdirs)"
mkdir -p .device
rm -f .device/*.whl
"$PY" scripts/device/pack_mitsuba.py --wheels "$wheels" --out .device/mitsuba.tar.xz
cp "$wheels"/[Oo]pen[Ee][Xx][Rr]-*.whl "$wheels"/platformdirs-*.whl .device/
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
pack=$(du -cb .device/* | tail -1 | cut -f1)
echo "travels: tracked files $((tree / 1048576)) MiB + .device $((pack / 1048576)) MiB (limit 64 MiB)"
