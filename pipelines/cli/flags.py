"""The `ktlab` command line's flags. Every setting's flag is derived from its declaration in
`pipelines.config.schema`: its type, default, allowed values, help and group. Only the flags
that are not settings (`--config`, `--set`, `--resume`, the distributed roles) are written
here.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import types
import typing
from typing import Any, NoReturn

from pipelines.config import checks, schema

TUNE_EXAMPLES = """examples:
  ktlab tune                                   # Hyperband on the LSTM, bundled AAPL prices
  ktlab tune --model dense --data diabetes --tuner bayesian --max-trials 20
  ktlab tune --data my_series.csv --date-column day --target-column load --set tuner.patience=5
  ktlab tune --config runs/lstm-hyperband-AAPL-seed42/config.json --run-name again
  ktlab tune --dry-run                         # the plan, without training anything
"""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _size(text: str) -> int | float:
    """A split size: whole steps (800) or a fraction (0.2)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a whole number of steps nor a "
                                         f"fraction") from None


def _name_list(text: str) -> list[str]:
    """Comma-separated names, such as 'val_loss,params'."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("must name one or more, separated by commas")
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


def _value_type(hint: Any) -> Any:
    """The argparse type of a setting's annotation."""
    options = set(typing.get_args(hint)) if typing.get_origin(hint) in (
        typing.Union, types.UnionType) else {hint}
    options.discard(type(None))
    if options == {int, float}:
        return _size
    (only,) = options
    if typing.get_origin(only) is list:
        return _name_list
    if typing.get_origin(only) is dict:
        return _json_table
    return {int: int, float: float}.get(only, str)


def destination(flag: str) -> str:
    """The attribute of the parsed arguments that a flag sets: `--max-epochs` -> max_epochs."""
    return flag.removeprefix("--").replace("-", "_")


# Each setting's flag, as `{attribute of the parsed arguments: (section, key)}`.
FLAG_KEYS = {destination(schema.flag_of(section, key)): (section, key)
             for section, key, _ in schema.fields()}


def _help(section: str, key: str, field: Any) -> str:
    allowed = checks.choices(field)
    default = field.get_default(call_default_factory=True)
    parts = [field.description.rstrip(".")]
    if allowed:
        parts.append("one of " + ", ".join(repr(value) if value == "" else str(value)
                                           for value in allowed))
    if default not in ("", None, [], {}):
        parts.append(f"default {str(default).lower() if isinstance(default, bool) else default}")
    parts.append(f"key {section}.{key}")
    # argparse expands % in help.
    return "; ".join(parts).replace("%", "%%")


def add_setting_flags(parser: argparse.ArgumentParser, groups: dict[str, Any],
                      sections: tuple[str, ...] = tuple(schema.SECTIONS),
                      skip_groups: tuple[str, ...] = ()) -> None:
    """Adds one flag per setting of `sections`, each in its `--help` group; a boolean gets
    a `--no-` form, and an older flag name is accepted without being shown."""
    for section, key, field in schema.fields():
        info = schema.extra(field)
        if section not in sections or info["group"] in skip_groups:
            continue
        flag = schema.flag_of(section, key)
        group = groups[info["group"]]
        common = {"dest": destination(flag), "default": None}
        if field.annotation is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction,
                               help=_help(section, key, field), **common)
            for alias in info["aliases"]:
                group.add_argument(alias, action=argparse.BooleanOptionalAction,
                                   help=argparse.SUPPRESS, **common)
            continue
        kind = _value_type(field.annotation)
        group.add_argument(flag, type=kind, metavar=info["metavar"],
                           help=_help(section, key, field), **common)
        for alias in info["aliases"]:
            group.add_argument(alias, type=kind, help=argparse.SUPPRESS, **common)


def _groups(parser: argparse.ArgumentParser) -> dict[str, Any]:
    return {name: parser.add_argument_group(title) for name, title in schema.GROUPS.items()}


def _add_settings_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="a TOML, YAML or JSON config file (a run's config.json too); "
                             "flags override it")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="set any key, after the file and the flags, e.g. --set "
                             "tuner.options='{population_size = 6}'; repeatable")


