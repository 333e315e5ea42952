"""Run Metabase's side of the conversation: the PostgreSQL JDBC driver, from Java.

``tests/metabase/jdbc/MetabaseProbe.java`` is a single-file program (``java File.java``)
that takes one step per line and prints one JSON object per step. ``make jdbc-deps``
installs the JDK and Debian's driver; without them these tests fail, saying so.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from django.db import connection

from tests.metabase.support import Access

JDBC_JAR = Path(os.environ.get("JDBC_JAR", "/usr/share/java/postgresql.jar"))
PROBE = Path(__file__).parent / "jdbc" / "MetabaseProbe.java"


def require_java() -> str:
    java = shutil.which("java")
    assert java and JDBC_JAR.is_file(), (
        f"the JDBC tier needs java and {JDBC_JAR}: run `make jdbc-deps` "
        "(apt-get install default-jdk-headless libpostgresql-jdbc-java)"
    )
    return java


# Flags that only shorten the JVM's start-up (the machine's CPUs are shared).
JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto")


@functools.cache
def compiled() -> Path:
    """The probe compiled once per test run (``java File.java`` compiles on every start)."""
    require_java()
    javac = shutil.which("javac")
    assert javac, "javac is missing: run `make jdbc-deps` (default-jdk-headless)"
    out = Path(tempfile.mkdtemp(prefix="metabase-probe-"))
    subprocess.run(
        [javac, "-cp", str(JDBC_JAR), "-d", str(out), str(PROBE)], check=True, timeout=300
    )
    return out


def probe(access: Access, *steps: str, database: str | None = None, password: str | None = None):
    """Each step's JSON result, in order, on one JDBC connection (``#reconnect`` opens another)."""
    java = require_java()
    classes = compiled()
    settings = connection.settings_dict
    url = f"jdbc:postgresql://{settings['HOST']}:{settings['PORT']}/{database or settings['NAME']}"
    for step in steps:
        assert "\n" not in step, "one step per line"
    env = {**os.environ, "PROBE_PASSWORD": access.password if password is None else password}
    done = subprocess.run(
        [java, *JVM_FLAGS, "-cp", f"{JDBC_JAR}:{classes}", "MetabaseProbe", url, access.login],
        input="\n".join(steps) + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(steps), (done.stdout, done.stderr)
    return results
