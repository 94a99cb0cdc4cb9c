"""Where a run's time goes: the summary line's timed steps, and a process that ends
without TensorFlow's teardown."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from pipelines.reports import importance, pareto, plots
from pipelines.run import final_retrain, quiet, summary
from pipelines.run.summary import Stopwatch, step_name, timing_line

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_a_stopwatch_adds_each_steps_seconds_in_the_order_they_ran(monkeypatch):
    ticks = iter([10.0, 12.5, 12.5, 13.0, 20.0, 20.25])
    monkeypatch.setattr(summary.time, "perf_counter", lambda: next(ticks))
    clock = Stopwatch()
    with clock.step("search"):
        pass
    with clock.step("plots"):
        pass
    with clock.step("search"):
        pass

    assert clock.seconds == {"search": 2.75, "plots": 0.5}
    assert list(clock.seconds) == ["search", "plots"]


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

    my_report_step.__module__ = "my_project.reports"  # a step of a user's own module
    assert [step_name(step) for step in (pareto.pick_step, final_retrain.pick_step,
                                         plots.plots_step, importance.importance_step,
                                         summary.summary_step, my_report_step)] == [
        "pareto", "final retrain", "plots", "importance", "summary", "my_report"]


END_AFTER_TENSORFLOW = """
import atexit, pathlib, sys
from pipelines.run import quiet
quiet.import_tensorflow()
atexit.register(lambda: pathlib.Path(sys.argv[1]).write_text("atexit ran"))


class FreedAtTeardown:
    def __del__(self, marker=pathlib.Path(sys.argv[2])):
        marker.write_text("freed")


kept = FreedAtTeardown()
print("printed before the end", end="")
quiet.end_process(3)
"""


@pytest.mark.parametrize("end", ["end_process", "sys.exit"])
def test_a_process_ended_after_tensorflow_keeps_its_code_its_output_and_its_atexit_calls(
        tmp_path, end):
    atexit_marker, freed_marker = tmp_path / "atexit.txt", tmp_path / "freed.txt"
    script = END_AFTER_TENSORFLOW.replace("quiet.end_process(3)", "sys.exit(3)") \
        if end == "sys.exit" else END_AFTER_TENSORFLOW
    # Buffered output, as in a terminal's pipe: what is not flushed before the end is lost.
    environment = {name: value for name, value in os.environ.items()
                   if name != "PYTHONUNBUFFERED"}
    completed = subprocess.run([sys.executable, "-c", script, str(atexit_marker),
                                str(freed_marker)], cwd=ROOT, capture_output=True, text=True,
                               timeout=120, env=environment)

    assert completed.returncode == 3
    assert completed.stdout == "printed before the end"
    assert completed.stderr == ""
    assert atexit_marker.read_text() == "atexit ran"
    # Python's teardown frees the module's objects; end_process skips it.
    assert freed_marker.exists() == (end == "sys.exit")


@pytest.mark.parametrize("environment, imported, expected", [
    ({"KERAS_BACKEND": "jax"}, False, {"JAX_COMPILATION_CACHE_DIR": "runs/.jax-cache",
                                        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.1"}),
    ({"KERAS_BACKEND": "jax", "JAX_COMPILATION_CACHE_DIR": "/mine"}, False,
     {"JAX_COMPILATION_CACHE_DIR": "/mine", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": None}),
    ({"KERAS_BACKEND": "tensorflow"}, False,
     {"JAX_COMPILATION_CACHE_DIR": None, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": None}),
    ({"KERAS_BACKEND": "jax"}, True,
     {"JAX_COMPILATION_CACHE_DIR": None, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": None}),
])
def test_the_jax_cache_is_set_only_for_a_jax_run_before_jax_is_imported(
        monkeypatch, tmp_path, environment, imported, expected):
    for name in (*quiet.JAX_CACHE_VARIABLES, "KERAS_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if imported:
        monkeypatch.setitem(sys.modules, "jax", object())
    else:
        monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.chdir(tmp_path)

    quiet.cache_jax_compilations("runs")

    cache = str(tmp_path / "runs" / ".jax-cache")
    assert {name: os.environ.get(name) for name in quiet.JAX_CACHE_VARIABLES} == {
        name: (cache if value == "runs/.jax-cache" else value)
        for name, value in expected.items()}
    assert not (tmp_path / "runs").exists()  # the folder is JAX's to make


def test_the_backends_benchmark_reads_the_summary_line(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import backends  # benchmarks/backends.py

    line = "23 trials (0 failed), 63 epochs, " + timing_line(
        {"search": 26.54, "best model": 0.48, "test scores": 1.14, "plots": 0.93})
    timing = backends.TIMING.search(line)
    assert (timing["search"], timing["after"]) == ("26.5", "2.5")
