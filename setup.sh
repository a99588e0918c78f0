#!/bin/bash
# redvip's one set-up script, for a fresh Debian 12 machine, as root.
#
#   bash setup.sh        install, build, run the main job
#   bash setup.sh test   install, build, run every test (what CI runs)
#
# Idempotent and non-interactive: run it again at any time.
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-demo}
jobs=$(nproc)

# Everything the build and the tests need, from Debian 12 only.
packages=(
    # build
    cmake g++ make pkg-config clang-14 libclang-rt-14-dev
    libboost-dev libnl-3-dev libnl-route-3-dev libtomlplusplus-dev
    libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev libsystemd-dev doctest-dev
    # the .deb: cpack's Depends comes from dpkg-shlibdeps; systemd-analyze checks the unit
    dpkg-dev systemd
    # the real parts the tests and benchmarks drive
    redis-server redis-tools keepalived haproxy nutcracker python3 python3-redis
    # Redis's own test suite (tests/conformance): its runner is Tcl
    tcl
    iproute2 iputils-ping tcpdump procps
)

# Debian's source packages too (deb-src): tests/conformance/fetch_suite.sh
# takes Redis's own test suite from `apt-get source redis`. The same mirrors
# and suites as the binary packages' debian.sources. Before apt-get update.
enable_deb_src() {
    local from=/etc/apt/sources.list.d/debian.sources
    local to=/etc/apt/sources.list.d/redvip-deb-src.sources
    if [ -f "$from" ]; then
        sed 's/^Types: deb$/Types: deb-src/' "$from" >"$to.new"
    else
        printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' \
            'Suites: bookworm bookworm-updates' 'Components: main' \
            'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' '' \
            'Types: deb-src' 'URIs: http://deb.debian.org/debian-security' \
            'Suites: bookworm-security' 'Components: main' \
            'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >"$to.new"
    fi
    mv "$to.new" "$to"
}

install_packages() {
    if [ "$(id -u)" != 0 ]; then
        echo "setup.sh: run as root (it installs Debian packages and builds network namespaces)" >&2
        exit 1
    fi
    echo "== installing Debian packages"
    enable_deb_src
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
}

# tests/clients drives node-redis and ioredis: node and npm from Debian 12
# (nodejs 18, npm 9) unless a node is already installed (NodeSource's nodejs
# bundles npm and conflicts with Debian's), then the pinned libraries from
# tests/clients/package-lock.json.
install_client_libraries() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    echo "== installing node-redis and ioredis for tests/clients (npm ci)"
    (cd tests/clients && npm ci --no-audit --no-fund --loglevel=error)
}

# build PRESET [extra cmake args]
build() {
    local preset=$1
    shift
    echo "== building ($preset)"
    cmake --preset "$preset" -DREDVIP_WERROR=ON "$@" >/dev/null
    cmake --build --preset "$preset" -j "$jobs"
}

case "$mode" in
demo)
    install_packages
    build release
    # The shipped configurations validate...
    for f in conf/redvip.example.toml conf/node-a.toml conf/node-b.toml; do
        build/release/redvip --check-config "$f" >/dev/null
    done
    # ...and the live demo: a pair in network namespaces, a failover, a switchover.
    bash bench/demo.sh
    ;;
test)
    install_packages
    install_client_libraries
    echo "== fetching Redis's own test suite (apt-get source redis, cached)"
    bash tests/conformance/fetch_suite.sh >/dev/null
    # 1. The parsers under libFuzzer (clang-14), each for a bounded time.
    build fuzz
    ctest --preset fuzz
    # 2. Unit and proxy tests under AddressSanitizer and UndefinedBehaviorSanitizer.
    build asan
    ctest --preset asan
    # 3. Everything, release build, last: its summary ends the output.
    build release
    ctest --preset release
    ;;
*)
    echo "usage: bash setup.sh [demo|test]" >&2
    exit 2
    ;;
esac
