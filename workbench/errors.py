"""The exceptions workbench raises: each carries one sentence saying what is wrong and what to do."""

import difflib
from collections.abc import Iterable


class WorkbenchError(Exception):
    """A problem the user can fix; ``str(error)`` is one sentence naming what to change."""


class ConfigError(WorkbenchError):
    """The project configuration (``workbench.yml``, environment, ``.env``) is invalid."""


class DatabaseError(WorkbenchError):
    """The database refused, is unreachable, or a query failed."""


class DataFileError(WorkbenchError):
    """An input data file is missing or malformed; the message names the file and line."""


def shown(value: object, width: int = 60) -> str:
    """``repr(value)`` for a message, cut to ``width`` characters with its full length noted, so
    that a hostile or huge value (100,000 characters) never turns a sentence into a page."""
    text = repr(value)
    if len(text) <= width:
        return text
    size = f" ({len(value):,} characters)" if isinstance(value, (str, bytes)) else ""
    return f"{text[:width]}…{size}"


def did_you_mean(name: object, choices: Iterable[object]) -> str:
    """`` Did you mean 'x'?`` naming the choice closest to ``name`` (difflib's ratio ≥ 0.6), to end
    a sentence with; "" when none is close."""
    names = {str(c): c for c in choices}
    close = difflib.get_close_matches(str(name), list(names), n=1, cutoff=0.6)
    return f" Did you mean {shown(names[close[0]])}?" if close else ""
