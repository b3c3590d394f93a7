#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite (GUI tests offscreen; the real-window test under Xvfb).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"
