#!/bin/bash
# Fetches Redis's own Tcl test suite, the one that matches the installed
# redis-server, from Debian's source package (`apt-get source redis`), and
# prints the directory it is in:
#
#   suite=$(bash tests/conformance/fetch_suite.sh)
#   cd "$suite" && ./runtest --host 127.0.0.1 --port 6379 --single unit/type/list
#
# Cached per machine under $REDVIP_CONFORMANCE_CACHE (default
# /var/cache/redvip-conformance), keyed by the source version of the installed
# redis-server: redis-<version>/ holds runtest and tests/ with Debian's patches
# applied, and src/ whose redis-* are symlinks to the installed binaries.
# Nothing of Redis is built. Needs a deb-src entry for Debian's archive (setup.sh
# writes /etc/apt/sources.list.d/redvip-deb-src.sources) and dpkg-dev.
set -euo pipefail

die() {
    echo "fetch_suite.sh: $*" >&2
    exit 1
}

cache=${REDVIP_CONFORMANCE_CACHE:-/var/cache/redvip-conformance}

command -v redis-server >/dev/null || die "redis-server is not installed (Debian package redis-server)"
# The source package's version, epoch included, e.g. 5:7.0.15-1~deb12u10.
version=$(dpkg-query -W -f='${source:Version}' redis-server 2>/dev/null) ||
    die "redis-server is not installed from a Debian package: no matching source to fetch"
[ -n "$version" ] || die "cannot tell the source version of the installed redis-server"
dir=$cache/redis-${version#*:}

if [ -f "$dir/.complete" ]; then
    echo "$dir"
    exit 0
fi

command -v dpkg-source >/dev/null || die "dpkg-source is missing: install dpkg-dev"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 600 9 || die "another fetch holds $cache/.lock"
if [ -f "$dir/.complete" ]; then  # fetched meanwhile by another run
    echo "$dir"
    exit 0
fi

# apt must know Debian's source packages, and this exact version among them.
sources=$(apt-cache showsrc redis 2>/dev/null || true)
if ! grep -q '^Package: redis$' <<<"$sources"; then
    die "apt knows no source package 'redis': a deb-src entry for Debian's archive is missing.
  setup.sh writes /etc/apt/sources.list.d/redvip-deb-src.sources (deb-src lines with the
  URIs and suites of /etc/apt/sources.list.d/debian.sources); then run apt-get update."
fi
if ! grep -qx "Version: $version" <<<"$sources"; then
    die "apt has no source for redis $version (the installed redis-server); it has:
$(grep '^Version:' <<<"$sources" | sed 's/^/  /')
  run apt-get update, or upgrade redis-server to a version the archive still has."
fi

work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
(
    cd "$work"
    # As root apt would drop to the _apt user, who cannot write here.
    apt-get source -qq --download-only -o APT::Sandbox::User=root "redis=$version" >/dev/null
    # Unpacks and applies Debian's patches (some touch the tests), no build.
    # apt checked the files against the archive's signed index already.
    dpkg-source --no-check -x redis_*.dsc source >/dev/null
) || die "apt-get source redis=$version failed (see above)"

src=$work/source
suite=$work/suite
mkdir -p "$suite/src"
cp -a "$src/runtest" "$src/tests" "$suite/"
rm -rf "$suite/tests/tmp" && mkdir "$suite/tests/tmp"
for bin in redis-server redis-cli redis-benchmark redis-check-aof redis-check-rdb; do
    if path=$(command -v "$bin"); then
        ln -s "$path" "$suite/src/$bin"
    fi
done
[ -x "$suite/src/redis-server" ] && [ -x "$suite/src/redis-cli" ] || die "redis-server and redis-cli must be installed"
printf 'redis %s from apt-get source; binaries: %s\n' "$version" "$(redis-server --version)" >"$suite/.complete"

rm -rf "$dir"
mv "$suite" "$dir"
# Suites of redis-server versions no longer installed.
for old in "$cache"/redis-*; do
    [ "$old" = "$dir" ] || rm -rf "$old"
done
echo "$dir"
