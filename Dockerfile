# One image for every taskq service in compose.yml: the API sidecar, the workers and Flower.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY taskq ./taskq
# api: the REST sidecar; flower: the monitoring UI; fast: hiredis for cheaper Redis replies.
RUN pip install ".[api,flower,fast]" \
    && useradd --create-home --uid 10001 taskq \
    && mkdir -p /data/files /data/taskq \
    && chown -R taskq /data

# The shipped config; mount your own and point TASKQ_CONFIG at it to change types or profiles.
ENV TASKQ_CONFIG=/app/config/celery.yaml \
    TASKQ_HOME=/data/taskq \
    TASKQ_FILES_ROOT=/data/files
USER taskq
CMD ["taskq", "--help"]
