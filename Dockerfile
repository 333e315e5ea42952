# The portal's production image: Django under gunicorn, for Cloud Run
# (docs/deploy.md). tests/deploy/test_production_smoke.py runs this file's
# collectstatic step and CMD against the embedded database.

# --- build: a virtualenv with the pinned runtime requirements, from wheels only ----------
# No compiler in either stage: a dependency without a wheel fails the build here.
FROM python:3.11-slim-bookworm AS build
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --only-binary=:all: -r /tmp/requirements.txt

# --- messages: the compiled translations (*.mo), built from the committed .po files -------
# GNU gettext's msgfmt stays in this stage; only the .mo files reach the image. Without
# DJANGO_SETTINGS_MODULE compilemessages needs no settings: it finds every locale/ folder.
FROM build AS messages
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext=0.21-12 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN /opt/venv/bin/django-admin compilemessages \
    && mkdir /compiled \
    && find . -name '*.mo' -exec cp --parents {} /compiled/ \;

# --- runtime ---------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_ENV=production \
    PORT=8080

# An unprivileged user without a home or a shell; the code stays owned by root, so the
# running process cannot modify it.
RUN groupadd --system --gid 10001 portal \
    && useradd --system --uid 10001 --gid portal --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin portal

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY . .
COPY --from=messages /compiled/ /app/

# collectstatic needs settings that load, not secrets: these placeholder values exist
# only for this RUN (they are not in the image's environment), and nothing connects to
# that DATABASE_URL. The compressed, hashed files and their manifest go to /app/staticfiles.
RUN DJANGO_ENV=production SECRET_KEY=collectstatic-placeholder-never-used-to-sign-anything-0123456789 ALLOWED_HOSTS=localhost \
        DATABASE_URL=postgres://collectstatic@localhost/unused \
        python manage.py collectstatic --no-input \
    && python -m compileall -q /app

# Numeric, so a runtime can tell it is not root without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080
# The service runs this with the application role's DATABASE_URL and password (it owns
# nothing); the migrate job runs `python manage.py migrate --no-input` from the same image
# with the migrator's (docs/deploy.md, step 7).
# Exec form: gunicorn is PID 1 and receives Cloud Run's SIGTERM itself.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "portal.wsgi"]
