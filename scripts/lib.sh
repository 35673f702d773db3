# Shared by dev.sh and test.sh: installing Debian packages when something is missing.
say() { echo "$(basename "$0"): $*" >&2; }

install_pkg() { # install_pkg PACKAGE...: apt-get install, as root or with sudo
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    say "installing $*"
    if ! { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null; then
        say "could not install $*"
        return 1
    fi
}

need() { # need PACKAGE COMMAND: install PACKAGE if COMMAND is missing
    command -v "$2" >/dev/null 2>&1 || install_pkg "$1"
}

# The camera's V4L2 bindings are generated from the kernel headers when lavabeacon is built
# (bindgen), which needs libclang.
need_libclang() {
    ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so' || install_pkg libclang-dev
}

need_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        say "cargo not found; install Rust first (https://rustup.rs)"
        exit 1
    fi
}
