# citebot: the Slack bot (Socket Mode or HTTP mode) and the CLI, in one image.
#   docker compose up -d        (see docker-compose.yaml and docs/operations.md)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# 1. Dependencies only, in their own layer: rebuilt when pyproject.toml changes, not on every
#    source edit. (The list is read from pyproject.toml, so it is never out of step.)
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# 2. The source; installing it needs no network (dependencies are already there).
COPY README.md* ./
COPY citebot ./citebot
COPY bot ./bot
COPY dataflows ./dataflows
RUN pip install --no-deps . && rm -rf build *.egg-info

# 3. Run as an unprivileged user. The bot is stateless (everything lives in Weaviate); its home
#    only holds a small model cache under CITEBOT_DATA_DIR.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin citebot
USER citebot

ENV CITEBOT_HTTP_PORT=3000
EXPOSE 3000

# The bot serves /healthz on CITEBOT_HTTP_PORT in both Socket Mode and HTTP mode.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('CITEBOT_HTTP_PORT') or '3000'), timeout=4)"

CMD ["citebot", "serve"]
