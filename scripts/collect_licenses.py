"""Collect the licence notices of every library the packaged app bundles into resources/licenses/.

    .venv/bin/python scripts/collect_licenses.py     # rewrites resources/licenses/ (committed; rerun after pins change)

Walks the runtime requirements (requirements.txt) and their dependencies as installed in this environment,
copies each distribution's own licence files (verbatim, from its wheel metadata) into ``<name>.txt``, adds
the native libraries that wheels carry without a licence file of their own (Qt, Intel OIDN, oneTBB, Python),
and writes ``index.json`` (read by the About dialog) and ``THIRD_PARTY.md`` (shipped as the .deb's copyright).
Distributions needed only by the full bundle (torch and what only it pulls in) are marked ``full``.
"""

from __future__ import annotations

import json
import re
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "resources" / "licenses"
COMMON = Path("/usr/share/common-licenses")
#: Never bundled: BM3D's licence forbids redistribution (see build.spec).
NOT_BUNDLED = {"bm3d", "bm4d"}
#: Only in the full bundle (training, ZSSR, ONNX export); scipy is used by ZSSR's kernel code.
FULL_ONLY_ROOTS = {"torch", "onnxscript", "scipy"}
#: Build and test tools that metadata lists but nothing bundles.
IGNORED = {"pip", "setuptools", "wheel"}
#: Per-library cap: torch alone lists ~100 vendored licence files (0.9 MB); past this the rest are named, not copied.
MAX_CHARS = 400_000

#: Wheels whose metadata holds no licence file: texts from /usr/share/common-licenses and files inside the package.
FALLBACK_TEXTS = {"pyside6-essentials": ["LGPL-3", "GPL-3"], "shiboken6": ["LGPL-3", "GPL-3"],
                  "flatbuffers": ["Apache-2.0"]}
PACKAGE_FILES = {"onnxruntime-gpu": ["onnxruntime/LICENSE", "onnxruntime/ThirdPartyNotices.txt"],
                 "onnxruntime": ["onnxruntime/LICENSE", "onnxruntime/ThirdPartyNotices.txt"]}

#: Native code inside wheels that has no licence file in the wheel's metadata: (name, version source, licence,
#: copyright, homepage, texts from /usr/share/common-licenses).
NATIVE = [
    ("Qt", "PySide6-Essentials", "LGPL-3.0-only", "Copyright (C) The Qt Company Ltd. and other contributors",
     "https://www.qt.io", ["LGPL-3", "GPL-3"],
     "Qt's libraries are bundled as separate shared libraries (PySide6/Qt/lib), so you may replace them with "
     "your own build of the same Qt version. Qt's source code: https://download.qt.io/official_releases/qt/"),
    ("Intel Open Image Denoise", "pyoidn", "Apache-2.0", "Copyright Intel Corporation",
     "https://www.openimagedenoise.org", ["Apache-2.0"], "CPU device libraries, shipped inside pyoidn."),
    ("oneTBB (Threading Building Blocks)", None, "Apache-2.0", "Copyright Intel Corporation",
     "https://github.com/uxlfoundation/oneTBB", ["Apache-2.0"], "Used by Open Image Denoise."),
]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def runtime_roots() -> list[str]:
    roots = []
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            roots.append(canonical(requirement.name))
    return roots + ["scipy"]


