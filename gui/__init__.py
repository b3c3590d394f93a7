"""The desktop application (PySide6). Only this package imports Qt; it drives the engine through its jobs API."""
