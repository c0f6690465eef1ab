# Vigil production image: gunicorn web, Celery worker and beat share it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 VIGIL_VAR_DIR=/app/var
WORKDIR /app

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
RUN groupadd --system vigil && useradd --system --gid vigil --home /app --shell /usr/sbin/nologin vigil \
    && mkdir -p /app/var && VIGIL_SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && chown -R vigil:vigil /app/var

USER vigil
EXPOSE 8000
CMD ["gunicorn", "--config", "python:vigil.gunicorn_conf", "vigil.wsgi:application"]
