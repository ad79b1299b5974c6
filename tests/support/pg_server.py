"""A throwaway PostgreSQL server for tests and benchmarks: initdb, start on 127.0.0.1, stop.

The server binaries come from Debian's ``postgresql`` package. PostgreSQL refuses to run as root,
so when we are root the server runs as the unprivileged ``nobody`` user in a folder it owns.
Password authentication (SCRAM) is on, so secrets handling is exercised for real.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import WorkbenchError

SUPERUSER = "workbench"  # creates databases and roles; never handed to the workbench
APP_ROLE = "workbench_app"  # owns every database the tests create: no superuser, no server files or programs


def find_pg_bin() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl`` (PATH first, then Debian's layout)."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    raise WorkbenchError(
        "PostgreSQL server binaries (initdb, pg_ctl) are not installed: run `make system-deps` (as root) or `apt-get install postgresql`."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A running throwaway server; ``url`` has no password, ``password`` is given separately."""

    root: Path
    port: int
    password: str
    bin_dir: Path
    run_as: str | None = None
    log_statements: bool = False
    _running: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        """The URL of ``database`` as :data:`APP_ROLE`, without the password (give it as
        $WORKBENCH_DATABASE_PASSWORD)."""
        return self._url(database).render_as_string()

    def url_with_password(self, database: str = "postgres", role: str = APP_ROLE) -> str:
        """The URL of ``database`` as ``role`` carrying the password, for tests that pass it as one string."""
        return self._url(database, role).set(password=self.password).render_as_string(hide_password=False)

    def _url(self, database: str, role: str = APP_ROLE):
        import sqlalchemy as sa

        return sa.URL.create("postgresql+psycopg", username=role, host="127.0.0.1", port=self.port, database=database)

    def admin(self):
        """An autocommit psycopg connection to ``postgres`` as the superuser."""
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, password=self.password, dbname="postgres", autocommit=True
        )

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        user = {"user": self.run_as} if self.run_as else {}
        return subprocess.run(args, cwd=self.root, check=True, capture_output=True, text=True, **user, **kwargs)

    def start(self) -> PostgresServer:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.run_as:
            _chown_tree(self.root, self.run_as)
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        pwfile.unlink()
        self.restart()
        with self.admin() as conn:  # the role the tests work as: it owns its databases and nothing more
            conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{self.password}' NOSUPERUSER NOCREATEDB NOCREATEROLE")
        return self

    def restart(self) -> PostgresServer:
        """Start the server on its existing data folder (after :meth:`stop`, e.g. in fault tests)."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        if self.log_statements:
            options += " -c log_statement=all"
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-o",
            options,
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "start",
        )
        self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
            self._running = False

    def create_database(self, name: str, owner: str = APP_ROLE) -> str:
        """Create database ``name`` (a plain identifier) owned by ``owner`` and return its URL without password."""
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        return self.url(name)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _chown_tree(root: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for path in [root, *root.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def start_postgres(log_statements: bool = False) -> PostgresServer:
    """Start a fresh server on a free port under a new temporary folder (as ``nobody`` when root)."""
    root = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    os.chmod(root, 0o700)
    run_as = "nobody" if os.geteuid() == 0 else None
    server = PostgresServer(
        root=root,
        port=free_port(),
        password=secrets.token_urlsafe(16),
        bin_dir=find_pg_bin(),
        run_as=run_as,
        log_statements=log_statements,
    )
    try:
        return server.start()
    except subprocess.CalledProcessError as exc:
        log = server.log_file.read_text() if server.log_file.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise WorkbenchError(
            f"The throwaway PostgreSQL server did not start: {exc.stderr.strip() or log.strip()[-500:]}"
        ) from None
