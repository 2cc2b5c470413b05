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
  # a half-made venv (interrupted set-up) is made again
  if [ -x "$PY" ] && ! "$PY" -m pip --version >/dev/null 2>&1; then rm -rf "$VENV"; fi
  [ -x "$PY" ] || "$_base" -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2 || true
  "$PY" -m pip install --quiet --disable-pip-version-check -e "$ROOT[test]" >&2
  echo "$_want" > "$_stamp"
fi

# System tools the tests use: Java (the reference EXI oracle, the Josev peer), tcpdump and
# dumpcap (real loopback captures for the capture decoder), Chromium (report screenshots).
# Installed where we can (root + apt-get); a test whose tool is still missing skips with the reason.
ensure_system_tools() {
  local missing=()
  command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
  command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)  # network namespaces (tests/link)
  command -v dumpcap >/dev/null 2>&1 || missing+=(tshark)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${missing[*]}" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") >&2 \
      || echo "WARNING: could not install ${missing[*]}: the tests that need them skip with a reason" >&2
  else
    echo "WARNING: missing ${missing[*]} and cannot install (not root): the tests that need them skip with a reason" >&2
  fi
}
