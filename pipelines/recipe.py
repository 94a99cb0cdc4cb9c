"""Read this first: `ktlab tune` from settings to run directory, in the order it runs.

    settings -> data -> hypermodel -> tuner -> search -> best trial -> refit -> run directory

Each line of `run_search` below opens one room of the project:

- settings: `pipelines.config` (the schema, files, checks);
- data: `pipelines.data` (files to scaled splits and baselines), chosen by `pipelines.run.build`;
- hypermodel: `hypermodels` (one file and one registry line per model);
- tuner: `tuners` (one file and one registry line per strategy), built once by
  `pipelines.run.search`;
- search: keras-tuner's own `Tuner.search`, here or served to workers (`pipelines.parallel`);
- best trial: keras-tuner's record of the trials, then each pick step (`PICKS`);
- refit and run directory: `pipelines.run.artifacts`, then each report step (`REPORTS`,
  `pipelines.reports`).

Optional features are steps, not branches: a pick step may choose another trial (the Pareto
front with several objectives, the final pick across seeds), and a report step writes what a
finished run shows (plots, importances, the summary). Each does nothing when its setting is
off. Pass your own lists to `run_search(picks=..., reports=...)` to add or drop one.

```python
from pipelines.config import load_config
from pipelines.recipe import run_search

result = run_search(load_config("configs/default.toml"))
print(result.metrics["test"], result.metrics["baseline"]["test"])
```
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import keras
import keras_tuner

from pipelines.config import Config
from pipelines.data import PreparedData
from pipelines.errors import TooManyFailedTrialsError
from pipelines.reports import importance, pareto, plots
from pipelines.run import artifacts, final_retrain, run_dir, search, summary
from pipelines.run.artifacts import RunResult
from pipelines.run.callbacks import trial_callbacks
from pipelines.run.selection import Choice, Searched

# Steps that may choose another trial than keras-tuner's best, in this order.
PICKS: tuple[Callable[[Searched, Choice], Choice], ...] = (pareto.pick_step,
                                                            final_retrain.pick_step)
# Steps that run once the run directory holds the model and `metrics.json`.
REPORTS: tuple[Callable[[RunResult], None], ...] = (plots.plots_step, importance.importance_step,
                                                    summary.summary_step)


def run_search(config: Config, *, hypermodel: keras_tuner.HyperModel | None = None,
               callbacks: Sequence[keras.callbacks.Callback] = (), verbose: bool = True,
               progress_bars: bool = False, resume: bool = False, reuse_finished: bool = False,
               prepared: PreparedData | None = None, searcher: Callable[..., None] | None = None,
               mirrored: bool = False, picks: Sequence[Callable] = PICKS,
               reports: Sequence[Callable] = REPORTS) -> RunResult:
    """Settings -> data -> hypermodel -> tuner -> search -> best trial -> refit -> run directory.

    Args:
        config: The run's settings (`pipelines.config.load_config`).
        hypermodel: A `keras_tuner.HyperModel` of your own instead of the one `config.model`
            names; its `data_kind` attribute (`"series"` unless it says `"table"`) picks the data.
        callbacks: Keras callbacks added to every trial, beside ktlab's own.
        verbose: Log a line per finished trial and a summary (the `ktlab` logger).
        progress_bars: Show Keras's per-epoch progress bars.
        resume: Require a search to resume (`ktlab tune --resume`).
        reuse_finished: Read a finished search with the same settings back instead of
            refusing (notebooks whose cells run again after a lost session).
        prepared: Data already prepared from `config` (`ktlab compare` prepares it once).
        searcher: Runs the search on the built tuner; `search.search_here` by default, the
            distributed chief's `pipelines.parallel.workers.chief_searcher(...)` to serve it.
        mirrored: Spread each trial over this machine's GPUs (`tf.distribute.MirroredStrategy`).
        picks: The steps that may choose another trial (`PICKS`).
        reports: The steps after the run directory is written (`REPORTS`).

    Returns:
        The run's results; the run directory holds `config.json`, `histories.jsonl`,
        `trials.csv`, `best_hyperparameters.json`, `best_model.keras`, `preprocessor.joblib`,
        `predictions.csv`, `metrics.json`, the plots, and keras-tuner's files under `tuner/`.

    Raises:
        KtlabError: For bad input, before anything is written; after the search,
            `SearchFailedError` when no trial completed and `TooManyFailedTrialsError` when
            too many failed in a row (`trials.csv` and the plots then say why).
    """
    started = time.perf_counter()
    with search.session(verbose):
        config = search.named_after(config, hypermodel)
        data = prepared or search.prepare_data(config, hypermodel)
        hypermodel = hypermodel or search.build_hypermodel(config, data)
        search.check_search(config, hypermodel)  # What the model refuses, before any file.
        if reuse_finished and run_dir.finished_search(config) and not config.run.overwrite:
            return search.read_back(config, data)
        callbacks = trial_callbacks(config, config.run_dir, callbacks)  # ktlab's and yours.
        run = search.open_run(config, data, resume=resume)  # Start, resume or refuse.
        tuner = search.build_tuner(config, hypermodel, data, run, mirrored=mirrored)
        search.announce(config, data, run)
        search.seed_everything(config)
        clock = summary.Stopwatch()  # The summary line says where the time went.
        try:
            with clock.step(clock.SEARCH):
                (searcher or search.search_here)(tuner, data, config, callbacks, run,
                                                 progress_bars=progress_bars)
            run.listener.prune_now()
            trials = artifacts.write_trials(run.dir)
            choice = artifacts.best_choice(tuner, run.dir)  # keras-tuner's best.
        except (artifacts.SearchFailedError, TooManyFailedTrialsError):
            plots.write_plots(run.dir)  # The curves of the trials that ran show why.
            raise
        searched = Searched(config, data, tuner, trials, run.dir)
        for pick in picks:
            with clock.step(summary.step_name(pick)):
                choice = pick(searched, choice)
        with clock.step("refit" if config.run.refit else "best model"):
            saved = artifacts.final_model(config, data, tuner, trials, choice)
        with clock.step("test scores"):
            result = artifacts.write_run(config, data, tuner, trials, choice, saved, run.dir,
                                         started, clock.seconds)
        for report in reports:
            with clock.step(summary.step_name(report)):
                report(result)
        return result

