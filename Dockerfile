# syntax=docker/dockerfile:1.7
# One image for every role (docs/DEPLOY.md): `analytics-platform serve --only ROLE` with ROLE in
# code-server, daemon, webserver, dashboard, collector; the ECS run launcher starts its run
# workers from it with Dagster's own command; with no arguments it runs all five (`serve`).
#
#   podman build -t analytics-platform .
#
# Stage 1 builds the project's wheel and the wheels of everything it needs; stage 2 installs
# them into a virtualenv from that folder alone (no index, no compiler, no pip cache) and runs
# as an unprivileged user. analytics_platform_tests/test_image.py checks these rules and installs
# the wheel into a clean virtualenv the same way.
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY analytics_platform ./analytics_platform
# the project's wheel, then every dependency as a wheel (all of them publish manylinux wheels)
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m pip wheel --wheel-dir /wheels /wheels/analytics_platform-*.whl

FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# the wheels are mounted for this one step, never copied into a layer
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels analytics-platform \
 && /opt/venv/bin/pip uninstall --yes pip \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin analytics \
 && mkdir -p /var/lib/analytics/dagster_home \
 && chown -R analytics:analytics /var/lib/analytics
COPY deploy/ /opt/analytics/deploy/
ENV PATH=/opt/venv/bin:$PATH \
    ANALYTICS_DATA_DIR=/var/lib/analytics \
    DAGSTER_HOME=/var/lib/analytics/dagster_home \
    DAGSTER_INSTANCE_CONFIG=/opt/analytics/deploy/dagster.yaml \
    ANALYTICS_SERVE_LOGS=stdout
USER analytics
WORKDIR /var/lib/analytics
# webserver, dashboard, collector, code server (gRPC), Stats API
EXPOSE 3000 8501 8000 4000 8010
# every role `serve` started in this container answers (HTTP health, gRPC health, daemon heartbeat)
HEALTHCHECK --interval=30s --timeout=30s --start-period=120s --retries=3 \
    CMD ["analytics-platform", "serve", "--health-check"]
ENTRYPOINT ["analytics-platform"]
CMD ["serve", "--host", "0.0.0.0"]
