# Shared set-up for tools/*: creates .venv from pyproject.toml when missing or stale.
# Sourced, not run. Leaves PY pointing at the project's interpreter.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
_stamp="$VENV/.installed-from"
_want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ ! -x "$PY" ] || [ "$(cat "$_stamp" 2>/dev/null)" != "$_want" ]; then
  echo "setting up $VENV (python >= 3.11)" >&2
  _base="${PYTHON:-python3}"
  "$_base" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "python >= 3.11 is needed" >&2; exit 3; }
  [ -x "$PY" ] || "$_base" -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2 || true
  "$PY" -m pip install --quiet --disable-pip-version-check -e "$ROOT[test]" >&2
  echo "$_want" > "$_stamp"
fi

# Java runs the reference EXI oracle (tests) and the independent peer. Install it where we can.
ensure_java() {
  if command -v javac >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing openjdk-17-jdk-headless for the reference EXI oracle" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless) >&2 || true
  fi
  command -v javac >/dev/null 2>&1 || echo "WARNING: javac not available: oracle tests will be skipped with a reason" >&2
}
