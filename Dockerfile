# syntax=docker/dockerfile:1.7
#
# vlgw gateway image. Two stages: the builder resolves the locked dependencies with uv into
# /app/.venv; the runtime stage gets only that virtualenv on a clean slim Python, so no
# compiler, uv or package cache ends up in the image that faces the internet.
#
#   docker build -t vlgw:0.1.0 .
#   docker run --rm -p 8080:8080 -e GATEWAY_UPSTREAM_URLS=http://vllm:8000 vlgw:0.1.0

# Same base in both stages: the venv's interpreter symlinks point at /usr/local/bin/python3.11.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# uv is copied as a static binary from its pinned image rather than pip-installed.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
# Compile bytecode now (the runtime filesystem is read-only); copy instead of hardlinking from
# the cache mount; never let uv download another Python: the venv must use the base image's.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when uv.lock changes.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself, installed as a wheel (--no-editable) so /app/.venv is self-contained.
COPY pyproject.toml uv.lock README.md ./
COPY gateway ./gateway
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable


FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="vlgw" \
      org.opencontainers.image.description="OpenAI-compatible gateway in front of vLLM serving Qwen3-VL" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can verify it and volumes can be chowned.
RUN groupadd --system --gid 10001 vlgw \
 && useradd --system --uid 10001 --gid vlgw --home-dir /var/lib/vlgw --create-home \
            --shell /usr/sbin/nologin vlgw

COPY --from=builder /app/.venv /app/.venv

# GATEWAY_DATA_DIR holds the embedded store when no Redis is configured; it is the only path
# the gateway writes besides /tmp (prometheus multiprocess files with GATEWAY_WORKERS > 1).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_DATA_DIR=/var/lib/vlgw

USER 10001:10001
WORKDIR /var/lib/vlgw
# 8080: the API. 9100: /metrics when GATEWAY_METRICS_PORT=9100 (compose and k8s set it).
EXPOSE 8080 9100

# slim has no curl: ask /healthz with the interpreter that is already there. urlopen raises on
# any non-2xx answer or refused connection, which makes the exit code non-zero.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEWAY_PORT', '8080'), timeout=2)"]

ENTRYPOINT ["vlgw"]
CMD ["serve"]