def _add_output_flags(groups: dict[str, Any], *, dry_run: bool) -> None:
    output = groups["output"]
    output.add_argument("--verbose", action="store_true",
                        help="also show Keras's progress bar for every epoch")
    output.add_argument("--quiet", action="store_true",
                        help="show only errors and the final summary")
    if dry_run:
        output.add_argument("--dry-run", action="store_true",
                            help="print the plan (data, splits, search space, trials, epochs, "
                                 "run directory) and stop, without importing TensorFlow")


def _add_recovery_flags(groups: dict[str, Any]) -> None:
    groups["output"].add_argument(
        "--resume", metavar="RUN_DIR",
        help="continue the interrupted search in RUN_DIR with its saved settings (rerunning "
             "the same command does too)")
    group = groups["parallel"]
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


def _run_dir_argument(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help=help)


def build_parser() -> argparse.ArgumentParser:
    """The `ktlab` argument parser with its subcommands."""
    parser = Parser(prog="ktlab", description="Tune Keras models with Keras Tuner.")
    parser.add_argument("--version", action="version", version=f"ktlab {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    formatter = {"formatter_class": argparse.RawDescriptionHelpFormatter}

    tune = commands.add_parser("tune", help="run a search and write a run directory",
                               epilog=TUNE_EXAMPLES, **formatter)
    _add_settings_source(tune)
    groups = _groups(tune)
    add_setting_flags(tune, groups)
    _add_output_flags(groups, dry_run=True)
    _add_recovery_flags(groups)

    data = commands.add_parser("data", help="summarise the prepared data")
    _add_settings_source(data)
    add_setting_flags(data, _groups(data), sections=("data", "model"))

    settings = commands.add_parser(
        "config", help="print the resolved settings and where each value came from")
    _add_settings_source(settings)
    add_setting_flags(settings, _groups(settings))

    compare = commands.add_parser(
        "compare", help="compare tuners at equal epoch budgets over several seeds")
    _add_settings_source(compare)
    groups = _groups(compare)
    add_setting_flags(compare, groups, skip_groups=("parallel",))
    _add_output_flags(groups, dry_run=False)
    groups["strategy"].add_argument(
        "--tuners", default="hyperband,bayesian,random",
        help="comma-separated tuners (default: hyperband,bayesian,random)")
    groups["strategy"].add_argument(
        "--seeds", default="3",
        help="a count (3: seed, seed+1000, seed+2000) or a list such as 1,2,3")

    init = commands.add_parser("init", help="write a commented config file with every key at "
                                            "its default")
    init.add_argument("path", metavar="PATH", nargs="?", default="ktlab.toml",
                      help="where to write it (default ktlab.toml; an existing file is kept)")
    commands.add_parser("list", help="list the models, tuners and bundled datasets")
    show = commands.add_parser("show", help="a finished run's leaderboard of trials, its best "
                                            "configuration and its scores")
    _run_dir_argument(show, "a run directory")
    show.add_argument("--top", type=int, default=10, metavar="K",
                      help="trials in the leaderboard (default 10)")
    plot = commands.add_parser("plot", help="redraw the plots of a run or comparison folder")
    _run_dir_argument(plot, "a run or comparison directory")
    ranking = commands.add_parser(
        "importance", help="rank the hyperparameters by how much they mattered to the score")
    _run_dir_argument(ranking, "a run directory")
    forecast = commands.add_parser("predict", help="forecast with a finished run's best model")
    _run_dir_argument(forecast, "a run directory that ktlab tune finished")
    forecast.add_argument("--data", metavar="FILE",
                          help="a CSV in any layout that ktlab data reads, or a bundled ticker "
                               "or table (default: the run's own test rows)")
    forecast.add_argument("--output", metavar="PATH",
                          help="where to write the CSV (default: RUN_DIR/forecast.csv, or "
                               "RUN_DIR/forecast-<file stem>.csv with --data)")
    brackets = commands.add_parser("brackets", help="print Hyperband's schedule")
    brackets.add_argument("--max-epochs", type=int, default=81)
    brackets.add_argument("--hyperband-factor", "--factor", dest="factor", type=int,
                          default=3)
    brackets.add_argument("--hyperband-iterations", type=int, default=1)
    return parser


def version() -> str:
    try:
        return importlib.metadata.version("ktlab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"
