"""Procedural Mitsuba scenes rendered at low and high sample counts, with AOVs: training data for render denoisers.

Training-only: it needs the ``mitsuba`` package (requirements-dev.txt), imported lazily by
:mod:`engine.render_data.mitsuba_backend`. Scene descriptions (:mod:`engine.render_data.scenes`) are plain
JSON-able dicts drawn from a seeded NumPy generator, so a seed always gives the same scene.
"""
