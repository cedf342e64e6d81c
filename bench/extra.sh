#!/bin/bash
# The figures run.sh does not give, from one run, one table (see
# bench/README.md):
#   1. dispatch overhead: mpmd's worker serving a static file through the
#      multiplexer vs a plain net/http FileServer (bench/plainhttp) serving
#      the same file, ab -c8 with and without keep-alive, REPS interleaved
#      repetitions, ratio of the medians;
#   2. cold start: first request to an idle on-demand pool (min = 0) vs a
#      second request right after, median over COLD_N identities;
#   3. memory: total PSS of the mpmd master and all its descendants with
#      N_SITES idle identities, after one static request to every site,
#      and after one PHP (fpm) request to every site.
# Needs root (mpmd switches to the numeric uids 2201-2300 and 2301; no
# accounts are created) but not the anchors: no Apache here.
#
# Env: REPS (3), N_NEW (10000), N_KA (50000), N_SITES (100), COLD_N (20).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
REPS=${REPS:-3}
N_NEW=${N_NEW:-10000}; N_KA=${N_KA:-50000}
N_SITES=${N_SITES:-100}; COLD_N=${COLD_N:-20}
OUT="$HERE/results/$(date +%Y%m%d-%H%M%S)-extra"
WORK=/run/mpmd-bench-extra
P_DISPATCH=8101 P_PLAIN=8102 P_SITES=8103
UID0=2201            # the sites' uids: UID0 .. UID0+N_SITES-1 (2201-2300)
UID_DISPATCH=2301    # the dispatch test's identity
MUX_ID=2398          # the multiplexers' uid and gid, as in run.sh

[ "$(id -u)" = 0 ] || { echo "run as root (mpmd switches users)" >&2; exit 1; }
for t in ab curl php-cgi ps ss; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
[ "$N_SITES" -le 100 ] || { echo "N_SITES at most 100 (uids $UID0-2300)" >&2; exit 1; }
[ "$COLD_N" -le "$N_SITES" ] || { echo "COLD_N must not exceed N_SITES" >&2; exit 1; }
for p in $P_DISPATCH $P_PLAIN $P_SITES; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p already in use" >&2; exit 1; fi
done
mkdir -p "$OUT"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- processes: everything this script starts is in PIDS; cleanup also
# kills whatever of their descendants (workers, php-cgi) outlives them.
PIDS=()
descendants() { # pid: the pid and all its descendants, one a line
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { kids[$2] = kids[$2] " " $1 }
        END { q[1] = root; n = 1
              for (i = 1; i <= n; i++) { print q[i]; m = split(kids[q[i]], k, " ")
                                         for (j = 1; j <= m; j++) q[++n] = k[j] } }'
}
stop() { # pid: TERM it, wait, then TERM any descendant left behind
    local pid=$1 left p
    left=$(descendants "$pid" | tail -n +2)
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in $left; do kill -TERM "$p" 2>/dev/null || true; done
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do stop "$p"; done
    PIDS=()
}
trap cleanup EXIT

wait_listen() { # port: until something listens on it. Checked with ss,
    # not by connecting: nothing reaches the 100-site daemon before its
    # idle snapshot.
    local i
    for i in $(seq 1 100); do
        [ -n "$(ss -Hltn "sport = :$1")" ] && return 0
        sleep 0.1
    done
    echo "nothing listens on $1" >&2; exit 1
}

# ---- build
mkdir -p "$HERE/.build"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$HERE/.build/mpmd" ./examples/mpmd \
             && CGO_ENABLED=0 go build -o "$HERE/.build/plainhttp" ./bench/plainhttp)

# ---- document roots: owned by the site's uid, 0750, so that only the
# site (and root) reads it, as a real deployment would; the 1 KiB file is
# the same size as run.sh's static.txt.
rm -rf "$WORK"
install -d -m 0755 "$WORK" "$WORK/www"
docroot() { # dir uid
    install -d -m 0750 -o "$2" -g "$2" "$1"
    head -c 1024 /dev/zero | tr '\0' x >"$1/static.txt"
    echo '<?php echo "hello";' >"$1/hello.php"
    chown "$2:$2" "$1/static.txt" "$1/hello.php"
    chmod 0640 "$1/static.txt" "$1/hello.php"
}

