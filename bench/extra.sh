#!/bin/bash
# The figures run.sh does not give, from one run (see bench/README.md):
#   1. dispatch overhead: mpmd's worker serving a static file through the
#      multiplexer vs a plain net/http FileServer (bench/plainhttp) serving
#      the same file, ab -c8 with and without keep-alive, REPS interleaved
#      repetitions, ratio of the medians;
#   2. cold start: first request to an idle identity (no worker) vs a
#      second request right after, median over COLD_N identities, against
#      its floor measured in between: starting the same mpmd binary as
#      that identity's uid and seeing it exit (bench/startfloor);
#   3. memory: total PSS of the mpmd master and all its descendants with
#      N_SITES idle identities (PHP in fpm mode), after one static request
#      to every site, and after one PHP request to every site; then the
#      same sites served by Debian's php-fpm (one master as root, a pool
#      per uid, pm = ondemand), one hello.php each (bench/fcgiget), and
#      its master and children summed the same way.
# mpmd runs with its defaults (no [pool] table, the default admin socket);
# MPMD_POOL adds lines to [pool] for experiments.
# Needs root (mpmd switches to the numeric uids 2201-2300 and 2301; no
# accounts are created) but not the anchors: no Apache here.
#
# Env: REPS (3), N_NEW (10000), N_KA (50000), N_SITES (100), COLD_N (20),
#      FLOOR_K (3: floor samples per cold-start site), PHP_FPM (the
#      reference php-fpm, default /usr/sbin/php-fpm8.2), OUT (results
#      directory; default bench/results/<date>), MPMD_POOL.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
. "$HERE/lib.sh"
REPS=${REPS:-3}
N_NEW=${N_NEW:-10000}; N_KA=${N_KA:-50000}
N_SITES=${N_SITES:-100}; COLD_N=${COLD_N:-20}; FLOOR_K=${FLOOR_K:-3}
PHP_FPM=${PHP_FPM:-/usr/sbin/php-fpm8.2}
OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
WORK=/run/mpmd-bench-extra
P_DISPATCH=8101 P_PLAIN=8102 P_SITES=8103
UID0=2201            # the sites' uids: UID0 .. UID0+N_SITES-1 (2201-2300)
UID_DISPATCH=2301    # the dispatch test's identity
MUX_ID=2398          # the multiplexers' uid and gid, as in run.sh

[ "$(id -u)" = 0 ] || { echo "run as root (mpmd switches users)" >&2; exit 1; }
for t in ab curl go ps ss; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
[ -x "$PHP_FPM" ] || { echo "missing $PHP_FPM (Debian's php-fpm: apt-get install php-fpm)" >&2; exit 1; }
[ "$N_SITES" -le 100 ] || { echo "N_SITES at most 100 (uids $UID0-2300)" >&2; exit 1; }
[ "$COLD_N" -le "$N_SITES" ] || { echo "COLD_N must not exceed N_SITES" >&2; exit 1; }
for p in $P_DISPATCH $P_PLAIN $P_SITES; do
    if port_used $p; then echo "port $p already in use" >&2; exit 1; fi
done
mkdir -p "$OUT"
VARS=$OUT/extra.vars
: >"$VARS"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- processes: everything this script starts is in PIDS; cleanup also
# kills whatever of their descendants (workers, PHP) outlives them.
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do stop_tree "$p"; done
    PIDS=()
}
trap cleanup EXIT
# a signal ends the script through exit, so that the EXIT trap runs
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM

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
(cd "$REPO" && for p in examples/mpmd bench/plainhttp bench/startfloor bench/fcgiget; do
     CGO_ENABLED=0 go build -o "$HERE/.build/$(basename $p)" ./$p || exit 1; done)
MPMD=$HERE/.build/mpmd

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

# Only what has no default or must differ here: the listener, run_dir,
# the multiplexers' uid (required as root), identities and vhosts.
server_toml() { # port run_dir
    cat <<TOML
[server]
listen = ["127.0.0.1:$1"]
run_dir = "$2"
multiplexer_user = "$MUX_ID"
multiplexer_group = "$MUX_ID"
TOML
    if [ -n "${MPMD_POOL:-}" ]; then printf '\n[pool]\n%s\n' "$MPMD_POOL"; fi
}
identity_toml() { # name uid docroot php_mode ("off": no PHP)
    cat <<TOML

[identity.$1]
user = "$2"
group = "$2"

[[vhost]]
server_name = "$1.test"
document_root = "$3"
identity = "$1"
TOML
    if [ "$4" != off ]; then printf 'php = true\nphp_mode = "%s"\n' "$4"; fi
}
start_mpmd() { # name: config in $WORK/<name>.toml, checked first; log in $OUT
    cp "$WORK/$1.toml" "$OUT/mpmd-$1.toml"
    "$MPMD" -check -config "$WORK/$1.toml" >"$OUT/mpmd-$1.check.txt" 2>&1 ||
        { cat "$OUT/mpmd-$1.check.txt" >&2; exit 1; }
    "$MPMD" -config "$WORK/$1.toml" >"$OUT/mpmd-$1.log" 2>&1 &
    PIDS+=($!)
    MPMD_PID=$!
}

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
for s in mpmd plain; do # both answer the same bytes, then warm up (starts mpmd's workers)
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
start_mpmd sites
SITES_PID=$MPMD_PID
wait_listen $P_SITES

