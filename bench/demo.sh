#!/bin/bash
# redvip's live demo: a two-node pair in network namespaces, a failover to
# watch, the failed node rejoining as a replica, and a switchover back.
#
#   bash bench/demo.sh [--quick] [--keep] [--out DIR]
#
#   --quick   shorter loads (CI)
#   --keep    leave the pair running and print how to poke at it and clean up
#   --out DIR where the charts, JSON reports and logs go (default /tmp/redvip-demo)
#
# Binaries: $REDVIP_BIN and $REDVIP_BENCH_BIN, default build/release/.
# Needs root (namespaces), redis-server, redis-cli, python3, iproute2.
#
# Safety: traffic only inside namespaces this script creates (10.77.0.0/16,
# the bridge in a namespace of its own, no default route anywhere); the names
# carry a random suffix; every namespace and process it started is removed by
# pid on exit, failure or Ctrl-C; every wait is bounded.
#
# Last line: `demo: failover window X ms (worst connection X2 ms), switchover
# Y ms (worst connection Y2 ms), acknowledged writes lost N`; exit 0 only when
# a failover and a switchover happened and N is 0. The window is the gap in
# acknowledged writes over all the client's connections; the worst connection
# is the longest any one of them waited.
set -uo pipefail

source_dir=$(cd "$(dirname "$0")/.." && pwd)
quick=0 keep=0 out=/tmp/redvip-demo
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bash bench/demo.sh [--quick] [--keep] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done

first_existing() {
    local p
    for p in "$@"; do [ -x "$p" ] && { echo "$p"; return; }; done
    echo "$1"
}
REDVIP=${REDVIP_BIN:-$(first_existing "$source_dir/build/release/redvip")}
BENCH=${REDVIP_BENCH_BIN:-$(first_existing "$source_dir/build/release/bench/redvip-bench" \
    "$source_dir/build/release/redvip-bench")}

if [ "$quick" = 1 ]; then
    latency_s=1 failover_s=4 failover_at=1.5 switchover_s=5 switchover_at=1.5
else
    latency_s=4 failover_s=10 failover_at=3 switchover_s=8 switchover_at=3
fi

VIP=10.77.0.100
ADDR_A=10.77.0.1 ADDR_B=10.77.0.2 ADDR_C=10.77.0.10
prefix="rvdemo-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
NS_SW=$prefix-sw NS_A=$prefix-node-a NS_B=$prefix-node-b NS_C=$prefix-client
work="" CONF_A="" CONF_B=""
namespaces=() # created, to delete
pids=()       # started, to end by pid
started_ns=$(date +%s%N)

say() { echo "$@"; }
step() { echo; echo "== $*"; }
elapsed_s() { echo "$(( ($(date +%s%N) - started_ns) / 1000000000 ))"; }

# ---- cleanup: every process by pid, every namespace, the work dir ----------

stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return; }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

