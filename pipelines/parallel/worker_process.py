"""The process of one local worker of `ktlab tune --workers N` (`pipelines.parallel.local_workers`).

`python -m pipelines.parallel.worker_process ...` prepares the data while its chief starts,
waits for the chief to listen, writes its output to `workers/<name>.log` in the run
directory, and trains the trials the chief hands out (`pipelines.parallel.workers`). It ends
when its chief's process ends, even when the chief is killed.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import logging
import os
import pathlib
import signal
import sys

from pipelines.config import load_config
from pipelines.errors import KtlabError
from pipelines.parallel import distributed, recycling, registrations
from pipelines.parallel.local_workers import LOG_FOLDER
from pipelines.run import build, progress, quiet
from pipelines.run.progress import LOGGER

# How often a worker whose chief does not listen yet checks that the chief still lives.
PARENT_POLL_SECONDS = 1.0
# Linux's prctl option: the signal a process gets when its parent ends.
PR_SET_PDEATHSIG = 1


def _wait_for_chief(distribution: distributed.Distribution) -> None:
    """Waits for the chief that started this process to listen, as long as it lives.

    Raises:
        KtlabError: If the chief's process ended first.
    """
    chief = os.getppid()
    probe = dataclasses.replace(distribution, chief_timeout=PARENT_POLL_SECONDS)
    while True:
        try:
            distributed.wait_for_chief(probe)
            return
        except distributed.ChiefUnreachableError:
            if os.getppid() != chief:
                raise KtlabError("the chief that started this worker ended before it "
                                 "listened") from None


def _end_with_the_chief() -> None:
    """Asks Linux to end this process when the chief's process ends, even when killed.

    The chief stops its workers when it stops with an error or Ctrl-C; a chief that is
    killed cannot, and its workers would otherwise train until their next request fails.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return


def _write_output_to(log: pathlib.Path, startup_log: pathlib.Path) -> None:
    """Points standard output and error at `log`, after what the startup log holds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    with open(log, "ab") as target:
        target.write(startup_log.read_bytes() if startup_log.exists() else b"")
    descriptor = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)


def main(argv: list[str] | None = None) -> int:
    """A local worker process: prepares the data, waits for its chief, trains its trials."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.parallel.worker_process",
                                     description="A worker of `ktlab tune --workers N`.")
    parser.add_argument("--tuner-id", required=True)
    parser.add_argument("--oracle-address", required=True)
    parser.add_argument("--chief-timeout", type=float, required=True)
    parser.add_argument("--startup-log", type=pathlib.Path, required=True)
    parser.add_argument("--settings", type=json.loads, required=True)
    parser.add_argument("--registered", type=json.loads, default={})
    args = parser.parse_args(argv)
    _end_with_the_chief()
    quiet.set_environment()
    progress.show_progress(logging.INFO, to_stdout=True)
    try:
        registrations.register(args.registered)
        settings = load_config(None, args.settings)
        distribution = distributed.resolve("worker", args.oracle_address, args.tuner_id,
                                           args.chief_timeout)
        quiet.import_tensorflow()
        from pipelines.parallel import workers

        prepared = build.make_pipeline(settings).prepare()
        _wait_for_chief(distribution)
        _write_output_to(settings.run_dir / LOG_FOLDER / f"{distribution.tuner_id}.log",
                         args.startup_log)
        workers.run_worker(settings, distribution, prepared=prepared,
                           recycle_after=settings.run.recycle_after)
    except recycling.WorkerRecycled as recycled:
        LOGGER.info(f"ktlab: worker {args.tuner_id} {recycled}")
        return recycling.EXIT_CODE
    except KtlabError as error:
        print(f"ktlab: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    recycling.exit_process(main())
