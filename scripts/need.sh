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
