"""Shared fixtures, and the choice of database each test runs on.

``uv run pytest`` runs every test on SQLite and, in addition, the modules in
``BOTH_BACKENDS`` on a temporary PostgreSQL cluster (ids ``[sqlite]``/``[postgres]``).
``--db=postgres`` (or ``ADCP_TEST_DB=postgres``) runs the whole suite on PostgreSQL;
``--db=sqlite`` skips PostgreSQL. Without PostgreSQL binaries the Postgres twins are
skipped and the terminal summary says so."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adcp_agent.config import Settings
from adcp_agent.server import prepare
from adcp_agent.services import catalog_admin, tenants
from adcp_agent.state import AppState
from tests.databases import (
    BACKENDS,
    SELECTION,
    Backend,
    PostgresUnavailable,
    database_settings,
    live_servers,
)
from tests.support import DEMO_TOKEN, HARBOR_CATALOG

# Every module whose behaviour depends on the database also runs on PostgreSQL in the
# default run: schema, auth, discovery and the catalog cache, the media-buy lifecycle
# with idempotency, listing, creatives, delivery and feedback, notifications and
# webhooks, the sandbox test controller, accounts, tenant admin, conversations and the
# REST tool surface.
# Left to SQLite (``--db=postgres`` runs them on PostgreSQL too): adapters against
# their fake servers, the chat model plumbing, the CLI and simulation processes, the
# benchmark harness, the Inspector and the linters. Module-scoped servers are kept per
# backend (``sim``, ``sbx``); test_performance_paths picks its backends per test.
BOTH_BACKENDS = frozenset(
    {
        "test_migrations",
        "test_idempotency",
        "test_auth",
        "test_discovery",
        "test_signals",
        "test_media_buys",
        "test_media_updates",
        "test_new_packages",
        "test_flight_moves",
        "test_reporting_webhooks",
        "test_sibling_capacity",
        "test_buy_health",
        "test_creative_archive",
        "test_creative_push",
        "test_industries",
        "test_governance",
        "test_conversions",
        "test_audiences",
        "test_targeting_exclusions",
        "test_dayparts",
        "test_optimization_goals",
        "test_package_flights",
        "test_governance_delivery",
        "test_creative_deadline",
        "test_inline_creatives",
        "test_buy_history",
        "test_update_races",
        "test_interrupted",
        "test_local_bookings",
        "test_malformed_controller",
        "test_sealing",
        "test_buy_listing",
        "test_creatives",
        "test_creative_listing",
        "test_task_listing",
        "test_unsupported_fields",
        "test_delivery",
        "test_delivery_feedback",
        "test_notifications",
        "test_webhooks",
        "test_test_controller",
        "test_test_controller_fixtures",
        "test_accounts",
        "test_tenant_admin_api",
        "test_tenant_admin_principals",
        "test_tenant_admin_approvals",
        "test_tenant_admin_audit",
        "test_tools_api",
        "test_chat_conversations",
        "test_reservations",
        "test_group_commit",
        "test_statements",
        "test_statements_together",
        "test_reading_sessions",
        "test_bad_input",
        "test_malformed_arguments",
        "test_malformed_rest",
        "test_lifecycle_walk",
    }
)

OTHER_TOKEN = "adcp_test_other_tenant_token_abcdef0123"
PRIVATE_TOKEN = "adcp_test_private_tenant_token_abcdef01"
ADMIN_TOKEN = "adcp_test_demo_admin_token_0123456789ab"
SECOND_TOKEN = "adcp_test_demo_second_buyer_token_01234"


async def _second_tenants(state: AppState) -> dict[str, str]:
    """A second publisher (public discovery on) and a third that forbids anonymous use."""
    other = await tenants.create_tenant(
        state.db,
        state.registry,
        name="Harbor Radio",
        subdomain="harbor",
        tenant_id="harbor",
        features={"account_approval": "manual"},
    )
    await catalog_admin.load_catalog(
        state.db,
        other.tenant_id,
        **HARBOR_CATALOG,
        signals=[
            {
                "signal_id": "harbor_commuters",
                "name": "Harbor Commuters",
                "description": "Morning commuters",
                "signal_type": "audience",
            }
        ],
    )
    await tenants.create_principal(
        state.db,
        tenant_id="harbor",
        name="Harbor buyer",
        token=OTHER_TOKEN,
        principal_id="harbor_buyer",
    )
    await tenants.create_tenant(
        state.db,
        state.registry,
        name="Closed Pub",
        subdomain="closed",
        tenant_id="closed",
        public_discovery=False,
    )
    await tenants.create_principal(
        state.db,
        tenant_id="closed",
        name="Closed buyer",
        token=PRIVATE_TOKEN,
    )
    await tenants.create_principal(
        state.db,
        tenant_id="demo",
        name="Riverside ad ops",
        token=ADMIN_TOKEN,
        principal_id="demo_admin",
        role="admin",
    )
    await tenants.create_principal(
        state.db,
        tenant_id="demo",
        name="Second buyer",
        token=SECOND_TOKEN,
        principal_id="demo_second",
    )
    return {"other": "harbor", "closed": "closed"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("both", "sqlite", "postgres"),
        default=os.environ.get("ADCP_TEST_DB", "both"),
        help="both (default): SQLite, plus the representative modules on PostgreSQL too; "
        "sqlite: SQLite only; postgres: every test on PostgreSQL. Env: ADCP_TEST_DB.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        # Tests start real `adcp-agent` processes (serve, the CLI); without bytecode each
        # one recompiles every module (~2 s). Keep the tree free of .pyc files as asked,
        # but let those processes share a cache in the temp dir.
        os.environ.setdefault(
            "PYTHONPYCACHEPREFIX", os.path.join(tempfile.gettempdir(), "adcp-agent-pycache")
        )
    choice = config.getoption("--db")
    SELECTION.default = "postgres" if choice == "postgres" else "sqlite"
    if choice == "sqlite":
        SELECTION.disabled = "not run (--db=sqlite)"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if (
        metafunc.config.getoption("--db") == "both"
        and module in BOTH_BACKENDS
        and "backend" in metafunc.fixturenames
    ):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    if SELECTION.cluster is not None:
        SELECTION.cluster.stop()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (the default, see pyproject.toml): one worker a core, at most four —
    each worker starts its own live servers and PostgreSQL cluster."""
    return max(1, min(os.cpu_count() or 1, 4))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under xdist each worker has its own cluster: report what this one ran."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["postgres"] = SELECTION.report()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """On the xdist controller: add up the workers' PostgreSQL reports."""
    report = getattr(node, "workeroutput", {}).get("postgres")
    if report is not None:
        SELECTION.merge(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report = SELECTION.report()
    if report["unavailable"] is not None:
        terminalreporter.write_sep(
            "!", f"PostgreSQL tests SKIPPED: {report['unavailable']}", yellow=True, bold=True
        )
    elif report["ports"]:
        where = ", ".join(f"127.0.0.1:{port}" for port in report["ports"])
        clusters = "a temporary cluster" if len(report["ports"]) == 1 else "temporary clusters"
        terminalreporter.write_line(
            f"PostgreSQL: {report['tests']} tests ran on {clusters} ({where})"
        )
    elif report["disabled"] is not None:
        terminalreporter.write_line(f"PostgreSQL: {report['disabled']}")


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The database of this test (see the module docstring)."""
    name: Backend = getattr(request, "param", SELECTION.default)
    if name == "postgres":
        try:
            SELECTION.postgres()
        except PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL: {exc}")
        SELECTION.postgres_tests += 1
    SELECTION.active = name
    yield name
    SELECTION.active = None


live, live_sqlite, live_postgres = live_servers("live", _second_tenants, scope="session")


@pytest.fixture
async def prepared_state(tmp_path: Path, backend: Backend) -> AsyncIterator[AppState]:
    """An app state on a fresh database of this test's backend, prepared as ``serve``
    would (migrated, demo tenant and token), without a server."""
    settings = Settings(
        data_dir=tmp_path, demo_token=DEMO_TOKEN, **database_settings(tmp_path, backend)
    )
    app_state = AppState.from_settings(settings)
    await prepare(app_state)
    yield app_state
    await app_state.db.dispose()
