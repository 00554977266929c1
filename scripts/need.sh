# Sourced by the scripts that install their own prerequisites (Debian packages, PyPI venvs).
#
# need THING DEBIAN_PACKAGE: THING (a command name, or an absolute path) is there, or
# DEBIAN_PACKAGE is installed with apt (as root, or with passwordless sudo); if it still is not
# there, the calling script stops saying what to install.

_have() {
    case "$1" in
        /*) [ -e "$1" ] ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

need() {
    _have "$1" && return 0
    local sudo="" me
    me=$(basename "$0")
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; then
        echo "$me: installing $2 (apt)" >&2
        $sudo apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2" >/dev/null
    fi
    _have "$1" || { echo "$me: $1 is missing: install the Debian package $2" >&2; exit 1; }
}

# pip_venv DIR PACKAGE...: a Python venv in DIR holding exactly PACKAGE... (from PyPI), made or
# remade when the list changed; prints one line when it installs.
pip_venv() {
    local dir="$1"
    shift
    if [ ! -f "$dir/.installed" ] || [ "$(cat "$dir/.installed")" != "$*" ]; then
        echo "$(basename "$0"): installing $* (PyPI) into ${dir#"$PWD"/}" >&2
        need python3 python3-venv
        python3 -m venv "$dir"
        "$dir/bin/pip" install -q --disable-pip-version-check "$@"
        echo "$*" >"$dir/.installed"
    fi
}

# with_dockerd LOGFILE: a Docker daemon answers on the default socket: the one running, or one
# started here (as root) and stopped when the calling script exits (KEEP_DOCKERD=1 keeps it).
# Sets DOCKER to Debian's client, which has BuildKit built in (another `docker` first on PATH may
# lack buildx).
with_dockerd() {
    need /usr/bin/docker docker.io
    DOCKER=/usr/bin/docker
    export DOCKER_BUILDKIT=1
    $DOCKER info >/dev/null 2>&1 && return 0
    local me
    me=$(basename "$0")
    [ "$(id -u)" = 0 ] || { echo "$me: dockerd is not running and only root can start it: start it (sudo dockerd &)" >&2; exit 1; }
    mkdir -p "$(dirname "$1")"
    dockerd >"$1" 2>&1 &
    _dockerd_started=$!
    trap '_stop_dockerd' EXIT
    for _ in $(seq 1 100); do $DOCKER info >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "$me: dockerd did not start; see $1" >&2
    exit 1
}

_stop_dockerd() {
    if [ -n "${_dockerd_started:-}" ] && [ "${KEEP_DOCKERD:-0}" != 1 ]; then
        kill "$_dockerd_started" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$_dockerd_started" 2>/dev/null || break; sleep 0.1; done
    fi
}
