#!/usr/bin/env bash
# Soak test (not run in CI): mpmd's demo under a mixed load for a while,
# with memory and descriptor counts sampled before and after. Fails when
# the daemon grew more than the stated bounds.
#
#   sudo scripts/soak.sh [duration, default 10m]
#
# Bounds: after the load and a short rest, the daemon's processes hold at
# most 32 more descriptors in total, and their total RSS is at most
# 64 MiB above the sample taken after warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10m}
addr=127.0.0.1:18999
for tool in wrk ab curl; do
	command -v "$tool" >/dev/null || { echo "soak: $tool is missing (apt-get install wrk apache2-utils curl)" >&2; exit 1; }
done
CGO_ENABLED=0 go build -o bin/mpmd ./examples/mpmd
dir=$(mktemp -d /tmp/mpmd-soak-XXXXXX)
bin/mpmd -demo -demo-dir "$dir" -demo-listen "$addr" >"$dir/mpmd.log" 2>&1 &
master=$!
trap 'kill -TERM $master 2>/dev/null; wait $master 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs -o /dev/null -H 'Host: alice.demo' "http://$addr/" && break; sleep 0.1; done

# sample prints "<processes> <descriptors> <rss KiB>" over the master and
# its children.
sample() {
	local pids procs=0 fds=0 rss=0
	pids="$master $(pgrep -P "$master" | tr '\n' ' ')"
	for p in $pids; do
		[ -d /proc/$p ] || continue
		procs=$((procs + 1))
		fds=$((fds + $(ls /proc/$p/fd 2>/dev/null | wc -l)))
		rss=$((rss + $(awk '/^VmRSS/ {print $2}' /proc/$p/status 2>/dev/null || echo 0)))
	done
	echo "$procs $fds $rss"
}

# Warm up so that pools have grown once.
wrk -t2 -c16 -d5s -H 'Host: bob.demo' "http://$addr/hello.txt" >/dev/null
ab -q -n 200 -c 4 -H 'Host: alice.demo' "http://$addr/index.php" >/dev/null
sleep 2
read -r p0 f0 r0 < <(sample)
echo "soak: before: $p0 processes, $f0 descriptors, $((r0 / 1024)) MiB RSS; load for $duration"

case "$duration" in
*m) secs=$((${duration%m} * 60)) ;;
*s) secs=${duration%s} ;;
*) echo "soak: duration $duration: use e.g. 10m or 90s" >&2; exit 2 ;;
esac
end=$(( $(date +%s) + secs ))
wrk -t2 -c16 -d"$duration" -H 'Host: bob.demo' "http://$addr/hello.txt" >"$dir/wrk.txt" &
wrkpid=$!
php_ok=0 php_fail=0
# req runs one curl and counts it; a failure is written to failures.txt
# with the time, curl's exit status and error, and the HTTP codes seen,
# so that its cause can be looked for in mpmd.log.
req() {
	local out rc
	out=$(curl -sS -w '%{http_code} ' --max-time 10 "$@" 2>&1) && rc=0 || rc=$?
	if [ "$rc" = 0 ] && [[ "$out" =~ ^(2[0-9][0-9] )+$ ]]; then
		php_ok=$((php_ok + 1))
		return
	fi
	php_fail=$((php_fail + 1))
	echo "$(date -u +%H:%M:%S.%N) exit=$rc codes/error: $out; request: $*" >>"$dir/failures.txt"
}
while [ "$(date +%s)" -lt "$end" ]; do
	for h in alice.demo bob.demo; do
		req -o /dev/null -H "Host: $h" "http://$addr/index.php"
	done
	# keep-alive across identities on one connection
	req -o /dev/null -o /dev/null --resolve "alice.demo:${addr##*:}:127.0.0.1" --resolve "bob.demo:${addr##*:}:127.0.0.1" \
		"http://alice.demo:${addr##*:}/hello.txt" "http://bob.demo:${addr##*:}/hello.txt"
done
wait $wrkpid
sleep 5
read -r p1 f1 r1 < <(sample)
echo "soak: after:  $p1 processes, $f1 descriptors, $((r1 / 1024)) MiB RSS"
echo "soak: static load: $(grep -E 'Requests/sec' "$dir/wrk.txt"); non-2xx/errors: $(grep -cE 'Non-2xx|Socket errors' "$dir/wrk.txt" || true)"
echo "soak: php and keep-alive requests: $php_ok ok, $php_fail failed"
status=0
if [ $((f1 - f0)) -gt 32 ]; then echo "soak: FAIL: descriptors grew by $((f1 - f0))"; status=1; fi
if [ $((r1 - r0)) -gt $((64 * 1024)) ]; then echo "soak: FAIL: RSS grew by $(((r1 - r0) / 1024)) MiB"; status=1; fi
if [ "$php_fail" -gt 0 ]; then
	echo "soak: FAIL: $php_fail requests failed:"
	sed 's/^/  /' "$dir/failures.txt"
	echo "soak: warnings and errors in $dir/mpmd.log:"
	grep -E 'level=(WARN|ERROR)' "$dir/mpmd.log" | tail -20 | sed 's/^/  /'
	status=1
fi
[ $status -eq 0 ] && echo "soak: OK"
exit $status
