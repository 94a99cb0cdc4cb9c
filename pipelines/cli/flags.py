"""The `ktlab` command line's flags, and the config key each one overrides."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from typing import Any, NoReturn

FLAG_KEYS = {
    "data": ("data", "source"),
    "lookback": ("data", "lookback"),
    "test_size": ("data", "test_size"),
    "validation_size": ("data", "validation_size"),
    "target": ("data", "target"),
    "calendar": ("data", "calendar"),
    "log_returns": ("data", "log_returns"),
    "fill": ("data", "fill"),
    "date_column": ("data", "date_column"),
    "target_column": ("data", "target_column"),
    "task": ("data", "task"),
    "batch_size": ("data", "batch_size"),
    "train_window": ("data", "train_window"),
    "validation_window": ("data", "validation_window"),
    "step": ("data", "step"),
    "model": ("model", "name"),
    "space": ("model", "space"),
    "search_space": ("model", "search_space"),
    "tuner": ("tuner", "name"),
    "max_epochs": ("tuner", "max_epochs"),
    "factor": ("tuner", "factor"),
    "hyperband_iterations": ("tuner", "hyperband_iterations"),
    "max_trials": ("tuner", "max_trials"),
    "num_initial_points": ("tuner", "num_initial_points"),
    "executions_per_trial": ("tuner", "executions_per_trial"),
    "objective": ("tuner", "objective"),
    "direction": ("tuner", "direction"),
    "objectives": ("tuner", "objectives"),
    "pareto_tolerance": ("tuner", "pareto_tolerance"),
    "patience": ("tuner", "patience"),
    "validation": ("tuner", "validation"),
    "max_consecutive_failed_trials": ("tuner", "max_consecutive_failed_trials"),
    "pruner": ("tuner", "pruner"),
    "pruner_grace": ("tuner", "pruner_grace"),
    "pruner_startup_trials": ("tuner", "pruner_startup_trials"),
    "seed": ("run", "seed"),
    "output_dir": ("run", "output_dir"),
    "run_name": ("run", "run_name"),
    "overwrite": ("run", "overwrite"),
    "keep_checkpoints": ("run", "keep_checkpoints"),
    "refit": ("run", "refit"),
    "deterministic": ("run", "deterministic"),
    "tensorboard": ("run", "tensorboard"),
    "workers": ("run", "workers"),
    "recycle_after": ("run", "recycle_after"),
    "final_top": ("run", "final_top"),
    "final_seeds": ("run", "final_seeds"),
}


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _size(text: str) -> int | float:
    """A split size: whole days (800) or a fraction (0.2)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a whole number of days nor a "
                                         f"fraction") from None


def _name_list(text: str) -> list[str]:
    """Comma-separated names, such as 'val_loss,params'."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("must name objectives, such as val_loss,params")
    return names


def _json_table(text: str) -> dict[str, Any]:
    """A JSON object given on the command line, such as '{"units": [16, 32]}'."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object such as '{\"units\": [16, 32]}'")
    return value


def _add_data_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--config", help="TOML or YAML config file; flags override it")
    group.add_argument("--data", metavar="SOURCE",
                       help="bundled ticker (AAPL, MSFT, IBM, GOOG), bundled table (diabetes, "
                            "breast_cancer) or a CSV path")
    group.add_argument("--model", metavar="NAME|FILE.py:CLASS",
                       help="lstm (time series, default), dense (tables), or your own "
                            "keras_tuner.HyperModel: my_models.py:MyModel or "
                            "package.module:MyModel")
    group.add_argument("--space", help="search space preset: quick (default, CPU-sized) or "
                                       "article (the reference article's full LSTM space)")
    group.add_argument("--search-space", type=_json_table, metavar="JSON",
                       help='ranges on top of the preset, e.g. \'{"units": [16, 32], '
                            '"num_layers": [1, 2]}\'')
    group.add_argument("--lookback", type=int, help="days in each input window (default 30)")
    group.add_argument("--test-size", type=_size,
                       help="held-out test: days (stocks, default 800) or fraction (tables)")
    group.add_argument("--validation-size", type=_size,
                       help="validation: days (stocks, default 500) or fraction (tables)")
    group.add_argument("--target", help="return (next day's return, default), close (next "
                                        "day's close, as the reference article) or volatility "
                                        "(next day's |log return|)")
    group.add_argument("--calendar", action=argparse.BooleanOptionalAction, default=None,
                       help="add one-hot year/month/day features")
    group.add_argument("--log-returns", action=argparse.BooleanOptionalAction, default=None,
                       help="the day's log return as a feature (default: on)")
    group.add_argument("--fill", help="missing values: error (default), ffill or drop")
    group.add_argument("--date-column", help="date column of a CSV in another layout")
    group.add_argument("--target-column", help="target column of a custom CSV or a table")
    group.add_argument("--task", help="tables: auto (default), regression or classification")
    group.add_argument("--batch-size", type=int, help="dataset batch size (default 32)")
    group.add_argument("--train-window", type=int, help="walk-forward training days")
    group.add_argument("--validation-window", type=int, help="walk-forward validation days")
    group.add_argument("--step", type=int, help="walk-forward step in days")


