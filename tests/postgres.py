"""A throwaway PostgreSQL 15 cluster on 127.0.0.1 (Debian's server binaries), for the Postgres storage tests and benches."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from resources.paths import PROJECT_ROOT
from tests.webserver import free_port

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


class throwaway_postgres:
    """initdb + pg_ctl in a temp dir on a free port, trust auth, a ``dagster`` database; yields the port.
    Postgres refuses to run as root, so as root it runs as the ``postgres`` user."""

    def _as_owner(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *cmd], check=True, capture_output=True)

    def __enter__(self) -> int:
        self.dir = Path(tempfile.mkdtemp(prefix="benchgen-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.port, data = free_port(), self.dir / "data"
        try:
            self._as_owner(str(POSTGRES_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
            self._as_owner(str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w", "-o",
                           f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1", "start")
            self._as_owner(str(POSTGRES_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                           "dagster")
        except BaseException:
            self.__exit__()
            raise
        return self.port

    def __exit__(self, *exc) -> None:
        if (self.dir / "data" / "postmaster.pid").exists():
            self._as_owner(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def create_database(port: int, name: str) -> str:
    """A new empty database ``name`` in the throwaway cluster; returns its name."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/dagster",
                                     isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return name


def postgres_storage(port: int, db_name: str = "dagster") -> dict:
    """The ``storage`` block of deploy/dagster.postgres.yaml, pointed at a throwaway cluster's database."""
    storage = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.postgres.yaml").read_text())["storage"]
    storage["custom"]["config"]["postgres_db"].update(hostname="127.0.0.1", username="postgres", password="",
                                              db_name=db_name, port=port)
    return storage