server_toml() { # port run_dir
    cat <<TOML
[server]
listen = ["127.0.0.1:$1"]
admin = "off"
run_dir = "$2"
multiplexer_user = "$MUX_ID"
multiplexer_group = "$MUX_ID"
TOML
}
identity_toml() { # name uid docroot php_mode ("off": no PHP)
    local php=true mode=$4
    [ "$mode" = off ] && php=false mode=cgi
    cat <<TOML

[identity.$1]
user = "$2"
group = "$2"

[[vhost]]
server_name = "$1.test"
document_root = "$3"
identity = "$1"
php = $php
php_mode = "$mode"
TOML
}
start_mpmd() { # name: config in $WORK/<name>.toml, log in $OUT
    "$HERE/.build/mpmd" -config "$WORK/$1.toml" >"$OUT/mpmd-$1.log" 2>&1 &
    PIDS+=($!)
    MPMD_PID=$!
}

# the middle value (for an even count, the lower of the two middle ones)
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "-" }'; }

# =====================================================================
# 1. dispatch overhead
# =====================================================================
docroot "$WORK/www/dispatch" $UID_DISPATCH
{ server_toml $P_DISPATCH "$WORK/run-dispatch"; identity_toml dispatch $UID_DISPATCH "$WORK/www/dispatch" off; } >"$WORK/dispatch.toml"
start_mpmd dispatch
"$HERE/.build/plainhttp" -listen 127.0.0.1:$P_PLAIN -root "$WORK/www/dispatch" >"$OUT/plainhttp.log" 2>&1 &
PIDS+=($!)
wait_listen $P_DISPATCH; wait_listen $P_PLAIN

