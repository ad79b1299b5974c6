"""Test-only audit of every ``workbench.connect()`` call in every Python process started with this
folder on ``PYTHONPATH`` and ``$WB_CONNECT_AUDIT`` naming a log file (CLI commands, papermill
kernels, Voila's kernels): one JSON line per call with the caller's module and function, whether
the session is read-only, and, for read-only sessions, the fate of a write attempted through it."""

import os

_LOG = os.environ.get("WB_CONNECT_AUDIT")

if _LOG:
    import json
    import sys

    import workbench
    import workbench.db.connection as _connection

    _original = _connection.connect
    _PROBE = "CREATE TABLE wb_write_probe AS SELECT 1 AS x"

    def _caller() -> tuple[str, str]:
        frame = sys._getframe(2)
        while frame is not None and frame.f_globals.get("__name__") in (__name__, "workbench.db.connection"):
            frame = frame.f_back
        if frame is None:
            return "?", "?"
        return str(frame.f_globals.get("__name__")), frame.f_code.co_name

    def connect(*args, **kwargs):
        db = _original(*args, **kwargs)
        module, function = _caller()
        entry = {
            "pid": os.getpid(),
            "module": module,
            "function": function,
            "read_only": db.read_only,
            "dialect": db.dialect.name,
            "database": db.settings.display_url,
            "statement_timeout_s": db.statement_timeout_s,
            "config_path": str(db.config_path),
            "argv": sys.argv[:3],
        }
        if db.read_only:
            try:
                with db.engine.begin() as conn:
                    conn.exec_driver_sql(_PROBE)
                entry["write"] = "succeeded"
            except Exception as exc:  # the refusal is what we record
                entry["write"] = "refused"
                entry["error"] = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
        with open(_LOG, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        return db

    _connection.connect = connect
    workbench.connect = connect