def _add_tune_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("search")
    group.add_argument("--tuner", help="hyperband (default), bayesian, random, grid, ...")
    group.add_argument("--max-epochs", type=int,
                       help="Hyperband's largest budget; epochs per trial for the others")
    group.add_argument("--factor", type=int, help="Hyperband's reduction factor (default 3)")
    group.add_argument("--hyperband-iterations", type=int, help="Hyperband iterations")
    group.add_argument("--max-trials", type=int, help="trials for bayesian/random/grid")
    group.add_argument("--num-initial-points", type=int, help="bayesian: random trials first")
    group.add_argument("--executions-per-trial", type=int, help="models trained per trial")
    group.add_argument("--objective", help="metric to minimise or maximise (val_loss)")
    group.add_argument("--direction", choices=("min", "max"),
                       help="whether the objective is minimised or maximised (default: "
                            "inferred from its name: loss, mae: min; accuracy, auc: max)")
    group.add_argument("--objectives", type=_name_list, metavar="NAMES",
                       help="several objectives, the first replacing --objective: e.g. "
                            "val_loss,params or val_loss,latency_ms (genetic selects by "
                            "NSGA-II; every tuner writes pareto.csv)")
    group.add_argument("--pareto-tolerance", type=float, metavar="FRACTION",
                       help="with --objectives: save the trial best in the last objective "
                            "within this fraction of the best first one (default 0.01)")
    group.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    group.add_argument("--validation", help="holdout (default) or walk_forward")
    group.add_argument("--max-consecutive-failed-trials", type=int,
                       help="failed trials in a row that end the search (default 3)")
    group.add_argument("--pruner", help="random/bayesian/genetic/grid: median stops a trial "
                                        "whose objective at an epoch is worse than the "
                                        "median of the earlier trials' (default none)")
    group.add_argument("--pruner-grace", type=int,
                       help="epochs every trial trains before it can be pruned (default 2)")
    group.add_argument("--pruner-startup-trials", type=int,
                       help="earlier trials that must reach an epoch before a trial can be "
                            "pruned there (default 3)")
    group.add_argument("--seed", type=int, help="seed of the search and the models")
    group.add_argument("--output-dir", help="parent folder of run directories (runs)")
    group.add_argument("--run-name", help="run directory name (default: model-tuner-data-seed)")
    group.add_argument("--overwrite", action="store_true", default=None,
                       help="replace an existing run directory of the same name")
    group.add_argument("--keep-checkpoints", action="store_true", default=None,
                       help="keep every trial's checkpoint (default: only those a trial or "
                            "the best model still needs)")
    group.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                       help="retrain the best configuration on training + validation rows "
                            "before the held-out test (default: on)")
    group.add_argument("--deterministic", action="store_true", default=None,
                       help="deterministic TensorFlow ops: the same seed gives the same "
                            "scores (slower)")
    group.add_argument("--tensorboard", action="store_true", default=None,
                       help="write TensorBoard logs with HParams under RUN_DIR/tensorboard/")
    group.add_argument("--final-top", type=int, metavar="K",
                       help="after the search, retrain the K best configurations with new "
                            "seeds and save the one with the best mean validation score "
                            "(final.csv; default 0: off)")
    group.add_argument("--final-seeds", type=int, metavar="S",
                       help="with --final-top: seeds per configuration (default 3; K*S extra "
                            "trainings)")
    output = parser.add_argument_group("output")
    output.add_argument("--verbose", action="store_true",
                        help="also show Keras's progress bar for every epoch")
    output.add_argument("--quiet", action="store_true",
                        help="show only errors and the final summary")


