# Image of the `web`, `worker` and `beat` services (docker-compose.yml).
# Runtime dependencies only (requirements/image.txt): Postgres and Redis run in their own
# containers, so the embedded stack's wheels (the `stack` extra) are not installed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

RUN groupadd --system --gid 10001 statelab \
 && useradd --system --uid 10001 --gid statelab --home-dir /app --no-create-home statelab

WORKDIR /app

# Dependencies first, from the lock (hashes checked), in a layer that changes only with it.
COPY requirements/image.txt /tmp/build/requirements.txt
RUN pip install --require-hashes --no-deps -r /tmp/build/requirements.txt \
 && rm -rf /tmp/build

# Then the project itself, run from /app as it is (templates and static files beside the code;
# it is not installed a second time into site-packages), and its static files collected for
# whitenoise. Base settings: collecting needs neither a service nor a secret.
COPY . .
ENV PYTHONPATH=/app
RUN DJANGO_SETTINGS_MODULE=config.settings.base python manage.py collectstatic --noinput --verbosity 0

USER statelab
EXPOSE 8000

# docker-compose.yml gives each service its command; this default serves the web app.
CMD ["gunicorn", "config.wsgi:application", "-c", "config/gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--workers", "4"]
