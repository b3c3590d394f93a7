#!/usr/bin/env bash
# Sets everything up, then starts Restoration Studio on the bundled sample render (or on the given images).
# On a machine without a display it runs the window on a virtual screen (Xvfb) and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --app
# No image among the arguments (none at all, or only options such as --screenshot OUT.png): open the sample.
images=0
skip=0
for arg in "$@"; do
    if [ $skip -eq 1 ]; then skip=0; continue; fi
    case "$arg" in
        --screenshot) skip=1 ;;
        -*) ;;
        *) images=$((images + 1)) ;;
    esac
done
[ $images -gt 0 ] || set -- "$@" resources/samples/sample_render.exr
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && command -v xvfb-run >/dev/null 2>&1; then
    echo "No display found: running the window on a virtual screen (xvfb-run). Use --screenshot OUT.png to see it."
    exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python main.py "$@"
fi
exec .venv/bin/python main.py "$@"
