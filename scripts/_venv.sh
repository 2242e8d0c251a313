# Sourced by scripts/serve, scripts/test and scripts/lock: make sure uv is at hand and
# $VENV holds exactly what uv.lock pins.
#
# uv itself comes from PyPI at one pinned version, into a small venv of its own under the
# user's cache (uv sync manages .venv and would remove itself from it). A fresh Debian has
# python3 but not its venv module; install it when it is missing. uv never downloads a Python
# here (UV_PYTHON_DOWNLOADS=never): it uses the machine's python3.
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
UV_VERSION=0.13.10
UV_HOME=${COWLAB_UV_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/cowlab/uv-$UV_VERSION}
UV="$UV_HOME/bin/uv"
export UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT="$VENV" UV_NO_PROGRESS=1

_sudo() { if [ "$(id -u)" -ne 0 ]; then sudo "$@"; else "$@"; fi; }

if [ ! -x "$UV" ]; then
  if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c "import ensurepip" 2>/dev/null; then
    echo "== installing python3-venv"
    _sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive _sudo apt-get install -y -qq python3-venv >/dev/null
  fi
  echo "== installing uv $UV_VERSION into $UV_HOME"
  "$PYTHON" -m venv "$UV_HOME"
  "$UV_HOME/bin/python" -m pip install -q "uv==$UV_VERSION"
fi

# Fails with a clear message when pyproject.toml's dependencies and uv.lock disagree (someone
# changed one without the other); `bash scripts/lock` refreshes the lock.
check_lock() {
  if ! "$UV" lock --check --python "$PYTHON" >/dev/null 2>&1; then
    echo "uv.lock does not match pyproject.toml's dependencies." >&2
    echo "Refresh it with 'bash scripts/lock' and commit uv.lock with the change." >&2
    exit 1
  fi
}
