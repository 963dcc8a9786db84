# TaskFlow application image: one image for every process (gateway, worker, projector,
# migrate); compose.yaml picks the process with `command:`.
#
#   docker build -t taskflow:latest .
#   docker run --rm -e TASKFLOW_JWT_SECRET=... -p 8000:8000 taskflow:latest
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Unprivileged runtime user; numeric ids so orchestrators can verify runAsNonRoot.
RUN groupadd --system --gid 10001 taskflow \
 && useradd --system --uid 10001 --gid taskflow --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin taskflow

WORKDIR /app

# The whole repo (minus .dockerignore) goes to /app and is installed editable: migrations
# live at the repository top level and taskflow/schema.py finds them next to the
# package (docs/adr/0006), so the package must run from /app, not site-packages.
COPY . /app
RUN pip install --no-cache-dir -e /app \
 && rm -rf /app/build /app/*.egg-info \
 && taskflow --help > /dev/null

USER 10001:10001

EXPOSE 8000

# Liveness only: /health answers while the process is up. Readiness (/ready: Redis and
# PostgreSQL reachable) is what compose.yaml checks for the gateway. Non-HTTP processes
# (worker, projector, migrate) run from this image too and disable this check in compose.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

# SIGTERM makes every TaskFlow process drain (finish in-flight work) before exiting.
STOPSIGNAL SIGTERM

CMD ["taskflow", "gateway", "--host", "0.0.0.0", "--port", "8000"]
