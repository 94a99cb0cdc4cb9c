"""Distributed tuning on keras-tuner's own gRPC chief and workers.

One chief holds the oracle and hands out trials; each worker asks it for a trial, trains
it and reports back. All of them share the run directory, which must lie on a filesystem
that every machine sees. keras-tuner reads its settings from three environment variables,
which `ktlab tune --distributed ...` sets from its flags:

| variable | flag | meaning |
|---|---|---|
| `KERASTUNER_ORACLE_IP` | `--oracle-address HOST:PORT` | where the chief listens |
| `KERASTUNER_ORACLE_PORT` | (the same flag) | its port |
| `KERASTUNER_TUNER_ID` | `--tuner-id ID` | `chief`, or a name unique to each worker |

```
ktlab tune --tuner random --distributed chief --oracle-address 127.0.0.1:8470
ktlab tune --tuner random --distributed worker --oracle-address 127.0.0.1:8470 --tuner-id w1
ktlab tune --tuner random --distributed worker --oracle-address 127.0.0.1:8470 --tuner-id w2
```

Two things differ from keras-tuner's own chief (its `start_server`): it looks
every 20 seconds whether the search is over, so ours looks four times a second; and it
never ends when too many trials fail in a row, because the oracle's error stays inside
the gRPC call, so ours answers every later request for a trial with "stop" and ends the
search with one line. A worker first checks that the chief answers, within
`--chief-timeout` seconds, instead of keras-tuner's hour.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from pipelines.errors import ConfigError, KtlabError, TooManyFailedTrialsError
from tuners import distribution as tuner_distribution

ROLES = ("chief", "worker")
DEFAULT_CHIEF_ADDRESS = "127.0.0.1:8470"
DEFAULT_CHIEF_TIMEOUT = 60.0
# How often the chief looks whether the search is over.
POLL_SECONDS = 0.25
TUNER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class LocalWorkers(Protocol):
    """Worker processes that a chief starts on this machine (`parallel.local_workers`)."""

    def start(self, run_dir: pathlib.Path, distribution: Distribution, oracle: Any) -> None:
        """Starts the workers on the chief's run directory, address and oracle."""

    def check(self) -> None:
        """Replaces a worker that died, or raises a `KtlabError` when it cannot."""


class ChiefUnreachableError(KtlabError):
    """No chief answered a worker in time."""




@dataclasses.dataclass(frozen=True)
class Distribution:
    """This process's part in a distributed search.

    Attributes:
        role: `"chief"` (holds the oracle, trains nothing) or `"worker"` (trains trials).
        host: The chief's host name or IP address; the chief listens on it.
        port: The chief's port.
        tuner_id: keras-tuner's tuner id: `chief` for the chief, a unique name for each
            worker (a restarted worker takes its old name to finish its trial).
        chief_timeout: Seconds a worker waits for the chief to answer.
        local_workers: For a chief that starts its own workers on this machine (`ktlab
            tune --workers N`, `pipelines.parallel.local_workers`): it starts them once it listens
            and stops serving when one of them fails.
    """

    role: str
    host: str
    port: int
    tuner_id: str
    chief_timeout: float = DEFAULT_CHIEF_TIMEOUT
    local_workers: LocalWorkers | None = dataclasses.field(default=None, compare=False,
                                                            repr=False)

    @property
    def address(self) -> str:
        """`HOST:PORT`, as gRPC takes it."""
        return f"{self.host}:{self.port}"

    @property
    def history_filename(self) -> str:
        """The worker's own histories file in the run directory."""
        return f"histories-{self.tuner_id}.jsonl"


