"""pg_stat_statements installed but not preloaded: a real server started without the
library (a throwaway cluster of the embedded binaries), and the page that explains it."""

import html
import shutil
import tempfile
from pathlib import Path

import pytest
from django.urls import reverse

import devdb

pytestmark = pytest.mark.django_db


@pytest.fixture
def unloaded_server(monkeypatch):
    """A cluster whose server runs without pg_stat_statements in shared_preload_libraries."""
    for var in ("PORTAL_PGDATA", "PORTAL_DB_NAME"):
        monkeypatch.delenv(var, raising=False)
    # /tmp with mode 755: as root the server runs as an unprivileged user.
    base = Path(tempfile.mkdtemp(prefix="diag-preload-", dir="/tmp"))
    base.chmod(0o755)
    pgdata = base / "pg"
    try:
        server = devdb.ensure_running(pgdata)
        with devdb._connect(server.port, server.password, "postgres") as conn:
            # postgresql.auto.conf wins over the launcher's settings file; another
            # contrib library stands in for "the libraries a server happens to load".
            conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'auto_explain'")
        devdb.stop(pgdata)
        server = devdb.ensure_running(pgdata)  # also creates the extension in "portal"
        yield server
    finally:
        devdb.stop(pgdata)
        shutil.rmtree(devdb._resolve(pgdata).socket_dir, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


def test_an_installed_but_not_preloaded_extension_says_how_to_preload_it(
    admin_client, add_alias, unloaded_server
):
    alias = add_alias(
        "unloaded",
        HOST=unloaded_server.host,
        PORT=unloaded_server.port,
        USER=unloaded_server.user,
        PASSWORD=unloaded_server.password,
        NAME=unloaded_server.dbname,
    )
    response = admin_client.get(reverse("admin:diagnostics_queries"), {"db": alias})
    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    assert "pg_stat_statements is installed but its library is not preloaded." in text
    assert "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';" in text
    assert (
        "gcloud sql instances patch INSTANCE --database-flags=cloudsql.enable_pg_stat_statements=on"
        in text
    )
    privileges = html.unescape(
        admin_client.get(reverse("admin:diagnostics_privileges"), {"db": alias}).content.decode()
    )
    assert "shared_preload_libraries = 'auto_explain'" in privileges
