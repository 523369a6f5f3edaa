"""A throwaway PostgreSQL server for the tests: initdb in a temporary folder, a free port.

:func:`postgres_server` finds Debian's PostgreSQL binaries (``initdb``, ``pg_ctl``) on PATH
or under ``/usr/lib/postgresql/*/bin`` (``.ci/run`` installs the ``postgresql`` package
when they are missing), creates a cluster in a temporary directory owned by the current
user (PostgreSQL refuses to run as root, so as root the cluster runs as ``nobody``
through ``setpriv``/``su``), starts it on a free loopback port with its unix socket in the
same directory, creates a database and yields its SQLAlchemy URL. It stops the server
with ``pg_ctl stop`` and, failing that, kills the postmaster by the PID in its
``postmaster.pid``: never by name.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["find_postgres_bin", "postgres_server"]


def find_postgres_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is absent."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    for pg_ctl in reversed(found):
        folder = Path(pg_ctl).parent
        if (folder / "initdb").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user(command: list[str], user: str | None) -> list[str]:
    if user is None:
        return command
    if shutil.which("setpriv"):
        import pwd

        entry = pwd.getpwnam(user)
        return [
            "setpriv",
            f"--reuid={entry.pw_uid}",
            f"--regid={entry.pw_gid}",
            "--clear-groups",
            *command,
        ]
    return ["su", "-s", "/bin/sh", user, "-c", " ".join(f"'{part}'" for part in command)]


@contextmanager
def postgres_server(folder: Path, database: str = "cdm") -> Iterator[str]:
    """Run a PostgreSQL server in ``folder`` for the duration of the block.

    As root, ``folder``'s parents must be traversable by ``nobody`` (a fresh folder under
    ``/tmp``, not pytest's private temporary tree).

    Yields
    ------
    str
        ``postgresql+psycopg://USER@127.0.0.1:PORT/DATABASE`` (trust authentication on
        loopback only).

    """
    bindir = find_postgres_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL binaries (initdb, pg_ctl) not found")
    user = "nobody" if os.geteuid() == 0 else None
    folder.mkdir(parents=True, exist_ok=True)
    data, sockets = folder / "data", folder / "sock"
    sockets.mkdir(exist_ok=True)
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        for path in (folder, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    role = user or os.environ.get("USER") or "postgres"
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    subprocess.run(
        _as_user(
            [str(bindir / "initdb"), "-D", str(data), "-U", role, "-A", "trust", "-E", "UTF8"],
            user,
        ),
        check=True,
        capture_output=True,
        env=env,
    )
    port = _free_port()
    options = f"-k {sockets} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-o", options]
    subprocess.run(
        _as_user([*start, "-w", "start"], user), check=True, capture_output=True, env=env
    )
    try:
        import sqlalchemy as sa

        admin = sa.create_engine(
            f"postgresql+psycopg://{role}@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
        admin.dispose()
        yield f"postgresql+psycopg://{role}@127.0.0.1:{port}/{database}"
    finally:
        stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
        result = subprocess.run(_as_user(stop, user), capture_output=True, env=env)
        pid_file = data / "postmaster.pid"
        if result.returncode != 0 and pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