def closure(roots: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [r for r in roots if r not in NOT_BUNDLED]
    while todo:
        name = todo.pop()
        if name in seen or name in IGNORED:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            todo.append(canonical(requirement.name))
    return seen


def licence_files(dist: metadata.Distribution) -> list[tuple[str, str]]:
    """(relative name, text) of the distribution's licence files, licence first."""
    found = []
    for file in dist.files or []:
        parts = Path(str(file)).parts
        if not parts or not parts[0].endswith(".dist-info"):
            continue
        name = "/".join(parts[1:])
        if re.search(r"(^|/)(licen[cs]e|copying|notice|authors)", name, re.IGNORECASE) or parts[1:2] == ("licenses",):
            try:
                found.append((name, Path(file.locate()).read_text(encoding="utf-8", errors="replace")))
            except OSError:
                continue
    found.sort(key=lambda item: (item[0].count("/"), "notice" in item[0].lower(), item[0]))
    return found


def licence_of(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression
    short = (meta.get("License") or "").strip()
    if short and len(short) < 60 and "\n" not in short:
        return short
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return "; ".join(classifiers) or "see licence text"


def homepage(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    if meta.get("Home-page"):
        return meta["Home-page"]
    for url in meta.get_all("Project-URL") or []:
        label, _, link = url.partition(",")
        if label.strip().lower() in ("homepage", "home", "source", "repository", "source code"):
            return link.strip()
    return ""


def write_text(name: str, chunks: list[tuple[str, str]], header: str) -> str:
    filename = f"{slug(name)}.txt"
    parts, total, skipped = [header], len(header), []
    for title, text in chunks:
        if total + len(text) > MAX_CHARS and total > len(header):
            skipped.append(title)
            continue
        parts.append(f"\n{'=' * 78}\n{title}\n{'=' * 78}\n\n{text.strip()}\n")
        total += len(text)
    if skipped:
        parts.append(f"\n{'=' * 78}\nFurther notices of vendored code, in the package's metadata "
                     f"(<name>.dist-info/) of its wheel: {', '.join(skipped)}\n")
    (OUT / filename).write_text("".join(parts), encoding="utf-8")
    return filename


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.txt"):
        old.unlink()
    roots = runtime_roots()
    everything = closure(roots)
    lite = closure([r for r in roots if r not in FULL_ONLY_ROOTS])
    entries = []
    for name in sorted(everything):
        dist = metadata.distribution(name)
        files = licence_files(dist)
        if not files:
            site = Path(str(dist.locate_file("")))
            files = [(f, (site / f).read_text(encoding="utf-8", errors="replace"))
                     for f in PACKAGE_FILES.get(name, []) if (site / f).is_file()]
            files += [(t, (COMMON / t).read_text(encoding="utf-8")) for t in FALLBACK_TEXTS.get(name, [])]
        display, version = dist.metadata["Name"], dist.version
        header = f"{display} {version}\nLicence: {licence_of(dist)}\nHomepage: {homepage(dist)}\n"
        if not files:
            print(f"warning: {display} has no licence file in its metadata", file=sys.stderr)
        entries.append({"name": display, "version": version, "licence": licence_of(dist),
                        "homepage": homepage(dist), "bundles": "lite+full" if name in lite else "full",
                        "file": write_text(display, files, header)})
    for name, version_of, licence, holder, url, texts, note in NATIVE:
        version = metadata.version(version_of) if version_of else ""
        if name == "Intel Open Image Denoise":
            version = ".".join(version.split(".")[:3])
        elif name.startswith("oneTBB"):
            import pyoidn

            tbb = sorted((Path(pyoidn.__file__).parent / "oidn" / "lib").glob("libtbb.so.*.*"))
            version = f"libtbb {tbb[0].name.split('.so.')[1]}" if tbb else ""
        chunks = [(text, (COMMON / text).read_text(encoding="utf-8")) for text in texts]
        header = f"{name} {version}\nLicence: {licence}\n{holder}\nHomepage: {url}\n{note}\n"
        entries.append({"name": name, "version": version, "licence": licence, "homepage": url,
                        "bundles": "lite+full", "file": write_text(name, chunks, header)})
    python_licence = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    version = ".".join(map(str, sys.version_info[:3]))
    entries.append({"name": "Python", "version": version, "licence": "PSF-2.0", "homepage": "https://www.python.org",
                    "bundles": "lite+full",
                    "file": write_text("Python", [("LICENSE.txt", python_licence.read_text(encoding="utf-8"))],
                                       f"Python {version}\nLicence: PSF-2.0\nHomepage: https://www.python.org\n")})
    entries.sort(key=lambda e: e["name"].lower())
    (OUT / "index.json").write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    rows = "\n".join(f"| {e['name']} | {e['version']} | {e['licence']} | {e['bundles']} | [{e['file']}]({e['file']}) |"
                     for e in entries)
    (OUT / "THIRD_PARTY.md").write_text(
        "# Third-party software in Restoration Studio's packaged app\n\n"
        "Restoration Studio's own code and models are the project's. The packaged app (PyInstaller bundle, .deb, "
        "Windows and macOS builds) also contains the libraries below, each under its own licence; the full "
        "text of each is in the file named in the last column (in the installed app: "
        "`_internal/resources/licenses/`, and Help > About > Third-party licences).\n\n"
        "| Library | Version | Licence | Bundle | Notice |\n|---|---|---|---|---|\n" + rows + "\n\n"
        "Qt and PySide6 are used under the LGPL-3.0: they are separate shared libraries in the bundle and can "
        "be replaced. BM3D is not bundled (its licence forbids redistribution); a source install offers it.\n"
        "The Linux bundle also carries system libraries copied from the build machine (Debian 12), such as "
        "libstdc++ (GPL-3.0 with the GCC Runtime Library Exception), GLib (LGPL-2.1+), libX11 and libxcb (MIT), "
        "OpenSSL (Apache-2.0), libgcrypt (LGPL-2.1+) and zlib (Zlib); their notices are in the Debian "
        "packages' /usr/share/doc/<package>/copyright files.\n",
        encoding="utf-8",
    )
    print(f"wrote {len(entries)} notices to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
