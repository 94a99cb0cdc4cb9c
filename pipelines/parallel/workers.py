"""Distributed tuning's two parts: a worker trains trials, the chief serves the oracle.

Both run on keras-tuner's own gRPC engine (`pipelines.parallel.distributed` resolves the roles and
wraps its chief). Every process shares the run directory; each worker appends to its own
histories file, and the chief writes the results as a search in one process does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

import hypermodels
from pipelines.config import Config
from pipelines.data import PreparedData
from pipelines.errors import ConfigError, TooManyFailedTrialsError
from pipelines.parallel import distributed, recycling
from pipelines.run import artifacts
from pipelines.run import callbacks as trial_callbacks
from pipelines.run import summary as report
from pipelines.run.build import make_hypermodel, make_pipeline
from pipelines.run.listener import TrialEndListener
from pipelines.run.progress import LOGGER
from pipelines.run.run_dir import (
    RUN_MARKER,
    first_differences,
    read_saved_config,
    search_differences,
)
from pipelines.run.search import (
    Run,
    folds_of,
    make_tuner,
    seed_everything,
    session,
)


def run_worker(config: Config, distribution: distributed.Distribution, *,
               verbose: bool = True, mirrored: bool = False,
               prepared: PreparedData | None = None, recycle_after: int = 0) -> int:
    """Runs a distributed worker: trains the trials the chief hands out, until it says stop.

    The worker appends its histories to `histories-<tuner_id>.jsonl` in the chief's run
    directory, which it must see (a shared filesystem); the chief writes the results.

    Args:
        config: The search's configuration: the chief's, as in its `config.json`.
        distribution: The worker's id, the chief's address and how long to wait for it.
        verbose: Log a line per finished trial (the `ktlab` logger).
        mirrored: Spread each trial over this machine's GPUs.
        prepared: Data already prepared from `config.data` (a local worker prepares it
            while its chief starts); None prepares it here.
        recycle_after: Stop after this many trials by raising
            `recycling.WorkerRecycled`, for a chief that starts a fresh process in its
            place (`ktlab tune --recycle-after K`); 0 runs until the chief says stop.

    Returns:
        How many trials this worker ran.

    Raises:
        KtlabError: If no chief answers within the timeout, the run directory is not the
            chief's, or the settings differ from the chief's.
    """
    if distribution.role != "worker":
        raise ConfigError("run_worker runs a distributed worker; the chief runs run_search")
    # The logging and warnings are put back when the worker ends, as after a search.
    with session(verbose):
        return _work(config, distribution, mirrored=mirrored, prepared=prepared,
                     recycle_after=recycle_after)


def _work(config: Config, distribution: distributed.Distribution, *, mirrored: bool,
          prepared: PreparedData | None, recycle_after: int) -> int:
    distributed.wait_for_chief(distribution)
    run_dir = config.run_dir
    if not (run_dir / RUN_MARKER).is_file():
        raise ConfigError(f"no {RUN_MARKER} in {run_dir}: a worker writes into the chief's run "
                          f"directory, so give it the chief's --output-dir and --run-name on a "
                          f"filesystem both see")
    differences = search_differences(read_saved_config(run_dir), config)
    if differences:
        raise ConfigError(f"this worker's settings differ from the chief's: "
                          f"{first_differences(differences)}; start it with the chief's "
                          f"(ktlab tune --resume {run_dir} --distributed worker ...)")
    if prepared is None:
        prepared = make_pipeline(config).prepare()
    folds = folds_of(config, prepared)
    hypermodel = make_hypermodel(config, prepared)
    search_callbacks = trial_callbacks.trial_callbacks(config, run_dir)
    ended: list[str] = []

    def on_trial_end(record: dict[str, Any]) -> None:
        ended.append(record["trial_id"])
        LOGGER.info(f"trial {record['trial_id']} {record['status']}: score "
                    f"{report.format_value(record.get('score'))}, {record.get('epochs')} "
                    f"epochs, {record.get('seconds') or 0:.1f} s | "
                    f"{report.format_hyperparameters(record.get('hyperparameters') or {})}")

    try:
        with distributed.environment(distribution):
            # The tuner waits a moment before asking again when the chief has no trial
            # for it (`tuners.tuner.Tuner.pre_create_trial`).
            tuner = make_tuner(config, hypermodel, folds, run_dir,
                               run_dir / distribution.history_filename, on_trial_end,
                               resuming=True, mirrored=mirrored)
            seed_everything(config)
            recycling.stop_after(tuner, recycle_after)
            LOGGER.info(f"ktlab: worker {distribution.tuner_id} of the chief at "
                        f"{distribution.address}; run directory {run_dir}")
            tuner.search(**hypermodels.fit_data(hypermodel, prepared),
                         epochs=config.tuner.max_epochs,
                         callbacks=search_callbacks, shuffle=False, verbose=0)
    except grpc.RpcError as error:
        raise distributed.chief_error(distribution, error) from None
    LOGGER.info(f"ktlab: worker {distribution.tuner_id} ran {len(ended)} trials; the chief "
                f"writes the results to {run_dir}")
    return len(ended)


def chief_searcher(distribution: distributed.Distribution) -> Callable[..., None]:
    """The recipe's search step for the distributed chief: serve the tuner to the workers.

    `pipelines.recipe.run_search(config, searcher=chief_searcher(distribution))` runs the
    chief: it trains nothing, hands out the trials and writes the results as a search in
    one process does. The chief's address is checked here, before anything is written.

    Raises:
        ConfigError: If the chief cannot listen on its address.
    """
    if distribution.role != "chief":
        raise ConfigError("the chief serves the search; a worker runs run_worker")
    distributed.check_port_free(distribution)

    def searcher(tuner: Any, data: PreparedData, config: Config, callbacks: Any, run: Run,
                 **options: Any) -> None:
        try:
            serve_chief(tuner, distribution, run.listener)
        except TooManyFailedTrialsError:
            raise artifacts.stopped_by_failures(config, run.dir) from None

    return searcher


def serve_chief(tuner: Any, distribution: distributed.Distribution,
                listener: TrialEndListener) -> None:
    """Serves the oracle to the workers until the search is over, logging ended trials."""
    oracle = tuner.oracle
    # The chief trains nothing; the workers print their trials, the chief one line each.
    oracle.verbose = 0
    tuner.save()
    seen = len(oracle.end_order)

    def on_poll() -> None:
        nonlocal seen
        ended = oracle.end_order[seen:]
        if not ended:
            return
        seen += len(ended)
        # keras-tuner's `end_trial` saves the oracle before it lets go of the trial, and a
        # worker never saves the chief's oracle; saving again here means a chief killed now
        # does not run a finished trial again when it resumes.
        oracle.save()
        listener.update_statuses()
        for trial_id in ended:
            trial = oracle.trials[trial_id]
            LOGGER.info(f"trial {trial_id} {str(trial.status).lower()}: score "
                        f"{report.format_value(trial.score)}")
        listener.prune_now()

    local = distribution.local_workers
    if local is None:
        LOGGER.info(f"ktlab: chief listening on {distribution.address}; start workers with "
                    f"`ktlab tune --distributed worker --oracle-address "
                    f"{distribution.address} --tuner-id NAME` and the same settings")
        distributed.serve(tuner, distribution, on_poll=on_poll)
        return
    distributed.serve(tuner, distribution, on_poll=on_poll,
                      on_listening=lambda: local.start(listener.run_dir, distribution, oracle),
                      watch=local.check)
