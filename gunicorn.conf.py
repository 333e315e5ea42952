"""gunicorn settings for the portal's container on Cloud Run (docs/deploy.md).

The Dockerfile runs ``gunicorn --config gunicorn.conf.py portal.wsgi``. Any value here can
be overridden without a new image through gunicorn's own ``GUNICORN_CMD_ARGS``
(e.g. ``--workers 3 --threads 8``); Cloud Run's ``--concurrency`` should then stay equal
to workers x threads.
"""

import math
import os
from pathlib import Path

from portal import liveness
from portal.jsonlog import gunicorn_logconfig
from portal.limits import WEB_PROCESS_ENV

# The workers serve web requests: every database connection they open gets the web
# bounds (portal/limits.py). Management commands run elsewhere and keep PostgreSQL's
# defaults.
os.environ[WEB_PROCESS_ENV] = "1"


def available_cpus() -> int:
    """CPUs this container may use: its CPU affinity, capped by a cgroup v2 CPU quota.

    ``os.cpu_count()`` counts the host's CPUs, not what ``docker run --cpus`` or the
    platform grants.
    """
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


# Cloud Run tells the container which port to listen on.
bind = [f"0.0.0.0:{os.environ.get('PORT', '8080')}"]

# One process per vCPU for CPU-bound work (templates, admin forms); threads inside each
# for the time spent waiting on PostgreSQL. Cloud Run's --concurrency = workers x threads
# (docs/deploy.md: 2 vCPU -> 2 x 4 = 8), and the database sees at most that many connections
# per instance.
workers = available_cpus()
worker_class = "gthread"
threads = 4

# What bounds a request is the database's limits on each of its statements (portal/limits.py:
# statement_timeout, lock_timeout, connect_timeout, the pool's wait), set for this process
# below. gunicorn's `timeout` cannot: a gthread worker's heartbeat comes from its main
# loop, not from the request threads, so it only restarts a worker whose main loop
# stopped (a deadlock, a C extension holding the GIL).
timeout = 30
# Cloud Run sends SIGTERM, then SIGKILL 10 s later: in-flight requests get 8 s to finish
# and gunicorn exits on its own before the hard kill.
graceful_timeout = 8
# Connections from Cloud Run's front end are reused; keep them a little longer than the
# default 2 s.
keepalive = 5

# The heartbeat file of each worker lives in memory, not on the container's overlay.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# No runtime control socket: nothing on Cloud Run would use it, and the image's user
# has no home directory to put it in.
control_socket_disable = True

# Logs: JSON lines Cloud Logging parses (severity, httpRequest, trace id), the access log
# on stdout, gunicorn's own messages on stderr. LOG_FORMAT=text gives gunicorn's defaults.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
if os.environ.get("LOG_FORMAT", "json") == "json":
    logconfig_dict = gunicorn_logconfig(level=loglevel)

# Liveness on a port of its own, answered by a thread of the master process: it never
# waits behind request threads busy with a slow database (portal/liveness.py). Cloud Run's
# liveness probe targets this port; 0 switches it off.
HEALTH_PORT = int(os.environ.get("HEALTH_PORT", "8081"))


def when_ready(server) -> None:
    if HEALTH_PORT:
        liveness.start(server, HEALTH_PORT)


def post_fork(server, worker) -> None:
    # The worker inherits the master's listening socket; only the master answers on it.
    liveness.close_inherited()
