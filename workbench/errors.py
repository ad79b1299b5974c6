"""The exceptions workbench raises: each carries one sentence saying what is wrong and what to do."""


class WorkbenchError(Exception):
    """A problem the user can fix; ``str(error)`` is one sentence naming what to change."""


class ConfigError(WorkbenchError):
    """The project configuration (``workbench.yml``, environment, ``.env``) is invalid."""


class DatabaseError(WorkbenchError):
    """The database refused, is unreachable, or a query failed."""


class DataFileError(WorkbenchError):
    """An input data file is missing or malformed; the message names the file and line."""
