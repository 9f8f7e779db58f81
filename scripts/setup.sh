#!/usr/bin/env bash
# Sourced by ./run and ./test: a virtualenv with citebot installed, and the pinned Weaviate
# server binary where Weaviate Embedded looks for it (built from the Go module proxy when it is
# missing and Go is present; otherwise Weaviate Embedded downloads it itself on first start).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CITEBOT_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "citebot: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.citebot-installed"
want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "citebot: installing dependencies" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -e "$ROOT[test,dag]" >&2
  echo "$want" > "$stamp"
fi
if [ -f "$ROOT/.env" ]; then
  set -a; . "$ROOT/.env"; set +a
fi
if [ -z "${WEAVIATE_URL:-}" ]; then
  if command -v go >/dev/null 2>&1; then
    "$VENV/bin/python" -m citebot.weaviate_server >/dev/null
  fi
fi
export PATH="$VENV/bin:$PATH"
