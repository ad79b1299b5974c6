"""Keep profiles current: every ``events.resolve_every_seconds``, associate the events that lack a
profile (those the service received and rows other systems inserted directly) with one.

The HTTP service runs :class:`ProfileKeeper` in a thread beside its requests;
``workbench events resolve --watch`` runs :func:`keep_profiles_current` in the foreground.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from workbench.db.connection import SqlDatabase
from workbench.events.identities import ResolutionCounts, resolve_identities
from workbench.events.settings import EventSettings


def keep_profiles_current(
    db: SqlDatabase,
    settings: EventSettings,
    stop: threading.Event,
    lock: threading.Lock,
    report: Callable[[ResolutionCounts], None] = lambda counts: None,
) -> None:
    """Resolve identities now and then every ``settings.resolve_every_seconds`` until ``stop`` is set,
    holding ``lock`` (the writers' lock) during each round; ``report`` receives each round's counts."""
    while not stop.is_set():
        with lock:
            counts = resolve_identities(db, settings=settings)
        report(counts)
        stop.wait(settings.resolve_every_seconds)


class ProfileKeeper:
    """:func:`keep_profiles_current` in a daemon thread; ``stop()`` ends it after the current round."""

    def __init__(self, db: SqlDatabase, settings: EventSettings, lock: threading.Lock):
        self._stop = threading.Event()
        self.rounds = 0
        self.last: ResolutionCounts | None = None
        self._thread = threading.Thread(
            target=keep_profiles_current, args=(db, settings, self._stop, lock, self._record), daemon=True
        )

    def _record(self, counts: ResolutionCounts) -> None:
        self.rounds, self.last = self.rounds + 1, counts

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
