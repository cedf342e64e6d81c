#!/usr/bin/env bash
# make cluster-test: Debian's HAProxy in front of three mpmd nodes on
# loopback addresses, with PROXY protocol v2 from HAProxy to the nodes and
# HAProxy's health checks. Checks that every site answers from its node as
# its user, that the client's address reaches PHP, that a node killed with
# kill -9 is marked down while a site two nodes serve keeps answering,
# that a node's graceful reload (SIGHUP) under light load loses no
# request, and that a binary upgrade (SIGUSR2, after the file at the
# node's path was replaced by another build) loses none either. Root, Debian; installs haproxy (and php-cgi, curl) when
# missing. Everything it starts and creates is removed on exit, failure
# included (CLUSTER_KEEP=1 keeps the temporary directory).
#
#   node n1 127.0.0.2:8080   alice.test (uid 2445)
#   node n2 127.0.0.3:8080   bob.test (uid 2446), shared.test (uid 2447)
#   node n3 127.0.0.4:8080   shared.test (uid 2447)
#   HAProxy 127.0.0.1:$PORT  Host -> backend from `mpmd -export haproxy-map`
set -euo pipefail

cd "$(dirname "$0")/.."
export CGO_ENABLED=0
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

if [ "$(id -u)" -ne 0 ]; then
	echo "cluster: needs root (the sites run as their own uids)" >&2
	exit 1
fi
need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v php-cgi >/dev/null 2>&1 || need+=(php-cgi)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
	echo "cluster: installing ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi

ALICE=2445 BOB=2446 SHARED=2447 MUXID=2448
for id in $ALICE $BOB $SHARED $MUXID; do
	if getent passwd "$id" >/dev/null || getent group "$id" >/dev/null; then
		echo "cluster: uid/gid $id has an account here; the script uses 2445-2448 without accounts" >&2
		exit 1
	fi
done

TMP=$(mktemp -d /tmp/mpmd-cluster.XXXXXX)
chmod 0755 "$TMP"
PIDS=()
fails=0
# running PID: the process exists and is not a zombie (a master started
# by an upgrade is reparented to PID 1, which may not reap it).
running() { [ -r "/proc/$1/stat" ] && [[ $(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null) != " Z"* ]]; }
cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do running "$p" || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ "${CLUSTER_KEEP:-}" = 1 ]; then echo "cluster: kept $TMP"; else rm -rf "$TMP"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# Two builds that report different versions: the nodes run the first;
# check 5 installs the second and upgrades n1 to it.
go build -o "$TMP/mpmd" -ldflags "-X main.version=cluster1" ./examples/mpmd
go build -o "$TMP/mpmd-cluster2" -ldflags "-X main.version=cluster2" ./examples/mpmd
chmod 0755 "$TMP/mpmd" "$TMP/mpmd-cluster2"

# freeport: a port nothing listens on at 127.0.0.1 (a connect is refused).
freeport() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}
PORT=$(freeport)
STATS=$(freeport)