def resolve(role: str | None = None, address: str | None = None, tuner_id: str | None = None,
            chief_timeout: float | None = None,
            environ: dict[str, str] | None = None) -> Distribution | None:
    """This process's role, from the flags or else keras-tuner's environment variables.

    Args:
        role: `--distributed`: `"chief"`, `"worker"`, or None.
        address: `--oracle-address HOST:PORT`.
        tuner_id: `--tuner-id`.
        chief_timeout: `--chief-timeout` in seconds.
        environ: The environment (default `os.environ`).

    Returns:
        The distribution, or None for a search in one process.

    Raises:
        ConfigError: For a flag without `--distributed`, a missing or malformed address,
            a worker without an id, or an id that does not suit its role.
    """
    environ = os.environ if environ is None else environ
    environment_host = environ.get("KERASTUNER_ORACLE_IP")
    environment_id = environ.get("KERASTUNER_TUNER_ID")
    if role is None and environment_host is None:
        if address is not None or tuner_id is not None or chief_timeout is not None:
            raise ConfigError("--oracle-address, --tuner-id and --chief-timeout need "
                              "--distributed chief or --distributed worker")
        return None
    if role is None:
        if not environment_id:
            raise ConfigError("KERASTUNER_ORACLE_IP is set but KERASTUNER_TUNER_ID is not; set "
                              "it to chief or to a worker's name, or pass --tuner-id")
        role = "chief" if "chief" in environment_id else "worker"
    if role not in ROLES:
        raise ConfigError(f"unknown --distributed role {role!r}; use chief or worker")
    if address is None and environment_host is not None:
        port = environ.get("KERASTUNER_ORACLE_PORT")
        if not port:
            raise ConfigError("KERASTUNER_ORACLE_IP is set but KERASTUNER_ORACLE_PORT is not; "
                              "set it or pass --oracle-address HOST:PORT")
        address = f"{environment_host}:{port}"
    if address is None:
        if role == "worker":
            raise ConfigError("a worker needs the chief's address: pass --oracle-address "
                              "HOST:PORT")
        address = DEFAULT_CHIEF_ADDRESS
    host, port_number = _parse_address(address)
    tuner_id = tuner_id or environment_id or ("chief" if role == "chief" else None)
    if tuner_id is None:
        raise ConfigError("a worker needs a name unique among the workers: pass --tuner-id, "
                          "e.g. --tuner-id worker1")
    if not TUNER_ID_PATTERN.match(tuner_id):
        raise ConfigError(f"tuner id {tuner_id!r} may hold only letters, digits, '_', '-' and "
                          f"'.', and must start with a letter or digit; choose another "
                          f"--tuner-id")
    if role == "chief" and "chief" not in tuner_id:
        raise ConfigError(f"the chief's tuner id must contain 'chief' (keras-tuner's rule), "
                          f"got {tuner_id!r}; pass --tuner-id chief")
    if role == "worker" and "chief" in tuner_id:
        raise ConfigError(f"a worker's tuner id must not contain 'chief', got {tuner_id!r}; "
                          f"pass another --tuner-id")
    timeout = DEFAULT_CHIEF_TIMEOUT if chief_timeout is None else float(chief_timeout)
    if not timeout > 0:
        raise ConfigError(f"--chief-timeout must be > 0 seconds, got {chief_timeout}")
    return Distribution(role=role, host=host, port=port_number, tuner_id=tuner_id,
                        chief_timeout=timeout)


def _parse_address(address: str) -> tuple[str, int]:
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--oracle-address must be HOST:PORT with a port from 1 to 65535, "
                          f"e.g. 127.0.0.1:8470; got {address!r}")
    return host, int(port)


@contextlib.contextmanager
def environment(distribution: Distribution | None) -> Iterator[None]:
    """keras-tuner's variables for a worker, or none, while a tuner is built and searches.

    The chief's tuner is built without them: it is then an ordinary tuner that saves itself
    as `tuner0.json`, as a search in one process does, so a run started one way resumes the
    other way (`tuners.distribution.environment`).
    """
    worker = None
    if distribution is not None and distribution.role == "worker":
        worker = tuner_distribution.Worker(distribution.host, distribution.port,
                                           distribution.tuner_id, distribution.chief_timeout)
    with tuner_distribution.environment(worker):
        yield


