"""What the steps that choose the saved trial pass along: the finished search and the choice.

The recipe (`pipelines.recipe`) starts from keras-tuner's best trial and hands it to each
pick step in turn (the Pareto front, `pipelines.reports.pareto.pick_step`; the final pick
across seeds, `pipelines.run.final_retrain.pick_step`). No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import pandas as pd

from pipelines.config import Config
from pipelines.data import PreparedData


@dataclasses.dataclass
class Searched:
    """A finished search, as the steps that choose its trial see it."""

    config: Config
    data: PreparedData
    tuner: Any
    trials: pd.DataFrame
    run_dir: pathlib.Path


@dataclasses.dataclass
class Choice:
    """The trial whose configuration the run saves, and why.

    Attributes:
        trial_id: The chosen trial.
        model: A model already trained for it (the final pick's), or None to take the
            search's own.
        seed: The seed `model` was trained with, when it is given.
        records: Entries for `metrics.json` from the steps that chose (`pareto`,
            `final_pick`).
    """

    trial_id: str
    model: Any = None
    seed: int | None = None
    records: dict[str, Any] = dataclasses.field(default_factory=dict)
