"""Study storage: an RDB URL (SQLite by default, PostgreSQL / MySQL for many machines) or a journal file.

Several worker processes share one study by passing the same storage. Optuna hands every trial
number out once (a database transaction, or an append to the locked journal), and each waiting
(enqueued) trial is taken by exactly one worker. With an RDB storage each worker sends a
heartbeat: a trial whose worker died is marked failed by the next worker that starts, and queued
again once, so a killed machine loses no trial.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..config import ConfigError

JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")
HEARTBEAT_S = 60
GRACE_S = 180


def default_url(out_dir: str | Path) -> str:
    return f"sqlite:///{(Path(out_dir) / 'optuna.db').resolve()}"


def is_journal(url: str) -> bool:
    return url.startswith("journal:") or ("://" not in url and url.endswith(JOURNAL_SUFFIXES))


def open_storage(url: str, create: bool = True):
    """An Optuna storage for ``url``; every failure is one clear ``ConfigError`` before any trial starts.

    ``url``: ``sqlite:///path.db``, ``postgresql://user@host/db`` (any SQLAlchemy URL), or a journal
    file (``journal:PATH`` or a path ending in .log / .journal / .jsonl). ``create=False`` refuses a
    SQLite or journal file that does not exist yet (for analysing an existing study).
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
    return _rdb(url)


def _check_file(path: Path, url: str, create: bool) -> None:
    if not create and not path.exists():
        raise ConfigError(f"storage {url}: {path} does not exist (no study has been run there)")
    if not path.parent.is_dir():
        raise ConfigError(f"storage {url}: folder {path.parent} does not exist")


def _rdb(url: str):
    import optuna

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():  # heartbeats are marked experimental, but have been stable since v2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
    except ModuleNotFoundError as e:
        raise ConfigError(f"storage {_redact(url)}: its database driver is not installed ({e.name}); "
                          f"e.g. pip install psycopg2-binary for PostgreSQL") from None
    except Exception as e:  # noqa: BLE001 - SQLAlchemy raises many kinds for bad URLs and dead servers
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"cannot open storage {_redact(url)}: {first}") from None


def _redact(url: str) -> str:
    """Hide a password in ``scheme://user:password@host``."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if sep and at and ":" in creds:
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url