port() { case $1 in mpmd) echo $P_DISPATCH ;; plain) echo $P_PLAIN ;; esac; }
ab_rps() { # file system k n
    ab -q -r $3 -n "$4" -c 8 -H "Host: dispatch.test" "http://127.0.0.1:$(port "$2")/static.txt" >"$1" 2>&1 || true
    if grep -Eq '^(Non-2xx|Failed requests: +[1-9])' "$1"; then echo "warning: errors in $1" >&2; fi
    awk '/^Requests per second/ {print $4}' "$1"
}
for s in mpmd plain; do # both answer the same bytes, then warm up (grows mpmd's pool)
    [ "$(curl -fs -H "Host: dispatch.test" "http://127.0.0.1:$(port $s)/static.txt" | wc -c)" = 1024 ] ||
        { echo "$s does not serve static.txt" >&2; exit 1; }
    ab_rps /dev/null $s "" 1000 >/dev/null
    ab_rps /dev/null $s -k 2000 >/dev/null
done
declare -A R M
for r in $(seq 1 "$REPS"); do
    for t in new ka; do
        for s in mpmd plain; do
            if [ $t = ka ]; then v=$(ab_rps "$OUT/dispatch.$s.$t.$r.txt" $s -k "$N_KA")
            else v=$(ab_rps "$OUT/dispatch.$s.$t.$r.txt" $s "" "$N_NEW"); fi
            R[$s.$t]="${R[$s.$t]:-} ${v:-0}"
            echo "rep $r dispatch $t $s: $v req/s" >&2
        done
    done
done
for s in mpmd plain; do for t in new ka; do M[$s.$t]=$(median <<<"${R[$s.$t]}"); done; done
# share of the keep-alive test's requests that ab sent on a kept-alive
# connection: below 100 % the server closed connections between requests
ka_pct() { # system
    cat "$OUT"/dispatch."$1".ka.*.txt | awk -v n="$N_KA" '/^Keep-Alive requests/ {printf "%.1f ", 100 * $3 / n}' | median
}
KA_PCT_MPMD=$(ka_pct mpmd); KA_PCT_PLAIN=$(ka_pct plain)
cleanup

# =====================================================================
# 2 and 3. N_SITES identities, one daemon: idle memory, cold start,
# memory after a static burst, memory after a PHP burst
# =====================================================================
site() { echo "s$((UID0 + $1 - 1))"; } # site number (1-based) -> name
{
    server_toml $P_SITES "$WORK/run-sites"
    for i in $(seq 1 "$N_SITES"); do
        u=$((UID0 + i - 1))
        docroot "$WORK/www/s$u" $u
        identity_toml "s$u" $u "$WORK/www/s$u" fpm
    done
} >"$WORK/sites.toml"
"$HERE/.build/mpmd" -check -config "$WORK/sites.toml" >"$OUT/sites-check.txt" 2>&1 ||
    { cat "$OUT/sites-check.txt" >&2; exit 1; }
start_mpmd sites
SITES_PID=$MPMD_PID
wait_listen $P_SITES

# snapshot label: PSS of the master and every descendant, one line per
# process in $OUT/mem-<label>.txt; sets MEM_MIB and MEM_N
snapshot() {
    local f="$OUT/mem-$1.txt" pid
    echo "pid ppid uid comm pss_kB pss_anon_kB pss_file_kB pss_shmem_kB" >"$f"
    for pid in $(descendants "$SITES_PID"); do
        [ -r "/proc/$pid/smaps_rollup" ] || continue
        echo "$pid $(ps -o ppid=,uid=,comm= -p "$pid" | xargs) $(awk '
            /^Pss:/ {p = $2} /^Pss_Anon:/ {a = $2} /^Pss_File:/ {f = $2} /^Pss_Shmem:/ {s = $2}
            END {print p, a, f, s}' "/proc/$pid/smaps_rollup")" >>"$f"
    done
    MEM_N=$(($(wc -l <"$f") - 1))
    MEM_MIB=$(awk 'NR > 1 {s += $5} END {printf "%.1f", s / 1024}' "$f")
    # per kind: the master, the multiplexers (their uid), workers, php-cgi
    awk -v m="$SITES_PID" -v mux=$MUX_ID 'NR > 1 {
            k = ($1 == m) ? "master" : ($3 == mux) ? "multiplexer" : ($4 == "mpmd") ? "worker" : $4
            n[k]++; s[k] += $5; a[k] += $6 }
        END { for (k in n) printf "%s: %d processes, %.1f MiB (anon %.1f)\n", k, n[k], s[k] / 1024, a[k] / 1024 }' "$f" | sort >"$f.summary"
    echo "memory $1: $MEM_MIB MiB in $MEM_N processes" >&2
    sed 's/^/  /' "$f.summary" >&2
}
declare -A MEM NPROC
sleep 1 # let the multiplexers finish starting
snapshot idle; MEM[idle]=$MEM_MIB; NPROC[idle]=$MEM_N
# CPU the idle daemon burns (every pool has its own watcher and ticker),
# as % of one CPU over 3 s: utime + stime of the master and descendants
cpu_ticks() {
    local pid t=0
    for pid in $(descendants "$SITES_PID"); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo $t
}
cpu0=$(cpu_ticks); sleep 3; cpu1=$(cpu_ticks)
IDLE_CPU=$(awk -v d=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", 100 * d / hz / 3}')
IDLE_THREADS=$(ls "/proc/$SITES_PID/task" | wc -l)
echo "idle: ${IDLE_CPU} % of one CPU, master threads $IDLE_THREADS" >&2

# cold start: time_total of the first request to an idle pool and of a
# second request right after (a new connection too), for sites 1..COLD_N
get() { # site path: prints "http_code time_total"
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "Host: $1.test" "http://127.0.0.1:$P_SITES/$2"
}
echo "site first_ms warm_ms added_ms" >"$OUT/coldstart.txt"
for i in $(seq 1 "$COLD_N"); do
    read -r c1 t1 < <(get "$(site "$i")" static.txt)
    read -r c2 t2 < <(get "$(site "$i")" static.txt)
    [ "$c1 $c2" = "200 200" ] || { echo "cold start $(site "$i"): HTTP $c1 $c2" >&2; exit 1; }
    awk -v s="$(site "$i")" -v a="$t1" -v b="$t2" 'BEGIN{printf "%s %.2f %.2f %.2f\n", s, a*1000, b*1000, (a-b)*1000}' >>"$OUT/coldstart.txt"
done
col() { awk -v c="$1" 'NR > 1 {printf "%s ", $c}' "$OUT/coldstart.txt"; }
COLD_FIRST=$(col 2 | median); COLD_WARM=$(col 3 | median); COLD_ADDED=$(col 4 | median)
echo "cold start: first $COLD_FIRST ms, warm $COLD_WARM ms, added $COLD_ADDED ms (medians)" >&2

burst() { # path: one request to every site, in order; all must be 200
    local i c t
    for i in $(seq 1 "$N_SITES"); do
        read -r c t < <(get "$(site "$i")" "$1")
        [ "$c" = 200 ] || { echo "$(site "$i")/$1: HTTP $c" >&2; exit 1; }
    done
}
burst static.txt
snapshot static; MEM[static]=$MEM_MIB; NPROC[static]=$MEM_N
burst hello.php
snapshot php; MEM[php]=$MEM_MIB; NPROC[php]=$MEM_N
cleanup

# =====================================================================
# the table
# =====================================================================
{
    echo "Machine: $(. /etc/os-release; echo "$PRETTY_NAME"), $(nproc) vCPU, kernel $(uname -r), PHP $(php -r 'echo PHP_VERSION;'), $(go version | awk '{print $3}')"
    echo "Run: $(date -u +%Y-%m-%dT%H:%MZ), REPS=$REPS, N_NEW=$N_NEW, N_KA=$N_KA, N_SITES=$N_SITES, COLD_N=$COLD_N, load before: $LOAD0"
    echo
    echo "| measurement | measured | target | detail |"
    echo "|---|---|---|---|"
    echo "| dispatch, new connection per request (ab -c8), mpmd / plain net/http | $(ratio "${M[mpmd.new]}" "${M[plain.new]}")x | >= 0.9x | median req/s mpmd ${M[mpmd.new]} (${R[mpmd.new]# }), plain ${M[plain.new]} (${R[plain.new]# }) |"
    echo "| dispatch, keep-alive (ab -k -c8), mpmd / plain net/http | $(ratio "${M[mpmd.ka]}" "${M[plain.ka]}")x | >= 0.97x | median req/s mpmd ${M[mpmd.ka]} (${R[mpmd.ka]# }), plain ${M[plain.ka]} (${R[plain.ka]# }); requests on a kept-alive connection: mpmd $KA_PCT_MPMD %, plain $KA_PCT_PLAIN % |"
    echo "| cold start: added latency of the first request to an idle pool | $COLD_ADDED ms | <= 5 ms | median over $COLD_N identities; first $COLD_FIRST ms, warm $COLD_WARM ms (medians) |"
    echo "| PSS, $N_SITES identities idle | ${MEM[idle]} MiB | <= 64 MiB | ${NPROC[idle]} processes: $(paste -sd';' "$OUT/mem-idle.txt.summary" | sed 's/;/; /g'); idle, they use $IDLE_CPU % of one CPU; the master has $IDLE_THREADS threads |"
    echo "| PSS after one static request to each site | ${MEM[static]} MiB | - | ${NPROC[static]} processes: $(paste -sd';' "$OUT/mem-static.txt.summary" | sed 's/;/; /g') |"
    echo "| PSS after one PHP (fpm) request to each site | ${MEM[php]} MiB | - | ${NPROC[php]} processes: $(paste -sd';' "$OUT/mem-php.txt.summary" | sed 's/;/; /g') |"
} | tee "$OUT/table.md"
echo "raw output: $OUT" >&2
