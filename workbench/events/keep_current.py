"""Keep profiles current: every ``events.resolve_every_seconds``, associate the events that lack a
profile (those the service received and rows other systems inserted directly) with one, then
rewrite the declared properties in ``profile_property_values`` when events were associated.

The HTTP service runs :class:`ProfileKeeper` in a thread beside its requests;
``workbench events resolve --watch`` runs :func:`keep_profiles_current` in the foreground.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from workbench.db.connection import SqlDatabase
from workbench.errors import WorkbenchError
from workbench.events.identities import ResolutionCounts, resolve_identities
from workbench.events.properties import refresh_property_values
from workbench.events.settings import EventSettings


def keep_profiles_current(
    db: SqlDatabase,
    settings: EventSettings,
    stop: threading.Event,
    lock: threading.Lock,
    report: Callable[[ResolutionCounts | WorkbenchError], None] = lambda outcome: None,
    once: bool = False,
) -> None:
    """Resolve identities (and refresh the property values: in the first round, then after rounds
    that associated events) now and every ``settings.resolve_every_seconds`` until ``stop`` is set,
    holding ``lock`` (the writers' lock) during each round; ``report`` receives each round's counts,
    or the error that ended it (a database gone away, a bad property): the next round tries again.
    ``once``: one round, whose error is raised."""
    refreshed = False
    while not stop.is_set():
        outcome: ResolutionCounts | WorkbenchError
        try:
            with lock:
                outcome = resolve_identities(db, settings=settings)
                if outcome.associated or not refreshed:
                    refresh_property_values(db, settings)
                    refreshed = True
        except WorkbenchError as exc:
            if once:
                raise
            outcome = exc
        report(outcome)
        if once:
            return
        stop.wait(settings.resolve_every_seconds)


class ProfileKeeper:
    """:func:`keep_profiles_current` in a daemon thread; ``stop()`` ends it after the current round."""

    def __init__(self, db: SqlDatabase, settings: EventSettings, lock: threading.Lock):
        self._stop = threading.Event()
        self.rounds = 0
        self.last: ResolutionCounts | None = None
        self.error: str | None = None  # why the latest round failed, None after one that succeeded
        self._thread = threading.Thread(
            target=keep_profiles_current, args=(db, settings, self._stop, lock, self._record), daemon=True
        )

    def _record(self, outcome: ResolutionCounts | WorkbenchError) -> None:
        if isinstance(outcome, WorkbenchError):
            self.error = str(outcome)
            return
        self.rounds, self.last, self.error = self.rounds + 1, outcome, None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