def check_port_free(distribution: Distribution) -> None:
    """Checks, before anything is written, that the chief can listen on its address.

    Raises:
        ConfigError: If the address is taken or not one of this machine's.
    """
    host = distribution.host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, distribution.port))
        except OSError as error:
            raise ConfigError(f"the chief cannot listen on {distribution.address} "
                              f"({error.strerror}); choose another --oracle-address") from None


def wait_for_chief(distribution: Distribution) -> None:
    """Waits up to `chief_timeout` seconds for the chief to accept a connection.

    Raises:
        ChiefUnreachableError: If it does not.
    """
    import grpc

    channel = grpc.insecure_channel(distribution.address)
    try:
        grpc.channel_ready_future(channel).result(timeout=distribution.chief_timeout)
    except grpc.FutureTimeoutError:
        raise ChiefUnreachableError(
            f"no chief answered at {distribution.address} within "
            f"{distribution.chief_timeout:g} s; start `ktlab tune --distributed chief` first, "
            f"or check --oracle-address and --chief-timeout") from None
    finally:
        channel.close()


def chief_error(distribution: Distribution, error: Any) -> ChiefUnreachableError:
    """A one-line error for a gRPC failure of a worker's request."""
    import grpc

    code = error.code() if hasattr(error, "code") else None
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ChiefUnreachableError(
            f"the chief at {distribution.address} stopped answering for "
            f"{distribution.chief_timeout:g} s; restart it (ktlab tune --distributed chief "
            f"resumes the search) and then this worker")
    details = error.details() if hasattr(error, "details") else str(error)
    last_line = (details or "").strip().splitlines()[-1:] or ["no details"]
    return ChiefUnreachableError(f"the chief at {distribution.address} answered with an "
                                 f"error: {last_line[0]}")


def _locked(function: Callable) -> Callable:
    """`keras_tuner.synchronized` for a function whose first argument is the oracle."""
    import keras_tuner

    return keras_tuner.synchronized(function)


def serve(tuner: Any, distribution: Distribution,
          on_poll: Callable[[], None] | None = None,
          on_listening: Callable[[], None] | None = None,
          watch: Callable[[], None] | None = None) -> None:
    """Runs the chief: serves the oracle to the workers until the search is over.

    Returns once every worker that asked for a trial has been told to stop and no trial
    is running. `on_poll` is called under the oracle's lock about four times a second
    (to print finished trials, or delete checkpoints no trial will need). `on_listening`
    is called once the chief listens, and `watch` after each poll, outside the lock, while
    the search goes on: an error it raises stops the serving.

    Raises:
        ConfigError: If the chief cannot listen on its address.
        TooManyFailedTrialsError: If the search ended because too many trials failed in
            a row.
    """
    from concurrent import futures

    import grpc

    from tuners import keras_tuner_internals

    oracle = tuner.oracle
    servicer = keras_tuner_internals.make_chief_servicer(
        oracle, tuner_distribution.is_failure_limit, tuner_distribution.settle_failed_trial)
    # One thread, as keras-tuner's chief has: the oracle answers one request at a time.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    keras_tuner_internals.add_servicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(distribution.address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise ConfigError(f"the chief cannot listen on {distribution.address}; choose another "
                          f"--oracle-address")
    server.start()
    try:
        if on_listening is not None:
            on_listening()
        while True:
            time.sleep(POLL_SECONDS)
            if on_poll is not None:
                _locked(lambda oracle: on_poll())(oracle)
            if servicer.stop_triggered and keras_tuner_internals.chief_may_exit(oracle):
                break
            # Outside the lock: keras-tuner's lock is not released when a call raises.
            if watch is not None:
                watch()
    finally:
        server.stop(grace=None)
    if servicer.failure is not None:
        raise TooManyFailedTrialsError(servicer.failure)
