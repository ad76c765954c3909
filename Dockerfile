# agentrec API image: pinned dependencies, non-root user, data in /data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AGENTREC_DATA_DIR=/data \
    AGENTREC_PRESETS_DIR=/srv/agentrec/configs

WORKDIR /srv/agentrec

# Dependencies first, so that code changes do not invalidate this layer.
COPY requirements.lock ./
RUN pip install --no-cache-dir --upgrade pip \
    && pip install --no-cache-dir -r requirements.lock

COPY pyproject.toml README.md ./
COPY app ./app
COPY agents ./agents
COPY graphs ./graphs
COPY tools ./tools
COPY core ./core
COPY recdata ./recdata
COPY evaluation ./evaluation
COPY memory ./memory
COPY configs ./configs
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && useradd --system --uid 10001 --home-dir /data agentrec \
    && mkdir -p /data && chown agentrec /data

USER agentrec
VOLUME ["/data"]
EXPOSE 8000

# Liveness: the process answers (/livez; /healthz is an alias). Readiness (/readyz) is for
# routing traffic, and stays 200 while Redis or Chroma is down (the service degrades).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2)"

CMD ["agentrec", "serve", "--host", "0.0.0.0", "--port", "8000"]
