"""Walk-forward validation: windows of training and validation rows moved forward through
the rows before the held-out test, each fold scaled on its own training rows. The price and
the series pipelines cut their folds here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipelines.data.prepared import Fold, positive_int
from pipelines.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class WalkForward:
    """Walk-forward validation: a training window followed by a validation window, moved
    forward by `step` rows until the validation window reaches the held-out test rows.

    The reference article uses 3,000 / 500 / 500 on 6,500 days of NVDA; the defaults fit
    the bundled 13 years of daily prices (about 2,400 rows before the test split).
    """

    train_window: int = 1500
    validation_window: int = 250
    step: int = 250


def walk_forward_folds(builder: Any, test_start: int, windows: WalkForward, minimum: int,
                       unit: str) -> list[Fold]:
    """The walk-forward folds before `test_start`, each scaled on its own training rows.

    Args:
        builder: Fits scalers on a row range (`fit(start, stop)`) whose result cuts splits
            (`split(name, start, stop)`).
        test_start: The first held-out row.
        windows: The training window, validation window and step, in rows.
        minimum: The fewest rows a window may hold (lookback + the steps forecast).
        unit: What a row is, for messages: `days`, `steps`.

    Raises:
        ConfigError: If a window is too short, or no fold fits before the test rows.
    """
    for field in ("train_window", "validation_window", "step"):
        positive_int(f"walk_forward.{field}", getattr(windows, field))
    if windows.validation_window < minimum or windows.train_window < minimum:
        raise ConfigError(f"walk-forward windows must each hold at least {minimum} {unit} "
                          f"(the lookback and the steps forecast); raise --walk-forward-train "
                          f"or --walk-forward-validation")
    folds = []
    start = 0
    while start + windows.train_window + windows.validation_window <= test_start:
        middle = start + windows.train_window
        fitted = builder.fit(start, middle)
        folds.append(Fold(
            index=len(folds), train=fitted.split("train", start, middle),
            validation=fitted.split("validation", middle, middle + windows.validation_window),
            preprocessor=fitted.preprocessor, target_scaler=fitted.target_scaler))
        start += windows.step
    if not folds:
        raise ConfigError(
            f"walk-forward windows ({windows.train_window} + {windows.validation_window} "
            f"{unit}) do not fit in the {test_start} {unit} before the test split; lower "
            f"--walk-forward-train or --walk-forward-validation")
    return folds
