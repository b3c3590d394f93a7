from gui.loss_plot import LossPlot


def test_series_points_clear_and_log_scale(qtbot):
    plot = LossPlot(log_y=True)
    qtbot.addWidget(plot)
    # empty: a line saying what will appear, not axes with made-up ticks
    assert plot.placeholder.isVisibleTo(plot) and "loss appears here" in plot.placeholder.text()
    plot.add_point("train", 3, 0.0)  # skipped (log axis): still empty
    assert plot.placeholder.isVisibleTo(plot)
    plot.add_point("train", 1, 0.5)
    assert not plot.placeholder.isVisibleTo(plot)
    plot.add_point("train", 2, 0.25)
    plot.add_point("train", 3, 0.0)  # not representable on a log axis: skipped
    plot.add_point("val", 2, float("nan"))  # skipped
    plot.add_point("val", 2, 0.3)
    assert plot.series("train") == ([1.0, 2.0], [0.5, 0.25])
    assert plot.series_names() == ["train", "val"]
    plot.set_log_y(False)
    plot.add_point("train", 3, 0.0)
    assert plot.series("train")[1][-1] == 0.0
    plot.clear()
    assert plot.series_names() == [] and plot.placeholder.isVisibleTo(plot)
    plot.add_point("train", 1, 1.0)
    assert plot.series("train") == ([1.0], [1.0])
