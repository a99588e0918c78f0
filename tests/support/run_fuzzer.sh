#!/bin/sh
# run_fuzzer.sh BINARY SEED_DIR SECONDS
# Runs a libFuzzer target for a bounded time on a scratch copy of its seed
# corpus (the checked-in seeds are never written), with a memory cap, so that
# a run finds crashes, leaks and unbounded allocation but always ends.
set -eu
bin=$1 seeds=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
cp -r "$seeds"/. "$work"/
exec "$bin" -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=256 \
    -timeout=10 -print_final_stats=1 -artifact_prefix=./ "$work"