# The sites: PHP prints the node, its uid and the client address it sees.
# shellcheck disable=SC2016 # PHP's variables, not the shell's
page='<?php printf("%s uid=%d remote=%s\n", getenv("NODE"), posix_geteuid(), $_SERVER["REMOTE_ADDR"]);'
for s in alice:$ALICE bob:$BOB shared:$SHARED; do
	name=${s%%:*} id=${s##*:}
	mkdir -p "$TMP/sites/$name"
	printf '%s' "$page" >"$TMP/sites/$name/index.php"
	chown -R "$id:$id" "$TMP/sites/$name"
	chmod -R go-rwx "$TMP/sites/$name"
done
chmod 0755 "$TMP/sites"

# node NAME ADDR SITE... writes the node's configuration.
node() {
	local n=$1 addr=$2
	shift 2
	mkdir -p "$TMP/$n"
	{
		printf '[server]\nlisten = ["%s"]\nrun_dir = "%s"\nmultiplexer_user = "%s"\nmultiplexer_group = "%s"\n' "$addr" "$TMP/$n/run" $MUXID $MUXID
		for s in "$@"; do
			name=${s%%:*} id=${s##*:}
			printf '\n[identity.%s]\nuser = "%s"\ngroup = "%s"\n' "$name" "$id" "$id"
			printf '\n[[vhost]]\nserver_name = "%s.test"\ndocument_root = "%s"\nidentity = "%s"\nphp = true\nenv = { NODE = "%s" }\n' "$name" "$TMP/sites/$name" "$name" "$n"
		done
		# HAProxy connects from 127.0.0.1 (its "source" below).
		printf '\n[listener."%s"]\nproxy_protocol = true\ntrusted_proxies = ["127.0.0.1"]\n' "$addr"
	} >"$TMP/$n/mpmd.toml"
}
node n1 127.0.0.2:8080 alice:$ALICE
node n2 127.0.0.3:8080 bob:$BOB shared:$SHARED
node n3 127.0.0.4:8080 shared:$SHARED
declare -A ADDR=([n1]=127.0.0.2:8080 [n2]=127.0.0.3:8080 [n3]=127.0.0.4:8080)
declare -A MPMD

for n in n1 n2 n3; do
	"$TMP/mpmd" -config "$TMP/$n/mpmd.toml" >"$TMP/$n/log" 2>&1 &
	MPMD[$n]=$!
	PIDS+=($!)
done

# The map, and one backend per set of nodes it names (its header lists
# them: "#   n2_n3: n2 n3").
"$TMP/mpmd" -export haproxy-map -node n1="$TMP/n1/mpmd.toml" -node n2="$TMP/n2/mpmd.toml" -node n3="$TMP/n3/mpmd.toml" >"$TMP/mpmd.map"
{
	cat <<EOF
global
	pidfile $TMP/haproxy.pid
defaults
	mode http
	timeout connect 2s
	timeout client 10s
	timeout server 10s
	retries 3
	option redispatch
	default-server send-proxy-v2 check inter 200ms fall 2 rise 1 source 127.0.0.1
frontend web
	bind 127.0.0.1:$PORT
	use_backend %[req.hdr(host),lower,word(1,:),map($TMP/mpmd.map)]
listen stats
	bind 127.0.0.1:$STATS
	stats enable
	stats uri /stats
EOF
	sed -n 's/^#   \([a-z0-9_-]*\): \(.*\)$/\1 \2/p' "$TMP/mpmd.map" | while read -r backend nodes; do
		printf 'backend %s\n\tbalance roundrobin\n' "$backend"
		for n in $nodes; do printf '\tserver %s %s\n' "$n" "${ADDR[$n]}"; done
	done
} >"$TMP/haproxy.cfg"
haproxy -c -q -f "$TMP/haproxy.cfg"
haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
PIDS+=($!)

get() { # get HOST [curl args...]: prints "CODE BODY"
	local host=$1
	shift
	curl -s -m 5 -o - -w ' %{http_code}' -H "Host: $host" "$@" "http://127.0.0.1:$PORT/" 2>/dev/null || true
}

# Up: every site answers (bounded).
for _ in $(seq 100); do
	ok=1
	for h in alice.test bob.test shared.test; do
		[[ $(get $h) == *" 200" ]] || ok=0
	done
	[ $ok = 1 ] && break
	sleep 0.2
done

# 1. Every site from its node, as its user.
check_site() { # HOST WANT...
	local h=$1 out
	shift
	out=$(get "$h")
	for w in "$@"; do
		if [[ $out != *"$w"* ]]; then
			fail "$h: got '$out', want '$w'"
			return
		fi
	done
	pass "$h answers: ${out%$'\n'*}"
}
check_site alice.test "n1 uid=$ALICE" " 200"
check_site bob.test "n2 uid=$BOB" " 200"
seen=""
for _ in $(seq 6); do seen+=$(get shared.test); done
if [[ $seen == *"n2 uid=$SHARED"* && $seen == *"n3 uid=$SHARED"* ]]; then
	pass "shared.test answers from n2 and n3 as uid $SHARED"
else
	fail "shared.test: want answers from n2 and n3 as uid $SHARED, got: $seen"
fi

# 2. The client's address reaches PHP through PROXY v2.
for h in alice.test bob.test shared.test; do
	out=$(get $h --interface 127.0.0.9)
	if [[ $out == *"remote=127.0.0.9"*" 200" ]]; then
		pass "$h sees the client, 127.0.0.9, not HAProxy's 127.0.0.1"
	else
		fail "$h from 127.0.0.9: got '$out', want remote=127.0.0.9"
	fi
done

# 3. kill -9 a node: HAProxy marks it down; shared.test keeps answering.
kill -KILL "${MPMD[n3]}"
wait "${MPMD[n3]}" 2>/dev/null || true
bad=0
for _ in $(seq 30); do
	[[ $(get shared.test) == *"n2 uid=$SHARED"*" 200" ]] || bad=$((bad + 1))
	sleep 0.05
done
if [ $bad = 0 ]; then
	pass "shared.test: 30 of 30 answers from n2 after kill -9 of n3"
else
	fail "shared.test: $bad of 30 requests failed after kill -9 of n3"
fi
down=""
for _ in $(seq 50); do
	down=$(curl -s -m 2 "http://127.0.0.1:$STATS/stats;csv" | awk -F, '$1=="n2_n3" && $2=="n3" {print $18}')
	[[ $down == DOWN* ]] && break
	sleep 0.1
done
if [[ $down == DOWN* ]]; then
	pass "HAProxy marked n3 $down"
else
	fail "HAProxy shows n3 as '$down', want DOWN"
fi

# 4. A graceful reload (SIGHUP) of n1 under light load loses no request.
: >"$TMP/codes"
load() {
	local end=$((SECONDS + 4))
	while [ $SECONDS -lt $end ]; do
		curl -s -m 10 -o /dev/null -w '%{http_code}\n' -H 'Host: alice.test' "http://127.0.0.1:$PORT/" >>"$TMP/codes" || echo "curl-failed" >>"$TMP/codes"
	done
}
lp=()
for _ in 1 2 3 4; do
	load &
	lp+=($!)
done
sleep 1
kill -HUP "${MPMD[n1]}"
sleep 1
kill -HUP "${MPMD[n1]}"
wait "${lp[@]}"
total=$(wc -l <"$TMP/codes")
bad=$(grep -vc '^200$' "$TMP/codes" || true)
if [ "$total" -gt 20 ] && [ "$bad" = 0 ]; then
	pass "two SIGHUP reloads of n1 under load: $total requests, all 200"
else
	fail "SIGHUP reloads of n1 under load: $bad of $total requests not 200: $(sort "$TMP/codes" | uniq -c | tr '\n' ' ')"
fi

# 5. A binary upgrade (SIGUSR2) of n1 under load loses no request, and n1
# then runs the new build. The new file replaces the old by rename, as
# dpkg and install(1) do; the running master runs on from the old one.
version() { # version NODE: the Server header of the node's status page
	curl -s -m 5 -o /dev/null -D - --unix-socket "$TMP/$1/run/status.sock" http://status/ 2>/dev/null |
		tr -d '\r' | sed -n 's/^[Ss]erver: //p'
}
: >"$TMP/codes"
cp "$TMP/mpmd-cluster2" "$TMP/mpmd.new"
mv "$TMP/mpmd.new" "$TMP/mpmd"
before=$(version n1)
lp=()
for _ in 1 2 3 4; do
	load &
	lp+=($!)
done
sleep 1
old=${MPMD[n1]}
kill -USR2 "$old"
new=""
for _ in $(seq 100); do
	new=$(sed -n 's/.*the new master is ready.* pid=\([0-9]*\).*/\1/p' "$TMP/n1/log" | tail -1)
	[ -n "$new" ] && break
	sleep 0.1
done
if [ -n "$new" ]; then
	MPMD[n1]=$new
	PIDS+=("$new") # stopped by cleanup too; the old master ends on its own
fi
wait "${lp[@]}"
total=$(wc -l <"$TMP/codes")
bad=$(grep -vc '^200$' "$TMP/codes" || true)
after=$(version n1)
if [ -z "$new" ]; then
	fail "SIGUSR2 to n1 (pid $old): no new master within 10s"
elif [ "$total" -gt 20 ] && [ "$bad" = 0 ]; then
	pass "SIGUSR2 upgrade of n1 under load: $total requests, all 200"
else
	fail "SIGUSR2 upgrade of n1 under load: $bad of $total requests not 200: $(sort "$TMP/codes" | uniq -c | tr '\n' ' ')"
fi
if [ "$before" = mpmd/cluster1 ] && [ "$after" = mpmd/cluster2 ]; then
	pass "n1 reported $before before the upgrade, $after after (pid $old -> $new)"
else
	fail "n1's version: '$before' before the upgrade, '$after' after; want mpmd/cluster1, then mpmd/cluster2"
fi

if [ "$fails" -gt 0 ]; then
	echo "cluster: $fails checks FAILED (logs: $TMP; CLUSTER_KEEP=1 keeps them)"
	for f in "$TMP"/n?/log "$TMP/haproxy.log"; do echo "== $f"; tail -20 "$f"; done
	exit 1
fi
echo "cluster: all checks passed"