cleaned=0
cleanup() {
    [ "$cleaned" = 1 ] && return
    cleaned=1
    if [ "$keep" = 1 ] && [ ${#namespaces[@]} -gt 0 ]; then
        write_cleanup_script
        keep_help
        return
    fi
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
    for ((i = ${#namespaces[@]} - 1; i >= 0; i--)); do ip netns del "${namespaces[i]}" 2>/dev/null; done
    [ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT
trap 'echo "demo: terminated" >&2; exit 143' TERM

# Cleans up, then prints the summary line last and exits.
finish() {
    cleanup
    echo "$1"
    exit "$2"
}

fail() {
    echo "demo: $*" >&2
    local f node
    for node in "${!redvip_pid[@]}"; do
        kill -0 "${redvip_pid[$node]}" 2>/dev/null || echo "demo: redvip on $node is no longer running" >&2
    done
    for f in "$out"/redvip-a.log "$out"/redvip-b.log; do
        [ -f "$f" ] && { echo "--- last lines of $f" >&2; tail -n 15 "$f" >&2; }
    done
    finish "demo: failed: $*" 1
}

must() { "$@" || fail "command failed: $*"; }

# wait_until TRIES DELAY_S WHAT COMMAND...: polls COMMAND until it succeeds.
wait_until() {
    local tries=$1 delay=$2 what=$3 i
    shift 3
    for ((i = 0; i < tries; i++)); do
        "$@" && return 0
        sleep "$delay"
    done
    echo "demo: timed out after $(python3 -c "print(round($tries * $delay, 1))") s waiting for $what" >&2
    return 1
}

# ---- the pair ---------------------------------------------------------------

add_ns() {
    must ip netns add "$1"
    namespaces+=("$1")
    must ip -n "$1" link set lo up
}

# add_host NS PORT ADDRESS: a veth from NS's eth0 to port PORT on the bridge.
add_host() {
    add_ns "$1"
    must ip link add eth0 netns "$1" type veth peer name "$2" netns "$NS_SW"
    must ip -n "$NS_SW" link set "$2" master br0 up
    must ip -n "$1" addr add "$3/24" dev eth0
    must ip -n "$1" link set eth0 up
}

build_topology() {
    add_ns "$NS_SW"
    must ip -n "$NS_SW" link add br0 type bridge
    must ip -n "$NS_SW" link set br0 up
    add_host "$NS_A" p0 "$ADDR_A"
    add_host "$NS_B" p1 "$ADDR_B"
    add_host "$NS_C" p2 "$ADDR_C"
}

# The example configs exactly, but for the paths that must be private to this run.
node_config() { # node-x: writes $work/node-x.toml
    local src=$source_dir/conf/$1.toml dst=$work/$1.toml
    grep -q "listen = \"$VIP:6379\"" "$src" && grep -q 'interface = "eth0"' "$src" ||
        fail "$src no longer names eth0 and $VIP:6379, which the demo builds"
    sed -e "s|^state_dir = .*|state_dir = \"$work/$1/state\"|" \
        -e "s|^socket = .*|socket = \"$work/$1/admin.sock\"|" "$src" >"$dst"
    "$REDVIP" --check-config "$dst" >"$out/check-config-$1.txt" 2>&1 ||
        fail "$dst does not validate: $(tail -n 3 "$out/check-config-$1.txt")"
}

keep_help() {
    step "--keep: the pair stays up; poke at it from the client namespace"
    say "   ip netns exec $NS_C redis-cli -h $VIP -p 6379 SET hello world"
    say "   ip netns exec $NS_C redis-cli -h $VIP -p 6379 INFO replication"
    say "   $REDVIP status --config $CONF_A    (or $CONF_B; --json)"
    say "   ip -n $NS_A -4 addr show dev eth0; ip -n $NS_B -4 addr show dev eth0    (who holds $VIP)"
    say "   ip netns exec $NS_C $BENCH latency --target $VIP:6379 --duration 5"
    say "   logs: $out/redvip-{a,b}.log, $out/redis-{a,b}.log"
    say "   clean up: bash $work/cleanup.sh"
}

# --keep: a script that removes what the demo left running.
write_cleanup_script() {
    local pid alive=() ns
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    {
        echo "#!/bin/bash"
        echo "# Removes what bench/demo.sh --keep left running (namespaces $prefix-*)."
        echo "for pid in ${alive[*]}; do"
        echo '    # only if it is still ours: redis-server or redvip, not a reused pid'
        echo '    grep -qaE "redis-server|redvip" /proc/$pid/cmdline 2>/dev/null && kill -TERM $pid'
        echo "done"
        echo "for i in \$(seq 50); do"
        echo "    alive=0"
        echo "    for pid in ${alive[*]}; do kill -0 \$pid 2>/dev/null && alive=1; done"
        echo '    [ $alive = 0 ] && break'
        echo "    sleep 0.1"
        echo "done"
        for ns in "${namespaces[@]}"; do echo "ip netns del $ns 2>/dev/null"; done
        echo "rm -rf $work"
        echo "echo 'demo: cleaned up $prefix-*'"
    } >"$work/cleanup.sh"
}

declare -A redis_pid redvip_pid
start_redis() { # node-x NS ADDRESS
    mkdir -p "$work/$1/redis"
    ip netns exec "$2" redis-server --bind "$3" --port 6379 --dir "$work/$1/redis" --save "" \
        --appendonly no --protected-mode no --repl-diskless-sync-delay 0 --daemonize no \
        --logfile "$out/redis-${1#node-}.log" </dev/null >/dev/null 2>&1 &
    redis_pid[$1]=$!
    pids+=($!)
    disown $! # ended by pid; no job notices from bash when it is killed
    wait_until 100 0.05 "redis-server on $3" redis_ping "$2" "$3" || fail "redis-server on $3 did not start"
}

start_redvip() { # node-x NS CONFIG
    mkdir -p "$work/$1/state"
    ip netns exec "$2" "$REDVIP" --config "$3" --log-level debug </dev/null >>"$out/redvip-${1#node-}.log" 2>&1 &
    redvip_pid[$1]=$!
    pids+=($!)
    disown $!
}

# ---- what we look at --------------------------------------------------------

redis_ping() { [ "$(ip netns exec "$1" redis-cli -h "$2" PING 2>/dev/null)" = PONG ]; }
redis_info() { ip netns exec "$1" redis-cli -h "$2" INFO replication 2>/dev/null | tr -d '\r'; }
info_field() { sed -n "s/^$1://p"; }

status_json() { timeout 5 "$REDVIP" status --config "$1" --json 2>/dev/null; }
# status_field CONFIG KEY: a top-level field of `redvip status --json`, "" when unknown.
status_field() {
    status_json "$1" | python3 -c 'import json, sys
try:
    v = json.load(sys.stdin).get(sys.argv[1])
    print("" if v is None else str(v).lower() if isinstance(v, bool) else v)
except Exception:
    pass' "$2" 2>/dev/null
}
state_is() { [ "$(status_field "$1" vrrp_state)" = "$2" ]; }
holds_vip() { ip -n "$1" -4 addr show dev eth0 2>/dev/null | grep -q "inet $VIP/"; }
replicates() { # NS ADDRESS MASTER_ADDRESS: a replica of MASTER with its link up
    local info
    info=$(redis_info "$1" "$2")
    [ "$(info_field role <<<"$info")" = slave ] && [ "$(info_field master_host <<<"$info")" = "$3" ] &&
        [ "$(info_field master_link_status <<<"$info")" = up ]
}
is_master() { [ "$(redis_info "$1" "$2" | info_field role)" = master ]; }

settled() { # MASTER_NS MASTER_ADDR MASTER_CONFIG BACKUP_NS BACKUP_ADDR BACKUP_CONFIG
    state_is "$3" MASTER && state_is "$6" BACKUP && is_master "$1" "$2" && holds_vip "$1" && ! holds_vip "$4" &&
        replicates "$4" "$5" "$2"
}

# One line per node: its election state, its proxy, the VIP, its Redis.
show_node() { # node-x NS ADDRESS CONFIG
    local info role detail vip=no
    info=$(redis_info "$2" "$3")
    role=$(info_field role <<<"$info")
    case "$role" in
    master) detail="master, $(info_field connected_slaves <<<"$info") replica(s)" ;;
    slave) detail="replica of $(info_field master_host <<<"$info"), link $(info_field master_link_status <<<"$info")" ;;
    *) detail="down" ;;
    esac
    holds_vip "$2" && vip="yes"
    printf '   %-7s %-8s proxy %-8s VIP %-3s  Redis %s\n' "${1#node-}" "$(status_field "$4" vrrp_state || true)" \
        "$(status_field "$4" proxy_state)" "$vip" "$detail"
}
show_pair() {
    show_node node-a "$NS_A" "$ADDR_A" "$CONF_A"
    show_node node-b "$NS_B" "$ADDR_B" "$CONF_B"
}

json_field() { # FILE KEY: a top-level field of a redvip-bench report
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
print("" if v is None else str(v).lower() if isinstance(v, bool) else round(v) if isinstance(v, float) else v)' "$1" "$2" 2>/dev/null
}

# failover_run NAME DURATION FAULT_AT FAULT_COMMAND: redvip-bench failover through the VIP from the client.
failover_run() {
    local rc
    ip netns exec "$NS_C" "$BENCH" failover --target "$VIP:6379" --connections 4 --rate 1000 --duration "$2" \
        --fault-at "$3" --fault "$4" --json "$out/$1.json" --svg "$out/$1.svg" >"$out/$1.txt" 2>"$out/$1.stderr" &
    pids+=($!)
    wait $!
    rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "redvip-bench failover exited with $rc: $(tail -n 3 "$out/$1.stderr")"
    [ -s "$out/$1.json" ] || fail "redvip-bench wrote no report to $out/$1.json"
    [[ "$(json_field "$out/$1.json" lost)" =~ ^[0-9]+$ ]] || fail "$out/$1.json has no count of lost writes"
    indent "$out/$1.txt" "$out/$1.stderr"
}

indent() { cat "$@" 2>/dev/null | grep -v '^ *$' | sed 's/^/   | /'; }

# ---- the demo ---------------------------------------------------------------

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it builds network namespaces)" >&2; exit 1; }
for tool in ip redis-server redis-cli python3 timeout "$REDVIP" "$BENCH"; do
    command -v "$tool" >/dev/null || { echo "demo: $tool not found (build first: bash setup.sh)" >&2; exit 1; }
done
mkdir -p "$out" || exit 1
for f in redvip-a.log redvip-b.log redis-a.log redis-b.log check-config-node-a.txt check-config-node-b.txt \
    {latency,failover,switchover}.{json,svg,txt,stderr}; do
    rm -f "${out:?}/$f" # only what this script writes: --out may be a directory of the user's
done
work=$(mktemp -d /tmp/redvip-demo-work.XXXXXX) || exit 1

step "building the network: namespaces $prefix-{node-a,node-b,client} on a bridge in $NS_SW"
build_topology
say "   node-a $ADDR_A, node-b $ADDR_B, client $ADDR_C (eth0 /24, no default route); VIP $VIP"
CONF_A=$work/node-a.toml CONF_B=$work/node-b.toml
node_config node-a
node_config node-b
say "   configs: conf/node-a.toml, conf/node-b.toml (state_dir and admin socket moved to $work)"

step "starting redis-server and redvip on each node (redis-a priority 110, redis-b 100)"
start_redis node-a "$NS_A" "$ADDR_A"
start_redis node-b "$NS_B" "$ADDR_B"
start_redvip node-a "$NS_A" "$CONF_A"
start_redvip node-b "$NS_B" "$CONF_B"
wait_until 300 0.1 "node-a master with the VIP, node-b its replica" \
    settled "$NS_A" "$ADDR_A" "$CONF_A" "$NS_B" "$ADDR_B" "$CONF_B" || fail "the pair did not settle"
say "   settled after $(elapsed_s) s: node-a is master and holds the VIP, node-b replicates from it"
show_pair

step "latency through the VIP ($VIP:6379, via redvip on node-a) vs redis-a direct, from the client"
ip netns exec "$NS_C" "$BENCH" latency --target "$VIP:6379" --compare "$ADDR_A:6379" --command mix \
    --connections 50 --pipeline 1 --duration "$latency_s" --json "$out/latency.json" \
    >"$out/latency.txt" 2>"$out/latency.stderr" &
pids+=($!)
wait $! || fail "redvip-bench latency failed: $(tail -n 3 "$out/latency.stderr")"
indent "$out/latency.txt" "$out/latency.stderr"

step "failover: writing through the VIP for ${failover_s} s; kill -9 of node-a's redis-server at ${failover_at} s"
failover_run failover "$failover_s" "$failover_at" "kill -9 ${redis_pid[node-a]}"
failover_ms=$(json_field "$out/failover.json" window_ms)
failover_worst_ms=$(json_field "$out/failover.json" worst_connection_gap_ms)
failover_lost=$(json_field "$out/failover.json" lost)
[ "$(json_field "$out/failover.json" recovered)" = true ] || fail "writes did not recover after the fault"
wait_until 100 0.1 "node-b master with the VIP" \
    eval 'state_is "$CONF_B" MASTER && holds_vip "$NS_B" && is_master "$NS_B" "$ADDR_B"' ||
    fail "node-b did not take over"
say "   node-b took over: its Redis is master and it holds the VIP; node-a is in $(status_field "$CONF_A" vrrp_state)"
say "   unavailability window ${failover_ms} ms (the worst connection waited ${failover_worst_ms} ms), acknowledged writes lost ${failover_lost}; chart: $out/failover.svg"
show_pair

step "restarting node-a's redis-server (empty: no persistence in the demo)"
restarted_ns=$(date +%s%N)
start_redis node-a "$NS_A" "$ADDR_A"
wait_until 300 0.1 "redis-a to rejoin as a replica of node-b" replicates "$NS_A" "$ADDR_A" "$ADDR_B" ||
    fail "redis-a did not rejoin as a replica"
say "   redis-a rejoined as a replica of $ADDR_B (full sync) $(( ($(date +%s%N) - restarted_ns) / 1000000 )) ms after its restart;"
say "   node-b stays master: no preemption, and an empty node never takes the role"
# Caught up and eligible again: the election sees node-a at its own priority.
wait_until 200 0.1 "node-a BACKUP at priority 110" \
    eval 'state_is "$CONF_A" BACKUP && [ "$(status_field "$CONF_A" effective_priority)" = 110 ]' ||
    say "   (node-a is not back at priority 110 yet; the switchover may be refused)"
show_pair

step "switchover back to redis-a, run on node-b (the master), while writing through the VIP"
# An older redvip answers `switchover --help` with its main help, which has no --to.
if ! "$REDVIP" switchover --help 2>&1 | grep -q -- '--to'; then
    say "   switchover: not available yet"
    finish "demo: failover window ${failover_ms} ms (worst connection ${failover_worst_ms} ms), switchover not available yet, acknowledged writes lost ${failover_lost}" 1
fi
failover_run switchover "$switchover_s" "$switchover_at" \
    "ip netns exec $NS_B $REDVIP switchover --config $CONF_B --to redis-a"
switchover_status=$(json_field "$out/switchover.json" fault_exit_status)
switchover_ms=$(json_field "$out/switchover.json" window_ms)
switchover_worst_ms=$(json_field "$out/switchover.json" worst_connection_gap_ms)
switchover_lost=$(json_field "$out/switchover.json" lost)
[ "$switchover_status" = 0 ] || fail "redvip switchover exited with ${switchover_status:-no status}"
wait_until 100 0.1 "node-a master with the VIP, node-b its replica" \
    settled "$NS_A" "$ADDR_A" "$CONF_A" "$NS_B" "$ADDR_B" "$CONF_B" || fail "node-a did not become master again"
say "   node-a is master again and holds the VIP; node-b replicates from it"
say "   writes paused ${switchover_ms} ms (the worst connection ${switchover_worst_ms} ms), acknowledged writes lost ${switchover_lost}; chart: $out/switchover.svg"
show_pair

lost=$((failover_lost + switchover_lost))
say
say "   reports, charts and logs: $out ($(elapsed_s) s in all)"
summary="demo: failover window ${failover_ms} ms (worst connection ${failover_worst_ms} ms), switchover ${switchover_ms} ms (worst connection ${switchover_worst_ms} ms), acknowledged writes lost ${lost}"
[ "$lost" = 0 ] && finish "$summary" 0
finish "$summary" 1
