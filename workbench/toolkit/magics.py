"""The ``%%sql`` cell magic: plain SQL in a notebook cell, run on the workbench connection.

Load it once per notebook with ``%load_ext workbench.toolkit.magics``, then::

    %%sql recent
    SELECT path, COUNT(*) AS views FROM pages WHERE timestamp >= {since} GROUP BY path

``{name}`` and ``:name`` are bound parameters whose values come from the notebook's variables
(never pasted into the SQL text). The result is a DataFrame, returned (so it displays) and, when
a name follows ``%%sql``, also stored in that variable. The connection is the notebook's ``db``
when it is a :class:`~workbench.db.Database`, else ``workbench.connect()`` (opened once);
``--db NAME`` picks another variable and ``--limit N`` changes the row limit (``--limit 0``: all).
"""

from __future__ import annotations

import argparse
import re
import shlex
from typing import Any

import sqlalchemy as sa

from workbench.db import Database
from workbench.db.connection import DEFAULT_ROW_LIMIT, connect
from workbench.db.dialects import IDENTIFIER
from workbench.errors import WorkbenchError

_BRACE_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


_QUOTED = re.compile(r"('(?:[^']|'')*')")


def bound_sql(cell: str) -> str:
    """``cell`` with every ``{name}`` outside quoted literals turned into the ``:name`` placeholder."""
    parts = _QUOTED.split(cell)  # odd items are '...' literals, left as written
    return "".join(part if i % 2 else _BRACE_PARAMETER.sub(r":\1", part) for i, part in enumerate(parts))


def parameter_names(query: str) -> list[str]:
    """The ``:name`` placeholders SQLAlchemy will bind in ``query``, in order."""
    return list(sa.text(query).compile().params)


def _arguments(line: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="%%sql", add_help=False, exit_on_error=False)
    parser.add_argument("result_var", nargs="?")
    parser.add_argument("--db", default=None)
    parser.add_argument("--limit", type=int, default=DEFAULT_ROW_LIMIT)
    try:
        args, unknown = parser.parse_known_args(shlex.split(line))
    except (argparse.ArgumentError, ValueError) as exc:
        raise WorkbenchError(f"%%sql {line}: {exc}; usage: %%sql [result_var] [--db NAME] [--limit N].") from None
    if unknown:
        raise WorkbenchError(
            f"%%sql {line}: unexpected {' '.join(unknown)}; usage: %%sql [result_var] [--db NAME] [--limit N]."
        )
    for name in (args.result_var, args.db):
        if name is not None and not IDENTIFIER.match(name):
            raise WorkbenchError(f"%%sql {line}: {name!r} is not a Python variable name.")
    return args


class SqlMagic:
    """Holds the shell and the connection the magic opened itself (at most one)."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._own_db: Database | None = None

    def database(self, variable: str | None) -> Database:
        namespace = self.shell.user_ns
        if variable is not None:
            db = namespace.get(variable)
            if not isinstance(db, Database):
                raise WorkbenchError(
                    f"%%sql --db {variable}: that variable is not a workbench connection; set {variable} = wb.connect() first."
                )
            return db
        if isinstance(namespace.get("db"), Database):
            return namespace["db"]
        if self._own_db is None:
            self._own_db = connect()
        return self._own_db

    def run(self, line: str, cell: str):
        args = _arguments(line)
        query = bound_sql(cell)
        namespace = self.shell.user_ns
        names = parameter_names(query)
        missing = [n for n in names if n not in namespace]
        if missing:
            raise WorkbenchError(
                f"%%sql: the parameter(s) {', '.join(missing)} are not defined in the notebook; assign them in a cell above."
            )
        frame = self.database(args.db).sql(query, limit=args.limit or None, **{n: namespace[n] for n in names})
        if args.result_var:
            namespace[args.result_var] = frame
        return frame


def load_ipython_extension(shell: Any) -> None:
    """Called by ``%load_ext workbench.toolkit.magics``: registers ``%%sql``."""
    from IPython.core.error import UsageError

    magic = SqlMagic(shell)

    def sql(line: str, cell: str):
        try:
            return magic.run(line, cell)
        except WorkbenchError as exc:  # IPython shows a UsageError as one line, not a traceback
            raise UsageError(str(exc)) from None

    shell.register_magic_function(sql, magic_kind="cell", magic_name="sql")
