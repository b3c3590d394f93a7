"""The command line's progress bar (engine/commands/progress_bar.py): drawn in place on a terminal only."""

import io

from engine.commands.progress_bar import BAR_CELLS, clear_bar, draw_bar
from tests.conftest import FakeTerminal as Terminal


def test_the_bar_is_drawn_in_place_within_the_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = Terminal()
    draw_bar(0.5, "frame 1042 (42/100), 2 min 05 s left " + "x" * 200)
    assert out.getvalue() == ""  # drawn on sys.stderr, not here
    draw_bar(0.5, "frame 1042 (42/100), 2 min 05 s left " + "x" * 200, stream=out)
    line = out.getvalue()
    assert line.startswith("\r[" + "#" * (BAR_CELLS // 2) + "." * (BAR_CELLS // 2) + "]  50.0%  frame 1042")
    assert len(line) == 80  # "\r" and 79 columns: a line as wide as the terminal would wrap, and wrapped lines
    assert "\n" not in line  # cannot be redrawn in place


def test_the_time_left_is_said_as_engine_jobs_says_it(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    for text, eta_s, expected in (("frame 3", 125, "frame 3, 2 min 05 s left"), ("frame 3", None, "frame 3"),
                                  ("", 40, "40 s left")):
        out = Terminal()
        draw_bar(0.25, text, eta_s=eta_s, stream=out)
        assert out.getvalue().split("%", 1)[1].strip() == expected
    out = Terminal()
    draw_bar(1.0, "done", eta_s=0.0, stream=out)  # a full bar says no time left, whatever the clock gives
    assert out.getvalue().split("%", 1)[1].strip() == "done"


def test_fractions_out_of_range_are_clamped(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    out = Terminal()
    draw_bar(1.7, stream=out)
    assert out.getvalue().startswith("\r[" + "#" * BAR_CELLS + "] 100.0%")
    out = Terminal()
    draw_bar(-0.2, stream=out)
    assert out.getvalue().startswith("\r[" + "." * BAR_CELLS + "]   0.0%")


def test_clear_blanks_the_bar_once_and_returns_to_its_start(monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    out = Terminal()
    clear_bar(out)
    assert out.getvalue() == ""  # no bar there: nothing to clear
    draw_bar(0.5, "frame 3", stream=out)
    drawn = out.getvalue()
    clear_bar(out)
    clear_bar(out)  # once
    assert out.getvalue()[len(drawn):] == "\r" + " " * 49 + "\r"


def test_nothing_is_written_where_stderr_is_a_file_or_a_pipe():
    out = io.StringIO()
    draw_bar(0.3, "frame 3", stream=out)
    clear_bar(out)
    assert out.getvalue() == ""
