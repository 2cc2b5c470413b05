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
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2 \
    || echo "note: could not upgrade pip in $VENV (going on with the one it has)" >&2
  # this project was distributed as "iso15118" before (Josev's name on PyPI): drop that editable install
  if "$PY" -m pip show --quiet iso15118 >/dev/null 2>&1; then
    "$PY" -m pip uninstall --quiet -y iso15118 >&2
  fi
  "$PY" -m pip install --quiet --disable-pip-version-check -e "$ROOT[test,fleet]" >&2
  echo "$_want" > "$_stamp"
fi
# Byte code for the package, written even where PYTHONDONTWRITEBYTECODE is set: the generated codecs
# (iso15118/exi/_fast_*.py, iso15118/messages/_fast_*.py) are large, and every process that cannot
# read their byte code compiles them again (~0.5 s a schema). Only stale files are compiled.
"$PY" -m compileall -q "$ROOT/iso15118" >/dev/null 2>&1 || echo "note: could not byte-compile iso15118/" >&2
# The optional compiled capture modules (mypyc; the list is iso15118/_native.py): rebuilt only when
# a compiled module's source changed (a stamp); a failed build prints one line, the pure-Python
# modules are used then. tools/build_native runs it by hand (--force).
if [ -z "${ISO15118_NO_NATIVE_BUILD:-}" ]; then
  "$PY" "$ROOT/tools/build_native.py" --quiet || true
fi

# System tools the tests use: Java (the reference EXI oracle, the Josev peer), tcpdump and
# dumpcap (real loopback captures for the capture decoder), Chromium (report screenshots), openssl.
# Installed with apt-get when missing (as root); the output of apt-get is shown. Returns 1 when a
# tool is still missing afterwards (the caller says so; the tests that need it skip, or fail when strict).
ensure_system_tools() {
  local missing=() still=()
  command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
  command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)  # network namespaces (tests/link)
  command -v dumpcap >/dev/null 2>&1 || missing+=(tshark)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing with apt-get: ${missing[*]} (takes a minute or two)" >&2
    local log
    log="$(mktemp)"
    # another apt-get may hold the lock for a while: wait for it rather than fail
    if ! { apt-get -o DPkg::Lock::Timeout=300 update -qq \
           && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
              "${missing[@]}"; } >"$log" 2>&1; then
      tail -n 25 "$log" >&2
      echo "SETUP ERROR: apt-get could not install ${missing[*]} (the end of its output is above)" >&2
    fi
    rm -f "$log"
  else
    echo "SETUP ERROR: missing ${missing[*]} and cannot install them here (not root, or no apt-get)" >&2
  fi
  for t in javac tcpdump dumpcap chromium openssl; do command -v "$t" >/dev/null 2>&1 || still+=("$t"); done
  if [ ${#still[@]} -gt 0 ]; then
    echo "SETUP ERROR: still missing: ${still[*]}" >&2
    return 1
  fi
  return 0
}
