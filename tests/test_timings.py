"""Where a run's time goes: the summary line's timed steps, and a process that ends
without TensorFlow's teardown."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

import pytest

from pipelines.reports import importance, pareto, plots
from pipelines.run import final_retrain, summary
from pipelines.run.summary import Stopwatch, step_name, timing_line

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_a_stopwatch_adds_each_steps_seconds_in_the_order_they_ran():
    clock = Stopwatch()
    with clock.step("search"):
        time.sleep(0.02)
    with clock.step("plots"):
        time.sleep(0.01)
    with clock.step("search"):
        time.sleep(0.01)

    assert list(clock.seconds) == ["search", "plots"]
    assert clock.seconds["search"] == pytest.approx(0.03, abs=0.02)
    assert clock.seconds["plots"] == pytest.approx(0.01, abs=0.01)


def test_a_step_that_raises_is_timed_too():
    clock = Stopwatch()
    with pytest.raises(ValueError), clock.step("refit"):
        raise ValueError("stop")
    assert list(clock.seconds) == ["refit"]


def test_the_timing_line_lists_the_steps_after_the_search_and_leaves_out_the_instant_ones():
    seconds = {"search": 26.54, "pareto": 0.001, "refit": 0.48, "test scores": 1.14,
               "plots": 0.93, "importance": 1.38, "summary": 0.002}

    assert timing_line(seconds) == ("search 26.5 s; after it 3.9 s: refit 0.5 s, test "
                                    "scores 1.1 s, plots 0.9 s, importance 1.4 s")
    assert timing_line({"best model": 0.01}) == "after it 0.0 s"


def test_each_steps_name_is_its_modules():
    def my_report_step(result):
        return None

    my_report_step.__module__ = "__main__"  # a step defined in a notebook
    assert [step_name(step) for step in (pareto.pick_step, final_retrain.pick_step,
                                         plots.plots_step, importance.importance_step,
                                         summary.summary_step, my_report_step)] == [
        "pareto", "final retrain", "plots", "importance", "summary", "my_report"]


END_AFTER_TENSORFLOW = """
import atexit, pathlib, sys
from pipelines.run import quiet
quiet.import_tensorflow()
atexit.register(lambda: pathlib.Path(sys.argv[1]).write_text("atexit ran"))
print("printed before the end", end="")
quiet.end_process(3)
"""


def test_a_process_ended_after_tensorflow_keeps_its_code_its_output_and_its_atexit_calls(
        tmp_path):
    marker = tmp_path / "marker.txt"
    completed = subprocess.run([sys.executable, "-c", END_AFTER_TENSORFLOW, str(marker)],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert completed.returncode == 3
    assert completed.stdout == "printed before the end"
    assert completed.stderr == ""
    assert marker.read_text() == "atexit ran"


def test_the_backends_benchmark_reads_the_summary_line(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import backends  # benchmarks/backends.py

    line = "23 trials (0 failed), 63 epochs, " + timing_line(
        {"search": 26.54, "best model": 0.48, "test scores": 1.14, "plots": 0.93})
    timing = backends.TIMING.search(line)
    assert (timing["search"], timing["after"]) == ("26.5", "2.5")