def _add_recovery_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("resuming")
    group.add_argument("--resume", metavar="RUN_DIR",
                       help="continue the interrupted search in RUN_DIR with its saved "
                            "settings (rerunning the same command does too)")
    group = parser.add_argument_group("distributed tuning (keras-tuner's chief and workers)")
    group.add_argument("--workers", type=int, metavar="N",
                       help="run the search on N worker processes of this machine, each on "
                            "its share of the cores, with this one as the chief (default 1: "
                            "one process)")
    group.add_argument("--recycle-after", type=int, metavar="K",
                       help="restart each worker process after K trials, which frees the "
                            "memory TensorFlow keeps of every model; alone, runs the search "
                            "in one worker process beside the chief (default 0: never)")
    group.add_argument("--distributed", choices=("chief", "worker"),
                       help="chief: hand out trials and write the results; worker: train "
                            "trials (also set by KERASTUNER_TUNER_ID)")
    group.add_argument("--oracle-address", metavar="HOST:PORT",
                       help="where the chief listens (default 127.0.0.1:8470; also "
                            "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT)")
    group.add_argument("--tuner-id", metavar="ID",
                       help="this process's name: chief, or unique per worker (a restarted "
                            "worker takes its old name)")
    group.add_argument("--chief-timeout", type=float, metavar="SECONDS",
                       help="how long a worker waits for the chief to answer (default 60)")
    group.add_argument("--mirrored", action="store_true",
                       help="train each trial on all of this machine's GPUs "
                            "(tf.distribute.MirroredStrategy)")


def build_parser() -> argparse.ArgumentParser:
    """The `ktlab` argument parser with its subcommands."""
    parser = Parser(prog="ktlab", description="Tune Keras models with Keras Tuner.")
    parser.add_argument("--version", action="version", version=f"ktlab {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    data = commands.add_parser("data", help="summarise the prepared data")
    _add_data_flags(data)
    tune = commands.add_parser("tune", help="run a search and write a run directory")
    _add_data_flags(tune)
    _add_tune_flags(tune)
    _add_recovery_flags(tune)
    compare = commands.add_parser(
        "compare", help="compare tuners at equal epoch budgets over several seeds")
    _add_data_flags(compare)
    _add_tune_flags(compare)
    compare.add_argument("--tuners", default="hyperband,bayesian,random",
                         help="comma-separated tuners (default: hyperband,bayesian,random)")
    compare.add_argument("--seeds", default="3",
                         help="a count (3: seed, seed+1000, seed+2000) or a list such as 1,2,3")
    plot = commands.add_parser("plot", help="redraw the plots of a run or comparison folder")
    plot.add_argument("run_dir", metavar="RUN_DIR", help="a run or comparison directory")
    ranking = commands.add_parser(
        "importance", help="rank the hyperparameters by how much they mattered to the score")
    ranking.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    forecast = commands.add_parser("predict", help="forecast with a finished run's best model")
    forecast.add_argument("run_dir", metavar="RUN_DIR",
                          help="a run directory that ktlab tune finished")
    forecast.add_argument("--data", metavar="FILE",
                          help="a CSV in any layout that ktlab data reads, or a bundled ticker "
                               "or table (default: the run's own test rows)")
    forecast.add_argument("--output", metavar="PATH",
                          help="where to write the CSV (default: RUN_DIR/forecast.csv, or "
                               "RUN_DIR/forecast-<file stem>.csv with --data)")
    brackets = commands.add_parser("brackets", help="print Hyperband's schedule")
    brackets.add_argument("--max-epochs", type=int, default=81)
    brackets.add_argument("--factor", type=int, default=3)
    brackets.add_argument("--hyperband-iterations", type=int, default=1)
    return parser


def version() -> str:
    try:
        return importlib.metadata.version("ktlab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"
