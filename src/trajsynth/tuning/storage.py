"""Study storage: an RDB URL (SQLite by default, PostgreSQL / MySQL for many machines) or a journal file.

Several worker processes share one study by passing the same storage. Optuna hands every trial
number out once (a database transaction, or an append to the locked journal), and each waiting
(enqueued) trial is taken by exactly one worker. On SQLite that needs ``BEGIN IMMEDIATE``: SQLite
ignores ``SELECT … FOR UPDATE``, so under its default deferred transactions two workers could both
read an enqueued trial as waiting and both run it. With an RDB storage each worker sends a
heartbeat: a trial whose worker died is marked failed by the next worker that starts, and queued
again once, so a killed machine loses no trial.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from ..config import ConfigError

JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")
HEARTBEAT_S = 60  # a worker's heartbeat; a trial silent for GRACE_FACTOR heartbeats counts as dead
GRACE_FACTOR = 3


def default_url(out_dir: str | Path) -> str:
    return f"sqlite:///{(Path(out_dir) / 'optuna.db').resolve()}"


def is_journal(url: str) -> bool:
    return url.startswith("journal:") or ("://" not in url and url.endswith(JOURNAL_SUFFIXES))


def open_storage(url: str, create: bool = True, heartbeat: int = HEARTBEAT_S):
    """An Optuna storage for ``url``; every failure is one clear ``ConfigError`` before any trial starts.

    ``url``: ``sqlite:///path.db``, ``postgresql://user@host/db`` (any SQLAlchemy URL), or a journal
    file (``journal:PATH`` or a path ending in .log / .journal / .jsonl). ``create=False`` refuses a
    SQLite or journal file that does not exist yet (for analysing an existing study). ``heartbeat``:
    seconds between an RDB worker's heartbeats (journal files have none: a dead worker's trial stays
    RUNNING there).
    """
    import optuna

    if is_journal(url):
        path = Path(url.removeprefix("journal:"))
        _check_file(path, url, create)
        from optuna.storages.journal import JournalFileBackend

        try:
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        except OSError as e:
            raise ConfigError(f"cannot open journal storage {path}: {e}") from None
    if url.startswith("sqlite:///"):
        _check_file(Path(url.removeprefix("sqlite:///")), url, create)
    if "://" not in url:
        raise ConfigError(f"storage {url!r} is neither a database URL (sqlite:///…, postgresql://…) nor a journal "
                          f"file (journal:PATH or *.log)")
    return _rdb(url, heartbeat)


def _check_file(path: Path, url: str, create: bool) -> None:
    if not create and not path.exists():
        raise ConfigError(f"storage {url}: {path} does not exist (no study has been run there)")
    if not path.parent.is_dir():
        raise ConfigError(f"storage {url}: folder {path.parent} does not exist")


def _rdb(url: str, heartbeat: int, attempts: int = 6):
    """RDBStorage with heartbeats. Workers starting at once on a new database race to create its
    tables; the loser sees a unique-constraint or lock error, so that one is retried."""
    import optuna

    sqlite = url.startswith("sqlite")
    # isolation_level=None: the driver opens no transaction itself; _begin_immediate opens each one
    kwargs = {"connect_args": {"timeout": 60, "isolation_level": None}} if sqlite else {"pool_pre_ping": True}
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental, but have been stable since v2.8
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=kwargs, heartbeat_interval=heartbeat, grace_period=GRACE_FACTOR * heartbeat,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
            if sqlite:
                _begin_immediate(storage.engine)
            return storage
        except ModuleNotFoundError as e:
            raise ConfigError(f"storage {redact(url)}: its database driver is not installed ({e.name}); "
                              f"e.g. pip install psycopg2-binary for PostgreSQL") from None
        except Exception as e:  # noqa: BLE001 - SQLAlchemy raises many kinds for bad URLs and dead servers
            text = str(e)
            if attempt + 1 < attempts and ("UNIQUE constraint" in text or "locked" in text or "already exists" in text):
                time.sleep(0.2 * (attempt + 1))
                continue
            first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
            raise ConfigError(f"cannot open storage {redact(url)}: {first}") from None
    raise AssertionError("unreachable")


def _begin_immediate(engine) -> None:
    """Start every transaction on ``engine`` with ``BEGIN IMMEDIATE`` (the write lock up front).

    Optuna takes an enqueued trial by reading that it is WAITING and writing RUNNING in one
    transaction. Deferred SQLite transactions let two processes both read WAITING before either
    writes, and both then run the trial; holding the write lock from the start serialises them.
    """
    from sqlalchemy import event

    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))


def redact(url: str) -> str:
    """Hide a password in ``scheme://user:password@host``."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if sep and at and ":" in creds:
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url