# settle PID: until the process tree under PID has had the same size for
# a second (every identity's PHP-FPM starts with the daemon), at most 30 s
settle() {
    local last=-1 same=0 n i
    for i in $(seq 1 120); do
        n=$(descendants "$1" | wc -l)
        if [ "$n" = "$last" ]; then same=$((same + 1)); [ $same -ge 4 ] && return 0; else same=0; fi
        last=$n
        sleep 0.25
    done
    echo "warning: the process tree of $1 still changes after 30 s" >&2
}

# snapshot label root-pid: PSS of the root and every descendant, one line
# per process in $OUT/mem-<label>.txt, with a summary by kind in
# mem-<label>.txt.summary; sets MEM_MIB and MEM_N. Kinds: the root
# ("master" or, for php-fpm, "php-fpm-master"), mpmd's children by role
# (multiplexer, worker, status, php: the process that runs an identity's
# PHP-FPM), php-fpm-master and php-fpm-child, php-cgi.
snapshot() {
    local f="$OUT/mem-$1.txt" root=$2 pids files p
    pids=$(descendants "$root")
    files=""
    for p in $pids; do [ -r "/proc/$p/smaps_rollup" ] && files="$files /proc/$p/smaps_rollup"; done
    echo "pid ppid uid kind pss_kB pss_anon_kB pss_file_kB pss_shmem_kB" >"$f"
    # one ps and one awk for all processes: fast enough that no idle PHP
    # process is ended while it runs
    ps -e -o pid=,ppid=,uid=,args= >"$f.ps"
    # shellcheck disable=SC2086
    awk -v root="$root" '
        FNR == NR { pid = $1; ppid[pid] = $2; uid[pid] = $3
                          a = $0; sub(/^ *[0-9]+ +[0-9]+ +[0-9]+ +/, "", a); args[pid] = a; next }
        /^Pss:/ { split(FILENAME, x, "/"); p = x[3]; pss[p] = $2; order[++n] = p }
        /^Pss_Anon:/ { anon[p] = $2 } /^Pss_File:/ { file[p] = $2 } /^Pss_Shmem:/ { shm[p] = $2 }
        END {
            for (i = 1; i <= n; i++) { p = order[i]; a = args[p]
                if (a ~ /^php-fpm: master/) k = "php-fpm-master"
                else if (a ~ /^php-fpm: pool/) k = "php-fpm-child"
                else if (p == root) k = "master"
                else if (a ~ /^mpm-mux/) k = "multiplexer"
                else if (a ~ /^mpm-/) { k = a; sub(/^mpm-/, "", k); sub(/ .*/, "", k) }
                else { k = a; sub(/ .*/, "", k); sub(/.*\//, "", k) }
                printf "%s %s %s %s %d %d %d %d\n", p, ppid[p], uid[p], k, pss[p], anon[p], file[p], shm[p] }
        }' "$f.ps" $files >>"$f"
    MEM_N=$(($(wc -l <"$f") - 1))
    MEM_MIB=$(awk 'NR > 1 {s += $5} END {printf "%.1f", s / 1024}' "$f")
    awk 'NR > 1 { n[$4]++; s[$4] += $5; a[$4] += $6 }
        END { for (k in n) printf "%s: %d, %.1f MiB (anon %.1f)\n", k, n[k], s[k] / 1024, a[k] / 1024 }' "$f" | sort >"$f.summary"
    echo "memory $1: $MEM_MIB MiB in $MEM_N processes" >&2
    sed 's/^/  /' "$f.summary" >&2
}
summary() { paste -sd';' "$OUT/mem-$1.txt.summary" | sed 's/;/; /g'; }
declare -A MEM NPROC
settle "$SITES_PID"
snapshot idle "$SITES_PID"; MEM[idle]=$MEM_MIB; NPROC[idle]=$MEM_N
# CPU the idle daemon burns, as % of one CPU over 3 s: utime + stime of
# the master and its descendants
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

# cold start: time_total of the first request to an identity with no
# worker and of a second request right after (a new connection too), for
# sites 1..COLD_N; before each site's pair, FLOOR_K samples of its floor:
# the same mpmd binary started as the site's uid, exiting at once
get() { # site path: prints "http_code time_total"
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "Host: $1.test" "http://127.0.0.1:$P_SITES/$2"
}
SETPRIV=$(command -v setpriv || true)
echo "site first_ms warm_ms added_ms" >"$OUT/coldstart.txt"
: >"$OUT/startfloor.txt"
for i in $(seq 1 "$COLD_N"); do
    u=$((UID0 + i - 1))
    "$HERE/.build/startfloor" -exe "$MPMD" -uid $u -gid $u -n "$FLOOR_K" ${SETPRIV:+-setpriv "$SETPRIV"} |
        sed "s/^/s$u /" >>"$OUT/startfloor.txt"
    read -r c1 t1 < <(get "$(site "$i")" static.txt)
    read -r c2 t2 < <(get "$(site "$i")" static.txt)
    [ "$c1 $c2" = "200 200" ] || { echo "cold start $(site "$i"): HTTP $c1 $c2" >&2; exit 1; }
    awk -v s="$(site "$i")" -v a="$t1" -v b="$t2" 'BEGIN{printf "%s %.2f %.2f %.2f\n", s, a*1000, b*1000, (a-b)*1000}' >>"$OUT/coldstart.txt"
done
col() { awk -v c="$1" 'NR > 1 {printf "%s ", $c}' "$OUT/coldstart.txt"; }
COLD_FIRST=$(col 2 | median); COLD_WARM=$(col 3 | median); COLD_ADDED=$(col 4 | median)
floor() { awk -v k="$1" '$2 == k {printf "%s ", $3}' "$OUT/startfloor.txt" | median; }
FLOOR=$(floor direct); FLOOR_SETPRIV=$(floor setpriv)
echo "cold start: first $COLD_FIRST ms, warm $COLD_WARM ms, added $COLD_ADDED ms; floor $FLOOR ms (via setpriv: ${FLOOR_SETPRIV:-not measured} ms) (medians)" >&2

burst() { # path: one request to every site, in order; all must be 200
    local i c t
    for i in $(seq 1 "$N_SITES"); do
        read -r c t < <(get "$(site "$i")" "$1")
        [ "$c" = 200 ] || { echo "$(site "$i")/$1: HTTP $c" >&2; exit 1; }
    done
}
burst static.txt
snapshot static "$SITES_PID"; MEM[static]=$MEM_MIB; NPROC[static]=$MEM_N
t0=$(date +%s.%N)
burst hello.php
BURST_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
snapshot php "$SITES_PID"; MEM[php]=$MEM_MIB; NPROC[php]=$MEM_N
cleanup

# =====================================================================
# 3b. the reference: the same sites under Debian's php-fpm, one master
# as root (as a host runs it), one pool per uid, pm = ondemand with
# mpmd's PHP defaults (php_max 8, php_idle_timeout 10s, php_max_requests
# 500); sockets in $WORK/fpm-ref
# =====================================================================
REF=$WORK/fpm-ref
install -d -m 0700 "$REF"
{
    printf '[global]\npid = %s/php-fpm.pid\nerror_log = %s/php-fpm-ref.log\ndaemonize = no\n' "$REF" "$OUT"
    for i in $(seq 1 "$N_SITES"); do
        u=$((UID0 + i - 1))
        printf '\n[s%d]\nuser = %d\ngroup = %d\nlisten = %s/s%d.sock\n' $u $u $u "$REF" $u
        printf 'pm = ondemand\npm.max_children = 8\npm.process_idle_timeout = 10s\npm.max_requests = 500\n'
    done
} >"$REF/php-fpm.conf"
cp "$REF/php-fpm.conf" "$OUT/php-fpm-ref.conf"
"$PHP_FPM" --nodaemonize --fpm-config "$REF/php-fpm.conf" >"$OUT/php-fpm-ref.out" 2>&1 &
PIDS+=($!)
FPM_PID=$!
for i in $(seq 1 100); do
    [ "$(find "$REF" -name 's*.sock' | wc -l)" -ge "$N_SITES" ] && break
    kill -0 $FPM_PID 2>/dev/null || { cat "$OUT/php-fpm-ref.out" >&2; echo "the reference php-fpm did not start" >&2; exit 1; }
    sleep 0.2
done
settle "$FPM_PID"
snapshot fpmref-idle "$FPM_PID"; MEM[ref_idle]=$MEM_MIB
args=()
for i in $(seq 1 "$N_SITES"); do u=$((UID0 + i - 1)); args+=("$REF/s$u.sock=$WORK/www/s$u/hello.php"); done
t0=$(date +%s.%N)
"$HERE/.build/fcgiget" -expect hello "${args[@]}" >"$OUT/fcgiget.txt" 2>&1 ||
    { grep -v ' ok ' "$OUT/fcgiget.txt" | head >&2; echo "the reference php-fpm did not answer every pool" >&2; exit 1; }
REF_BURST_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
snapshot fpmref-php "$FPM_PID"; MEM[ref]=$MEM_MIB; NPROC[ref]=$MEM_N
cleanup

# =====================================================================
# the figures for bench/targets.sh, and this script's table
# =====================================================================
{
    echo "extra.date=$(date -u +%Y-%m-%dT%H:%MZ)"
    echo "extra.params=REPS=$REPS N_NEW=$N_NEW N_KA=$N_KA N_SITES=$N_SITES COLD_N=$COLD_N FLOOR_K=$FLOOR_K${MPMD_POOL:+ MPMD_POOL=$MPMD_POOL}"
    echo "extra.load=$LOAD0"
    for s in mpmd plain; do for t in new ka; do
        echo "dispatch.$s.$t=${M[$s.$t]}"; echo "dispatch.$s.$t.raw=${R[$s.$t]# }"
    done; done
    echo "dispatch.ka_pct.mpmd=$KA_PCT_MPMD"; echo "dispatch.ka_pct.plain=$KA_PCT_PLAIN"
    echo "cold.added=$COLD_ADDED"; echo "cold.first=$COLD_FIRST"; echo "cold.warm=$COLD_WARM"; echo "cold.n=$COLD_N"
    echo "floor.direct=$FLOOR"; echo "floor.setpriv=$FLOOR_SETPRIV"; echo "floor.k=$FLOOR_K"
    echo "mem.n_sites=$N_SITES"
    echo "mem.php=${MEM[php]}"; echo "mem.php.nproc=${NPROC[php]}"; echo "mem.php.summary=$(summary php)"
    echo "mem.php.burst_s=$BURST_S"
    echo "fpmref.mem=${MEM[ref]}"; echo "fpmref.nproc=${NPROC[ref]}"; echo "fpmref.summary=$(summary fpmref-php)"
    echo "fpmref.burst_s=$REF_BURST_S"; echo "fpmref.binary=$PHP_FPM"
} >>"$VARS"
{
    machine_line
    echo "Run: $(date -u +%Y-%m-%dT%H:%MZ), REPS=$REPS, N_NEW=$N_NEW, N_KA=$N_KA, N_SITES=$N_SITES, COLD_N=$COLD_N, FLOOR_K=$FLOOR_K, load before: $LOAD0"
    echo
    echo "| measurement | measured | detail |"
    echo "|---|---|---|"
    echo "| dispatch, new connection per request (ab -c8), mpmd / plain net/http | $(ratio "${M[mpmd.new]}" "${M[plain.new]}")x | median req/s mpmd ${M[mpmd.new]} (${R[mpmd.new]# }), plain ${M[plain.new]} (${R[plain.new]# }) |"
    echo "| dispatch, keep-alive (ab -k -c8), mpmd / plain net/http | $(ratio "${M[mpmd.ka]}" "${M[plain.ka]}")x | median req/s mpmd ${M[mpmd.ka]} (${R[mpmd.ka]# }), plain ${M[plain.ka]} (${R[plain.ka]# }); requests on a kept-alive connection: mpmd $KA_PCT_MPMD %, plain $KA_PCT_PLAIN % |"
    echo "| cold start: added latency of the first request to an idle identity | $COLD_ADDED ms | median over $COLD_N identities; first $COLD_FIRST ms, warm $COLD_WARM ms (medians) |"
    echo "| start floor: mpmd (worker role, exits at once) fork+exec as the site's uid | $FLOOR ms | median of $((COLD_N * FLOOR_K)) samples, taken between the cold-start requests; through setpriv: ${FLOOR_SETPRIV:-not measured} ms |"
    echo "| PSS, $N_SITES identities idle (fpm) | ${MEM[idle]} MiB | ${NPROC[idle]} processes: $(summary idle); idle, they use $IDLE_CPU % of one CPU; the master has $IDLE_THREADS threads |"
    echo "| PSS after one static request to each site | ${MEM[static]} MiB | ${NPROC[static]} processes: $(summary static) |"
    echo "| PSS after one PHP (fpm) request to each site | ${MEM[php]} MiB | ${NPROC[php]} processes: $(summary php); the burst took $BURST_S s |"
    echo "| php-fpm ($PHP_FPM), $N_SITES per-uid pools, idle | ${MEM[ref_idle]} MiB | $(summary fpmref-idle) |"
    echo "| php-fpm, after one hello.php to each pool | ${MEM[ref]} MiB | ${NPROC[ref]} processes: $(summary fpmref-php); the requests took $REF_BURST_S s |"
} | tee "$OUT/extra.md"
echo "raw output: $OUT; the targets: bench/targets.sh $OUT" >&2
