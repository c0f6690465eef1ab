# Vigil production image: gunicorn web, Celery worker and beat share it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 VIGIL_VAR_DIR=/app/var
WORKDIR /app

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
# A fixed, non-root uid/gid (10001): Kubernetes' runAsNonRoot can check a numeric user (deploy/kubernetes/).
RUN groupadd --system --gid 10001 vigil && useradd --system --uid 10001 --gid vigil --home /app --shell /usr/sbin/nologin vigil \
    && mkdir -p /app/var && VIGIL_SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && chown -R vigil:vigil /app/var

USER vigil
EXPOSE 8000
# The web process is up (/healthz: no database, no broker).  Workers and beat override it with
# `python -m vigil.liveness worker|beat` (docker-compose.yml, the Kubernetes probes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["gunicorn", "--config", "python:vigil.gunicorn_conf", "vigil.wsgi:application"]
