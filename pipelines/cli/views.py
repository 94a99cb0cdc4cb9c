"""What `ktlab config`, `ktlab list` and `ktlab show` print: plain text, no TensorFlow.

`ktlab list` reads the registries, whose classes are named by `"module:Class"` strings
and stay unimported, and the bundled data files; `ktlab show` reads a run directory's
files (`pipelines.cli.run_view`).
"""

from __future__ import annotations

import pathlib

from hypermodels import registry as model_registry
from pipelines.cli import text
from pipelines.config import Config, reference, schema
from pipelines.config.loading import Origins
from tuners import registry as tuner_registry


def format_settings(config: Config, origins: Origins) -> str:
    """Every setting's resolved value and where it came from, one per line, by section."""
    values = config.to_dict()
    lines = []
    for section in schema.SECTIONS:
        lines.append(f"[{section}]")
        width = max(len(key) for key in values[section])
        for key, value in values[section].items():
            shown = "(unset)" if value is None else reference.toml_value(value)
            lines.append(f"{key:<{width}} = {shown:<24} # {origins[section, key]}")
        lines.append("")
    return "\n".join(lines).rstrip()


def format_catalogue() -> str:
    """The models, tuners, pruners and bundled datasets, one line each under a heading.

    Returns:
        Four blocks separated by a blank line, each a heading that names the flag which
        takes the names below it, then one indented line per entry.
    """
    defaults = Config()
    models = [[name, spec.data_kind, "presets " + ", ".join(spec.presets or ["none"]),
               f"data {spec.default_source}", _description(spec.description, spec.hypermodel)]
              for name, spec in model_registry.MODELS.items()]
    strategies = [[name, f"{spec.budget} budget", _description(spec.description, spec.oracle)]
                  for name, spec in tuner_registry.TUNERS.items()]
    pruners = [[name, description] for name, description in tuner_registry.PRUNERS.items()]
    blocks = [
        (f"models (--model NAME, default {defaults.model.name}; or FILE.py:CLASS for your own "
         f"keras_tuner.HyperModel)", models),
        (f"tuners (--tuner NAME, default {defaults.tuner.name})", strategies),
        (f"pruners (--pruner NAME, default {defaults.tuner.pruner})", pruners),
        ("bundled datasets (--data NAME, default the model's; or the path of a CSV file)",
         _datasets()),
    ]
    return "\n\n".join(f"{heading}:\n{text.align(rows)}" for heading, rows in blocks)


def format_run(run_dir: pathlib.Path, top: int = 10) -> str:
    """A run's header, its leaderboard of trials, its best configuration and its scores.

    Args:
        run_dir: A directory that `ktlab tune` wrote, finished or not.
        top: How many trials the leaderboard lists, at least 1.

    Raises:
        KtlabError: If `top` is below 1, or `run_dir` is no run directory or holds no
            trials; the message names the fix.
    """
    # Imported here, with pandas, so that `ktlab config` does not pay for them.
    from pipelines.cli import run_view

    return run_view.format_run(pathlib.Path(run_dir), top)


def _description(description: str, target: type | str) -> str:
    """The registry's line; else the first line of an imported class's docstring; else
    where the class will be imported from (importing it would import Keras)."""
    if description:
        return description
    if isinstance(target, type) and target.__doc__:
        return target.__doc__.strip().splitlines()[0]
    return str(getattr(target, "__name__", target))


def _datasets() -> list[list[str]]:
    """The bundled tickers with their days and dates, and the bundled tables with their
    rows, features and task, each read from the data itself (about a second)."""
    # pandas and scikit-learn are imported here, not at the top, so that `ktlab config`
    # does not pay for them.
    import pandas

    from pipelines.data import sources, tabular

    rows = []
    if sources.BUNDLED_STOCKS_FILE.is_file():
        prices = pandas.read_csv(sources.BUNDLED_STOCKS_FILE, parse_dates=["date"])
        for ticker in sources.BUNDLED_TICKERS:
            dates = prices.loc[prices["ticker"] == ticker, "date"]
            rows.append([ticker, "series", f"{len(dates)} days, {dates.min():%Y-%m-%d} to "
                                           f"{dates.max():%Y-%m-%d}",
                         f"daily prices (data/{sources.BUNDLED_STOCKS_FILE.name})"])
    else:
        rows += [[ticker, "series", "missing", f"{sources.BUNDLED_STOCKS_FILE} is not there; "
                                               f"run ktlab from a clone of the repository"]
                 for ticker in sources.BUNDLED_TICKERS]
    for name, bundled in sources.BUNDLED_SERIES.items():
        series = pandas.read_csv(sources.bundled_series_path(name),
                                 parse_dates=[bundled.date_column])
        dates = series[bundled.date_column]
        rows.append([name, "series", f"{len(series)} steps, {dates.min():%Y-%m-%d} to "
                                     f"{dates.max():%Y-%m-%d}",
                     f"{bundled.target_column}, any series (data/{bundled.file})"])
    for name in sources.BUNDLED_TABLES:
        features, target = sources.load_table(name)
        # The pipeline's own rule for `data.task = "auto"`, so that the line says what
        # `ktlab tune` would do with the table.
        task = tabular._infer_task(target)
        rows.append([name, "table", f"{len(features)} rows, {features.shape[1]} features",
                     f"{task} (scikit-learn's bundled copy, offline)"])
    return rows
