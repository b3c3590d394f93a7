#!/usr/bin/env bash
# Sets up everything Restoration Studio needs on a Debian/Ubuntu machine: Debian packages (when run as root
# or with sudo), a virtual environment in .venv with the pinned Python packages. Safe to run again: each
# step is skipped when already done.
#   scripts/setup.sh          app + tests + training dependencies (requirements-dev.txt)
#   scripts/setup.sh --app    only what the app needs (requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=requirements-dev.txt
[ "${1:-}" = "--app" ] && requirements=requirements.txt
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3

# 1. Debian packages (a real Qt window, Xvfb for screenshots and window tests, fonts for document synthesis).
if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
    mapfile -t wanted < <(grep -vE '^\s*(#|$)' scripts/apt-packages.txt)
    missing=()
    for package in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        sudo=""
        [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
        if [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; then
            echo "setup: installing Debian packages: ${missing[*]}"
            $sudo apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        else
            echo "setup: please install these Debian packages: ${missing[*]}" >&2
        fi
    fi
fi

# 2. Virtual environment with pinned packages (re-installed only when a requirements file changes).
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp_of() { echo ".venv/.installed-$(basename "$1" .txt)"; }
digest_of() { cat requirements.txt "$1" | sha256sum | cut -d' ' -f1; }
current() { [ -f "$(stamp_of "$1")" ] && [ "$(cat "$(stamp_of "$1")")" = "$(digest_of "$1")" ]; }
stamp=$(stamp_of "$requirements")
digest=$(digest_of "$requirements")
# The development set includes the app's, so an up-to-date development install also serves --app.
if ! current "$requirements" && ! current requirements-dev.txt; then
    echo "setup: installing Python packages from $requirements (first time: a few minutes)"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r "$requirements"
    echo "$digest" > "$stamp"
fi

# 3. The project itself, editable (pip install -e .): engine, gui, bench and main import from this checkout in every
#    script, bench and test, with no sys.path edits; it builds the C extension engine/native (the render models'
#    fused kernel stage; optional: without a C compiler they run their whole ONNX graph, 2-3x slower). Re-done
#    when pyproject.toml or engine/native changes, the checkout moved, or the built extension is gone (a clean of
#    ignored files) while a C compiler is at hand.
project_digest=$( (cat pyproject.toml engine/native/*.[ch]; pwd) | sha256sum | cut -d' ' -f1)
extension_missing() {
    command -v cc >/dev/null 2>&1 && ! compgen -G "engine/native/_guided_kernels*" >/dev/null
}
if [ ! -f .venv/.installed-project ] || [ "$(cat .venv/.installed-project)" != "$project_digest" ] || extension_missing \
        || ! .venv/bin/python -I -c "import engine, pathlib, sys; sys.exit(pathlib.Path(engine.__file__).parent.parent != pathlib.Path(sys.argv[1]))" "$PWD" 2>/dev/null; then
    echo "setup: installing the project into .venv (pip install -e .)"
    .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
    echo "$project_digest" > .venv/.installed-project
fi

