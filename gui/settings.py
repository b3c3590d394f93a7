"""Settings kept between runs (QSettings): theme, last folder, window geometry, device, tile size, quality (passes),
recent files."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from engine.api import PASS_COUNTS

ORGANISATION = "RestorationStudio"
APPLICATION = "Restoration Studio"
MAX_RECENT = 10
THEMES = ("dark", "light")
DEVICES = ("auto", "cpu", "cuda")


class AppSettings:
    """Typed access to the stored settings; every getter has a sensible default."""

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store or QSettings(ORGANISATION, APPLICATION)

    def _get(self, key: str, default, kind=str):
        value = self.store.value(key, default)
        try:
            if kind is bool and isinstance(value, str):
                return value.lower() in ("1", "true", "yes")
            return kind(value) if value is not None else default
        except (TypeError, ValueError):
            return default

    @property
    def theme(self) -> str:
        value = self._get("ui/theme", "dark")
        return value if value in THEMES else "dark"

    @theme.setter
    def theme(self, value: str) -> None:
        self.store.setValue("ui/theme", value if value in THEMES else "dark")

    @property
    def last_folder(self) -> str:
        folder = self._get("files/last_folder", "")
        return folder if folder and Path(folder).is_dir() else str(Path.home())

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self.store.setValue("files/last_folder", str(value))

    @property
    def device(self) -> str:
        value = self._get("compute/device", "auto")
        return value if value in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self.store.setValue("compute/device", value if value in DEVICES else "auto")

    @property
    def tile_size(self) -> int:
        return max(0, self._get("compute/tile_size", 0, int))

    @tile_size.setter
    def tile_size(self, value: int) -> None:
        self.store.setValue("compute/tile_size", int(max(0, value)))

    @property
    def ensemble(self) -> int:
        """Passes per tile (1, or a 4 / 8-pass self-ensemble: engine/ensemble.py)."""
        value = self._get("compute/ensemble", 1, int)
        return value if value in PASS_COUNTS else 1

    @ensemble.setter
    def ensemble(self, value: int) -> None:
        self.store.setValue("compute/ensemble", int(value) if value in PASS_COUNTS else 1)

    @property
    def geometry(self) -> QByteArray | None:
        value = self.store.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self.store.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        value = self.store.value("window/state")
        return value if isinstance(value, QByteArray) else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self.store.setValue("window/state", value)

    @property
    def tonemap(self) -> str:
        return self._get("view/tonemap", "aces")

    @tonemap.setter
    def tonemap(self, value: str) -> None:
        self.store.setValue("view/tonemap", value)

    def recent_files(self) -> list[str]:
        value = self.store.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])][:MAX_RECENT]

    def add_recent_file(self, path: str) -> list[str]:
        path = str(Path(path).resolve())
        files = [path] + [p for p in self.recent_files() if p != path]
        self.store.setValue("files/recent", files[:MAX_RECENT])
        return files[:MAX_RECENT]

    def clear_recent_files(self) -> None:
        self.store.setValue("files/recent", [])

    def sync(self) -> None:
        self.store.sync()
