"""`ktlab tune --workers N`: one search on N worker processes of this machine.

The calling process becomes keras-tuner's chief on a free port of 127.0.0.1 (see
`pipelines.parallel.workers.serve_chief`). It starts N worker processes first, each limited
to its share of the cores, so that they import TensorFlow and prepare the data while it does
the same; each then waits for the chief to listen, which it does only once the run directory
holds its `config.json`. The workers train the trials; the chief writes the same results
as a search in one process, and the run directory holds one histories file per worker
(`histories-worker-1.jsonl`, ...), which `tuners.load_histories` and `tuners.load_trials`
merge, and each worker's output in `workers/worker-1.log`, ...

```python
from pipelines.parallel.local_workers import run_with_workers

result = run_with_workers(load_config("configs/default.toml"), workers=2)
```

A worker that dies mid-search (killed, or crashed once it reached the chief) is replaced:
the chief starts a new process under its name, which trains its trial again
(`pipelines.parallel.replacement`), up to `run.max_worker_restarts` times per search. Any
other early exit, or one more death, stops the chief with one line, and every worker still
running is stopped when the chief stops, for whatever reason. With `--recycle-after K`
(`pipelines.parallel.recycling`) each worker exits after K trials on purpose and the chief
starts it again under its name (even one worker: `--recycle-after` alone). A worker process
runs `python -m pipelines.parallel.worker_process`; TensorFlow is imported only inside the
functions here, so that a worker imports it quietly (`pipelines.run.quiet`).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import IO, TYPE_CHECKING, Any

from pipelines.config import Config
from pipelines.errors import ConfigError, KtlabError
from pipelines.parallel import distributed, recycling, registrations, replacement
from pipelines.run import quiet
from pipelines.run.progress import LOGGER
from tuners import distribution as tuner_distribution

if TYPE_CHECKING:
    from pipelines.data import PreparedData
    from pipelines.run.artifacts import RunResult

HOST = "127.0.0.1"
LOG_FOLDER = "workers"
# TensorFlow sizes its two thread pools from these when it starts (checked on TensorFlow
# 2.21: a process started with 1 runs fewer threads); OpenMP and OpenBLAS read the third.
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
# How long workers that were told to stop get to exit on their own after the search.
EXIT_SECONDS = 30.0
# How long a terminated worker gets before it is killed.
TERMINATE_SECONDS = 5.0
# The end of a worker's log read for the line that says why it stopped.
LOG_TAIL_BYTES = 4096


class WorkerFailedError(KtlabError):
    """A local worker process ended before the search did."""


def free_port(host: str = HOST) -> int:
    """A TCP port of `host` that no process listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_worker(workers: int, available: int | None = None) -> int:
    """Each worker's share of the cores: at least one thread."""
    return max(1, (cores() if available is None else available) // workers)


def worker_settings(config: Config) -> dict:
    """The settings a worker process is given: `config`, with an absolute output folder.

    The worker checks them against the chief's `config.json` once the chief listens.
    """
    settings = config.to_dict()
    settings["run"].update(output_dir=str(pathlib.Path(config.run.output_dir).resolve()),
                           overwrite=False)
    return settings


class WorkerPool:
    """The worker processes of one search.

    Args:
        workers: How many worker processes to start.
        threads: Threads for each worker's TensorFlow; None gives each its share of the
            cores.
        recycle_after: Whether the workers exit after that many trials to be started
            again (`pipelines.parallel.recycling`); 0 never.
        max_restarts: How many workers that die mid-search are replaced, in all
            (`pipelines.parallel.replacement`); 0 none.
    """

    def __init__(self, workers: int, threads: int | None = None,
                 recycle_after: int = 0, max_restarts: int = 0) -> None:
        self.names = [f"worker-{number}" for number in range(1, workers + 1)]
        self.threads = threads_per_worker(workers) if threads is None else threads
        self.recycle_after = recycle_after
        # How many times each worker has been started.
        self.starts: dict[str, int] = {}
        self._launched: tuple[Config, distributed.Distribution] | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, pathlib.Path] = {}
        self.startup_logs: dict[str, pathlib.Path] = {}
        self._startup_dir: pathlib.Path | None = None
        self._files: list[IO[bytes]] = []
        self._all_exited = False
        self.listening = False
        self.replacements = replacement.Replacements(max_restarts)
        # The chief's oracle and when it began serving, for what a replacement reports.
        self._oracle: Any = None
        self._listened_at = 0.0

    def command(self, config: Config, distribution: distributed.Distribution,
                name: str) -> list[str]:
        """The command line of worker `name`."""
        return [sys.executable, "-m", "pipelines.parallel.worker_process", "--tuner-id", name,
                "--oracle-address", distribution.address, "--chief-timeout",
                f"{distribution.chief_timeout:g}", "--startup-log",
                str(self.startup_logs[name]), "--settings",
                json.dumps(worker_settings(config)), "--registered",
                json.dumps(registrations.added_entries())]

    def environment(self) -> dict[str, str]:
        """The workers' environment: this one, with their thread limits."""
        environ = {name: value for name, value in os.environ.items()
                   if name not in tuner_distribution.ENVIRONMENT}
        environ.update({name: str(self.threads) for name in THREAD_VARIABLES})
        # Each line of a worker's log is written as it happens, not when a buffer fills.
        environ["PYTHONUNBUFFERED"] = "1"
        # gRPC logs at INFO level that the chief closed the connection, which it does at
        # the end of every search.
        environ.setdefault("GRPC_VERBOSITY", "ERROR")
        return environ

    def launch(self, config: Config, distribution: distributed.Distribution) -> None:
        """Starts every worker; each waits for the chief at `distribution.address`.

        Until the chief listens, a worker writes to a startup log in a temporary folder
        (the run directory may not exist yet, or be about to be cleared by `overwrite`);
        then it copies that log into `RUN_DIR/workers/<name>.log` and appends to it.
        """
        self._startup_dir = pathlib.Path(tempfile.mkdtemp(prefix="ktlab-workers-"))
        self._launched = (config, distribution)
        log_dir = config.run_dir.resolve() / LOG_FOLDER
        for name in self.names:
            self.logs[name] = log_dir / f"{name}.log"
            self.startup_logs[name] = self._startup_dir / f"{name}.log"
            self._spawn(name, self.startup_logs[name], "wb")

    def restart(self, name: str) -> None:
        """Starts worker `name` again, once it exited to be recycled.

        The chief listens already, so the new process writes to the end of the worker's
        log in the run directory from its start, and its startup log stays empty.
        """
        LOGGER.info(f"ktlab: {name} ran {self.recycle_after} trials and exited to free its "
                    f"memory; starting it again (start {self.starts[name] + 1})")
        self._respawn(name)

    def replace(self, name: str, code: int) -> None:
        """Starts a new worker `name` in place of one that died with `code` mid-search.

        The new process takes the dead one's name, so the oracle hands it the dead one's
        trial (`pipelines.parallel.replacement`). The line that says so goes to the chief's
        log and to the end of the worker's own, where the new process's output follows.
        """
        trial_id = (replacement.held_trial(self._oracle, name) if self._oracle is not None
                    else None)
        death = replacement.Death(name, replacement.how_it_ended(code),
                                  time.monotonic() - self._listened_at, trial_id)
        line = self.replacements.record(death)
        LOGGER.warning(line)
        self._respawn(name, note=line)

    def _respawn(self, name: str, note: str = "") -> None:
        self.startup_logs[name] = self._startup_dir / f"{name}-{self.starts[name] + 1}.log"
        self._spawn(name, self.logs[name], "ab", note=note)

    def _spawn(self, name: str, log_path: pathlib.Path, mode: str, note: str = "") -> None:
        config, distribution = self._launched
        log = open(log_path, mode)  # noqa: SIM115 (closed in stop())
        self._files.append(log)
        if note:
            log.write(f"{note}\n".encode())
            log.flush()
        self.starts[name] = self.starts.get(name, 0) + 1
        # A session of its own: Ctrl-C reaches the chief only, which stops the workers.
        self.processes[name] = subprocess.Popen(
            self.command(config, distribution, name), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, env=self.environment(),
            start_new_session=True)

    def start(self, run_dir: pathlib.Path, distribution: distributed.Distribution,
              oracle: Any = None) -> None:
        """Called once the chief listens: the workers find it on their own.

        `oracle` is the chief's: a dead worker's replacement is told which trial it runs.
        """
        self.listening = True
        self._oracle = oracle
        self._listened_at = time.monotonic()
        count, every = len(self.names), self.recycle_after
        recycled = f", restarted every {every} trials" if every else ""
        LOGGER.info(f"ktlab: chief on {distribution.address} with {count} worker "
                    f"process{'es' * (count != 1)} of {self.threads} thread"
                    f"{'s' * (self.threads != 1)} each{recycled}; their output goes to "
                    f"{run_dir / LOG_FOLDER}")

    def check(self) -> None:
        """Raises when a worker failed, or every worker ended, before the search did.

        Every worker exits with code 0 once the chief has told it to stop, and the chief
        then stops serving at its next look; so workers that all ended are an error only
        when the chief still serves at the look after the one that saw them end. A worker
        that exited to be recycled is started again, and one that died mid-search is
        replaced while the search allows it (`pipelines.parallel.replacement`).

        Raises:
            WorkerFailedError: Naming the worker, its exit code and its log.
        """
        for name, process in list(self.processes.items()):
            code = process.poll()
            if self.recycle_after and code == recycling.EXIT_CODE:
                self.restart(name)
            elif (code not in (None, 0) and self._replaceable(name, code)
                  and self.replacements.allows_another()):
                self.replace(name, code)
        codes = {name: process.poll() for name, process in self.processes.items()}
        for name, code in codes.items():
            if code not in (None, 0):
                raise WorkerFailedError(self._failure(name, code))
        if codes and all(code == 0 for code in codes.values()):
            if self._all_exited:
                raise WorkerFailedError(f"every worker ended before the search did; see "
                                        f"the logs in {next(iter(self.logs.values())).parent}")
            self._all_exited = True

    def stop(self, grace: float = 0.0) -> None:
        """Lets the workers exit within `grace` seconds, then terminates or kills them."""
        running = [process for process in self.processes.values() if process.poll() is None]
        for process in running:
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.terminate()
        for process in running:
            try:
                process.wait(timeout=TERMINATE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self._files:
            log.close()
        self._files.clear()
        if self._startup_dir is not None:
            shutil.rmtree(self._startup_dir, ignore_errors=True)

    def _replaceable(self, name: str, code: int) -> bool:
        # A worker writes its log in the run directory once it has reached the chief.
        return replacement.is_replaceable(code, reached_chief=self.logs[name].exists())

    def _failure(self, name: str, code: int) -> str:
        how = replacement.how_it_ended(code)
        log = self.logs[name]
        reason = _last_line(log) if log.exists() else _last_line(self.startup_logs[name])
        where = (f"; see {log}, and rerun with --resume to continue" if log.exists() else
                 " while it started")
        limit = (self.replacements.refusal()
                 if self.replacements.limit and self._replaceable(name, code) else "")
        return (f"{name} {how} before the search ended{f' ({reason})' if reason else ''}"
                f"{where}{limit}")


def _last_line(path: pathlib.Path, limit: int = 200) -> str:
    """The last non-empty line of a log, shortened to `limit` characters."""
    try:
        with open(path, "rb") as log:
            log.seek(max(log.seek(0, os.SEEK_END) - LOG_TAIL_BYTES, 0))
            lines = log.read().decode("utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    line = lines[-1].strip() if lines else ""
    return line if len(line) <= limit else line[:limit - 3] + "..."


def run_with_workers(config: Config, workers: int | None = None, *,
                     prepared: PreparedData | None = None, verbose: bool = True,
                     resume: bool = False, reuse_finished: bool = False) -> RunResult:
    """Runs one search on `workers` worker processes of this machine, this one the chief.

    With one worker and no `run.recycle_after` it is `recipe.run_search` in this process.
    The workers are separate processes, so the model and the callbacks must be ones that
    `config` names (a `HyperModel` instance or a callback object of this process cannot be
    handed over: `run_search` takes those).

    Args:
        config: The run's configuration.
        workers: Worker processes; None takes `config.run.workers`.
        prepared: Data already prepared from `config.data`; None prepares it here.
        verbose: Log a line per ended trial and a summary.
        resume: Require a search to resume (`ktlab tune --resume`).
        reuse_finished: Read a finished search's results back instead of refusing.

    Returns:
        The run's results, with the same files as a search in one process.

    Raises:
        KtlabError: As `run_search` does, and `WorkerFailedError` when a worker ends
            before the search does and is not replaced: it stopped with ktlab's one-line
            error, failed while it started, or died after `run.max_worker_restarts`
            replacements (the run directory can then be resumed).
    """
    workers = config.run.workers if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}; fix --workers")
    if workers == 1 and not config.run.recycle_after:
        quiet.import_tensorflow()
        from pipelines import recipe

        return recipe.run_search(config, prepared=prepared, verbose=verbose, resume=resume,
                                 reuse_finished=reuse_finished)
    pool = WorkerPool(workers, recycle_after=config.run.recycle_after,
                      max_restarts=config.run.max_worker_restarts)
    distribution = distributed.Distribution("chief", HOST, free_port(), "chief",
                                            local_workers=pool)
    try:
        pool.launch(config, distribution)
        # The workers import TensorFlow while this process does, each on its own core.
        quiet.import_tensorflow()
        from pipelines import recipe
        from pipelines.parallel import workers

        result = recipe.run_search(config, prepared=prepared, verbose=verbose, resume=resume,
                                   reuse_finished=reuse_finished,
                                   searcher=workers.chief_searcher(distribution),
                                   reports=(*recipe.REPORTS, pool.replacements.summary_step))
    except BaseException:
        pool.stop()
        raise
    if not pool.listening:
        # A finished search read back: the chief never listened, and no worker would end.
        pool.stop()
        return result
    # The workers were told to stop before the chief wrote the results; most are gone.
    pool.stop(grace=EXIT_SECONDS)
    for name, process in pool.processes.items():
        if process.returncode != 0:
            LOGGER.warning(f"ktlab: {name} exited with code {process.returncode} after the "
                           f"search; see {pool.logs[name]}")
    return result
