"""Which database a test runs on: an SQLite file in its data dir, or a fresh database on
a throwaway PostgreSQL cluster that the test run starts itself.

The cluster lives in a temp dir, listens on 127.0.0.1 (and a unix socket in that dir) on
a free port, trusts local connections and is deleted when the session ends. initdb
refuses to run as root, so under root the server runs as the ``postgres`` (or
``nobody``) user through ``runuser``. Durability is switched off (``fsync=off``): this
cluster exists for one test run, and the SQLite tests keep the durability guarantees.

A test's database starts migrated: the migrations run once per session into a template
(an SQLite file copied into each test's data dir; a PostgreSQL template database), and
``prepare`` then finds the schema current, as a restarted server does. The migration
tests ask for an empty database (``migrated=False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import asyncpg
import pytest

Backend = Literal["sqlite", "postgres"]
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")
SUPERUSER = "adcp"


class PostgresUnavailable(RuntimeError):
    """Why no cluster could be started (shown in the skip reason and the summary)."""


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def _run_as() -> tuple[list[str], int | None, int | None]:
    """The command prefix (and uid/gid) that runs the server as a non-root user."""
    if os.geteuid() != 0:
        return [], None, None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root and runuser is missing (initdb refuses root)")
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return [runuser, "-u", name, "--"], entry.pw_uid, entry.pw_gid
    raise PostgresUnavailable("running as root and no 'postgres' or 'nobody' user exists")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresCluster:
    root: Path
    port: int
    prefix: list[str]
    pg_ctl: str
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _template: str | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @classmethod
    def start(cls) -> PostgresCluster:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise PostgresUnavailable("initdb/pg_ctl not found (install PostgreSQL)")
        prefix, uid, gid = _run_as()
        root = Path(tempfile.mkdtemp(prefix="adcp-pg-"))
        if uid is not None and gid is not None:
            os.chown(root, uid, gid)
        cluster = cls(root=root, port=_free_port(), prefix=prefix, pg_ctl=pg_ctl)
        try:
            cluster._run(
                [
                    initdb,
                    "-D",
                    str(cluster.data),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "-N",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ],
            )
            options = (
                f"-p {cluster.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
            )
            cluster._run(
                [
                    pg_ctl,
                    "-D",
                    str(cluster.data),
                    "-l",
                    str(root / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "30",
                    "start",
                ],
            )
        except PostgresUnavailable:
            cluster.stop()
            raise
        return cluster

    def _run(self, argv: list[str]) -> None:
        try:
            result = subprocess.run(
                [*self.prefix, *argv], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"{Path(argv[0]).name} failed: {exc}") from exc
        if result.returncode != 0:
            log = self.root / "server.log"
            detail = (result.stderr or result.stdout).strip()
            if log.exists():
                detail += "\n" + log.read_text()[-2000:]
            raise PostgresUnavailable(f"{Path(argv[0]).name} failed: {detail}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t", *, migrated: bool = False) -> str:
        """A new database, empty or (``migrated``) at the current schema; returns its
        SQLAlchemy URL."""
        name = f"{prefix}{next(self._names)}"
        template = f' TEMPLATE "{self._migrated_template()}"' if migrated else ""
        self.execute(f'CREATE DATABASE "{name}"{template}')
        return self.url(name)

    def _migrated_template(self) -> str:
        """A database at the current schema that nothing stays connected to (CREATE
        DATABASE … TEMPLATE needs that), made on first use."""
        if self._template is None:
            url = self.create_database("migrated")
            _in_thread(_migrate(url))
            self._template = url.rsplit("/", 1)[1]
        return self._template

    def execute(self, sql: str) -> None:
        """Run one admin statement. From a worker thread, so it works both inside a
        running event loop (async fixtures) and outside one."""

        async def run() -> None:
            conn = await asyncpg.connect(
                host="127.0.0.1", port=self.port, user=SUPERUSER, database="postgres"
            )
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        _in_thread(run())

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def _in_thread(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` to completion on a loop of its own in a worker thread: works both
    inside a running event loop (async fixtures) and outside one."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work).result()


async def _migrate(url: str) -> None:
    from adcp_agent.db.engine import create_database
    from adcp_agent.db.migrate import upgrade_to_head

    db = create_database(url)
    try:
        await upgrade_to_head(db)
    finally:
        await db.dispose()


@dataclass
class Selection:
    """The session's database state: the default backend, the backend of the running
    test, and the cluster once something asked for Postgres."""

    default: Backend = "sqlite"
    active: Backend | None = None
    cluster: PostgresCluster | None = None
    unavailable: str | None = None
    disabled: str | None = None  # why Postgres must not be used at all (--db=sqlite)
    postgres_tests: int = 0
    sqlite_template: Path | None = None
    merged_ports: list[int] = field(default_factory=list)  # workers' clusters (xdist)

    @property
    def current(self) -> Backend:
        return self.active or self.default

    def postgres(self) -> PostgresCluster:
        """The cluster, started on first use; PostgresUnavailable if it cannot be."""
        if self.disabled is not None:
            raise PostgresUnavailable(self.disabled)
        if self.cluster is None:
            if self.unavailable is not None:
                raise PostgresUnavailable(self.unavailable)
            try:
                self.cluster = PostgresCluster.start()
            except PostgresUnavailable as exc:
                self.unavailable = str(exc)
                raise
        return self.cluster

    def report(self) -> dict[str, Any]:
        """What the summary says about PostgreSQL (plain values: xdist workers send it
        to the controller, which ``merge``s theirs)."""
        ports = [self.cluster.port] if self.cluster is not None else []
        return {
            "tests": self.postgres_tests,
            "ports": ports + self.merged_ports,
            "unavailable": self.unavailable,
            "disabled": self.disabled,
        }

    def merge(self, report: dict[str, Any]) -> None:
        self.postgres_tests += report["tests"]
        self.merged_ports.extend(report["ports"])
        self.unavailable = self.unavailable or report["unavailable"]
        self.disabled = self.disabled or report["disabled"]

    def migrated_sqlite(self) -> Path:
        """An SQLite file at the current schema, made on first use."""
        if self.sqlite_template is None:
            path = Path(tempfile.mkdtemp(prefix="adcp-sqlite-")) / SQLITE_FILE
            _in_thread(_migrate(f"sqlite+aiosqlite:///{path}"))
            self.sqlite_template = path
        return self.sqlite_template


SELECTION = Selection()
SQLITE_FILE = "adcp-agent.db"  # where Settings puts the database in its data dir


def database_settings(
    data_dir: Path, backend: Backend | None = None, *, migrated: bool = True
) -> dict[str, str]:
    """Keyword arguments for ``Settings``: nothing for SQLite (the file goes in
    ``data_dir``, a copy of the migrated template unless ``migrated=False`` or one is
    there already), a fresh Postgres database otherwise."""
    if (backend or SELECTION.current) == "sqlite":
        target = data_dir / SQLITE_FILE
        if migrated and not target.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            with (
                contextlib.closing(sqlite3.connect(SELECTION.migrated_sqlite())) as source,
                contextlib.closing(sqlite3.connect(target)) as copy,
            ):
                source.backup(copy)
        return {}
    try:
        cluster = SELECTION.postgres()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL: {exc}")
    return {"DATABASE_URL": cluster.create_database(migrated=migrated)}


def per_backend(
    name: str,
    start: Callable[[pytest.TempPathFactory, Backend], Iterator[Any]],
    scope: Literal["module", "session"] = "module",
) -> tuple[Any, Any, Any]:
    """Fixtures for a server kept per database backend: ``{name}_sqlite`` and
    ``{name}_postgres`` (one server each at ``scope``, made by ``start``, which yields
    it) and ``{name}`` (the one of the test's backend). Bind all three in the module
    that uses them: ``x, x_sqlite, x_postgres = per_backend("x", start)``."""

    def at(backend: Backend) -> Any:
        def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
            yield from start(tmp_path_factory, backend)

        return pytest.fixture(scope=scope, name=f"{name}_{backend}")(server)

    def current(request: pytest.FixtureRequest, backend: Backend) -> Any:
        return request.getfixturevalue(f"{name}_{backend}")

    return pytest.fixture(name=name)(current), at("sqlite"), at("postgres")


def live_servers(
    name: str,
    setup: Callable[[Any], Any],
    scope: Literal["module", "session"] = "module",
) -> tuple[Any, Any, Any]:
    """``per_backend`` fixtures of a module's own live server: the demo tenant plus
    what ``setup(state)`` adds, on the test's backend."""
    from tests.support import start_live_server

    def start(factory: pytest.TempPathFactory, backend: Backend) -> Iterator[Any]:
        data_dir = factory.mktemp(f"{name}_{backend}")
        thread, server = start_live_server(data_dir, setup, **database_settings(data_dir, backend))
        yield server
        thread.stop()

    return per_backend(name, start, scope=scope)
