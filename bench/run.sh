#!/bin/bash
# One command, one table: mpmd (php-cgi and PHP-FPM) against the anchors
# (../shared/bench/anchors, set up by their setup.sh) on loopback. All
# systems run at once on their own ports and the tests are interleaved
# (rep 1 of every system, then rep 2, ...), so drift hits all alike and
# the ratios come from the same run. See bench/README.md.
#
# mpmd runs with its defaults: the configuration sets only what has no
# default or must differ here (listen, run_dir, multiplexer_user/group,
# the identities and vhosts, php_mode). MPMD_POOL adds lines to its
# [pool] table for experiments (e.g. MPMD_POOL='workers = 4').
#
# An anchor that is not set up, whose port is taken, or that does not
# start or answer is left out and its figures are "n/a" (with the reason);
# mpmd not starting or answering is an error.
#
# Env: ANCHORS (anchors directory), SYSTEMS (subset, names below), REPS (3),
#      N_INFO (1000), N_HELLO (2000), N_STATIC (10000), WRK_DUR (5s),
#      CGI_N (200: -n for the systems that fork php-cgi per request),
#      OUT (results directory; default bench/results/<date>), MPMD_POOL.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
. "$HERE/lib.sh"
ANCHORS=${ANCHORS:-$REPO/../shared/bench/anchors}
ANCHORS=$(cd "$ANCHORS" 2>/dev/null && pwd || echo "$ANCHORS")
ALL="mpmd-fpm mpmd-cgi prefork-modphp itk-modphp event-fpm fcgid-suexec cgi-suexec go-cgi"
SYSTEMS=${SYSTEMS:-$ALL}
REPS=${REPS:-3}
N_INFO=${N_INFO:-1000}; N_HELLO=${N_HELLO:-2000}; N_STATIC=${N_STATIC:-10000}
WRK_DUR=${WRK_DUR:-5s}; CGI_N=${CGI_N:-200}
OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
WORK=/run/mpmd-bench
MUX_ID=2398 # the multiplexers' uid and gid (no account needed)

[ "$(id -u)" = 0 ] || { echo "run as root (mpmd and the anchors switch users)" >&2; exit 1; }
[ -d /srv/www/alice ] && [ -d /srv/www/bob ] && getent passwd alice >/dev/null && getent passwd bob >/dev/null || {
    echo "the anchors' users and docroots are missing: run $ANCHORS/setup.sh as root first" >&2; exit 1; }
for t in ab curl php-cgi go ss; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
for s in $SYSTEMS; do
    case " $ALL " in *" $s "*) ;; *) echo "unknown system $s (known: $ALL)" >&2; exit 1 ;; esac
done
mkdir -p "$OUT"
VARS=$OUT/run.vars
: >"$VARS"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

port() {
    case $1 in
        prefork-modphp) echo 8081 ;; itk-modphp) echo 8082 ;; event-fpm) echo 8083 ;;
        fcgid-suexec) echo 8084 ;; cgi-suexec) echo 8085 ;; go-cgi) echo 8086 ;;
        mpmd-cgi) echo 8091 ;; mpmd-fpm) echo 8092 ;;
    esac
}
is_cgi() { case $1 in mpmd-cgi|cgi-suexec|go-cgi) return 0 ;; esac; return 1; }

# ---- systems left out, with the reason; ACTIVE is what runs
declare -A NA
ACTIVE=""
leave_out() { # system reason; stops it if it was started
    NA[$1]=$2
    echo "$1: n/a: $2" >&2
    ACTIVE=$(tr ' ' '\n' <<<"$ACTIVE" | grep -vx "$1" | xargs || true)
    if [ "$1" = go-cgi ] && [ -n "$CGIFLOOR_PID" ]; then stop_tree "$CGIFLOOR_PID"; CGIFLOOR_PID=; fi
    case " $STARTED " in *" $1 "*)
        "$ANCHORS/run.sh" stop "$1" >/dev/null 2>&1 || true
        STARTED=$(tr ' ' '\n' <<<"$STARTED" | grep -vx "$1" | xargs || true) ;;
    esac
}

# ---- processes: mpmd daemons and the fallback Go CGI server are
# children of this shell; anchors are stopped with their run.sh
MPMD_PIDS=()
CGIFLOOR_PID= # see start_cgifloor
STARTED=""    # anchors started with their run.sh
cleanup() {
    local p s
    for p in "${MPMD_PIDS[@]}" $CGIFLOOR_PID; do stop_tree "$p"; done
    MPMD_PIDS=(); CGIFLOOR_PID=
    for s in $STARTED; do "$ANCHORS/run.sh" stop "$s" >/dev/null 2>&1 || true; done
    STARTED=""
}
trap cleanup EXIT
# a signal ends the script through exit, so that the EXIT trap runs
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM

# ---- free ports first: mpmd's must be, an anchor's taken leaves it out
for s in $SYSTEMS; do
    if port_used "$(port "$s")"; then
        case $s in
            mpmd-*) echo "port $(port "$s") ($s) already in use" >&2; exit 1 ;;
            *) NA[$s]="port $(port "$s") already in use"; echo "$s: n/a: ${NA[$s]}" >&2; continue ;;
        esac
    fi
    ACTIVE="$ACTIVE $s"
done

# ---- mpmd: one daemon per PHP mode, the anchors' users and docroots
mkdir -p "$HERE/.build"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$HERE/.build/mpmd" ./examples/mpmd)
rm -rf "$WORK"
install -d -m 0755 "$WORK"
start_mpmd() { # mode port
    local mode=$1 p=$2 dir=$WORK/$1 u
    install -d -m 0755 "$dir"
    {
        cat <<TOML
[server]
listen = ["127.0.0.1:$p"]
run_dir = "$dir/run"
multiplexer_user = "$MUX_ID"
multiplexer_group = "$MUX_ID"
TOML
        if [ -n "${MPMD_POOL:-}" ]; then printf '\n[pool]\n%s\n' "$MPMD_POOL"; fi
        for u in alice bob; do
            cat <<TOML

[identity.$u]
user = "$u"

[[vhost]]
server_name = "$u.test"
document_root = "/srv/www/$u"
identity = "$u"
php = true
php_mode = "$mode"
TOML
        done
    } >"$dir/mpmd.toml"
    cp "$dir/mpmd.toml" "$OUT/mpmd-$mode.toml"
    "$HERE/.build/mpmd" -check -config "$dir/mpmd.toml" >"$OUT/mpmd-$mode.check.txt" 2>&1 ||
        { cat "$OUT/mpmd-$mode.check.txt" >&2; exit 1; }
    "$HERE/.build/mpmd" -config "$dir/mpmd.toml" >"$OUT/mpmd-$mode.log" 2>&1 &
    MPMD_PIDS+=($!)
}

# The plain Go CGI server, built and started here when the anchors' own
# build of it is missing (setup.sh builds it inside the anchors directory,
# which may be read-only): same source, same arguments as the anchors'
# run.sh.
start_cgifloor() {
    (cd "$ANCHORS/cgifloor" && CGO_ENABLED=0 go build -trimpath -o "$HERE/.build/cgifloor" .)
    "$HERE/.build/cgifloor" -addr "127.0.0.1:$(port go-cgi)" \
        -site alice.test=/srv/www/alice -site bob.test=/srv/www/bob >"$OUT/cgifloor.log" 2>&1 &
    CGIFLOOR_PID=$!
}

start_anchor() { # system; leaves it out when it cannot start
    local s=$1
    case $s in
        go-cgi)
            if [ -x "$ANCHORS/.build/cgifloor" ]; then :
            elif [ -d "$ANCHORS/cgifloor" ]; then start_cgifloor; return
            else leave_out "$s" "no $ANCHORS/cgifloor"; return; fi ;;
        *)
            [ -x "$ANCHORS/run.sh" ] || { leave_out "$s" "no $ANCHORS/run.sh"; return; }
            command -v apache2 >/dev/null || [ -x /usr/sbin/apache2 ] ||
                { leave_out "$s" "apache2 not installed (run $ANCHORS/setup.sh)"; return; }
            [ -f "/etc/apache2-anchors/$s.conf" ] ||
                { leave_out "$s" "/etc/apache2-anchors/$s.conf missing (run $ANCHORS/setup.sh)"; return; } ;;
    esac
    if "$ANCHORS/run.sh" start "$s" >"$OUT/start-$s.log" 2>&1; then
        STARTED="$STARTED $s"
    else
        STARTED="$STARTED $s" # stop what may have half started
        leave_out "$s" "did not start: $(tail -n 1 "$OUT/start-$s.log")"
    fi
}

for s in $ACTIVE; do
    case $s in
        mpmd-cgi) start_mpmd cgi "$(port $s)" ;;
        mpmd-fpm) start_mpmd fpm "$(port $s)" ;;
        *) start_anchor "$s" ;;
    esac
done

# ---- every system answers, as the site's user
: >"$OUT/isolation.txt"
for s in $ACTIVE; do
    base="http://127.0.0.1:$(port $s)"
    for _ in $(seq 1 100); do curl -fs -o /dev/null -H "Host: alice.test" "$base/static.txt" && break; sleep 0.1; done
    for h in alice bob; do
        body=$(curl -s -m 10 -H "Host: $h.test" "$base/hello.php" || true)
        if [ "$body" != hello ]; then
            case $s in
                mpmd-*) echo "$s: $h.test/hello.php returned '$body' (log: $OUT/$s.log)" >&2; exit 1 ;;
                *) leave_out "$s" "$h.test/hello.php returned '$(head -c 80 <<<"$body" | tr -d '\n')'"; continue 2 ;;
            esac
        fi
        echo "$s $h.test: uid $(curl -s -H "Host: $h.test" "$base/whoami.php" | tr -d '\n'), other site: $(curl -s -H "Host: $h.test" "$base/peer.php" | tr -d '\n')" >>"$OUT/isolation.txt"
    done
done

WRK_NA=
command -v wrk >/dev/null || { WRK_NA="wrk not installed (run $ANCHORS/setup.sh)"; echo "wrk: n/a: $WRK_NA" >&2; }

# ---- measurements; each prints "req/s non-2xx"
ab_rps() { # file n c k path port
    ab -q -r $4 -n "$2" -c "$3" -H "Host: alice.test" "http://127.0.0.1:$6/$5" >"$1" 2>&1 || true
    awk '/^Requests per second/ {r = $4} /^Non-2xx responses/ {e = $3}
         END {printf "%s %d\n", r, e}' "$1"
}
wrk_rps() { # file dur path port
    wrk -t2 -c16 -d"$2" -H "Host: alice.test" "http://127.0.0.1:$4/$3" >"$1" 2>&1 || true
    awk '/^Requests\/sec/ {r = $2} /Non-2xx or 3xx responses/ {e = $NF}
         END {printf "%s %d\n", r, e}' "$1"
}
run() { # test system rep
    local t=$1 s=$2 r=$3 p n f; p=$(port "$s"); f="$OUT/$s.$t.$r.txt"
    case $t in
        info)   n=$N_INFO;  is_cgi "$s" && n=$CGI_N; ab_rps "$f" "$n" 1 "" info.php "$p" ;;
        hello)  n=$N_HELLO; is_cgi "$s" && n=$CGI_N; ab_rps "$f" "$n" 8 "" hello.php "$p" ;;
        static) ab_rps "$f" "$N_STATIC" 8 -k static.txt "$p" ;;
        wrk)    wrk_rps "$f" "$WRK_DUR" hello.php "$p" ;;
    esac
}
TESTS="info hello static wrk"
[ -n "$WRK_NA" ] && TESTS="info hello static"
declare -A R E M
for s in $ACTIVE; do # warm-up, discarded: start the workers (and their PHP);
    # php-cgi per request has nothing to warm but the page cache
    if is_cgi "$s"; then n=32 c=8; else n=400 c=32; fi
    ab -q -n $n -c $c -H "Host: alice.test" "http://127.0.0.1:$(port $s)/hello.php" >/dev/null 2>&1 || true
    ab -q -n 10 -c 1 -H "Host: alice.test" "http://127.0.0.1:$(port $s)/info.php" >/dev/null 2>&1 || true
    # 8 kept-alive connections: Apache prefork starts with 5 children and
    # spawns more once a second, so its first keep-alive run stalls
    ab -q -k -n 2000 -c 8 -H "Host: alice.test" "http://127.0.0.1:$(port $s)/static.txt" >/dev/null 2>&1 || true
done
for r in $(seq 1 "$REPS"); do
    for t in $TESTS; do
        for s in $ACTIVE; do
            read -r v e < <(run "$t" "$s" "$r")
            R[$s.$t]="${R[$s.$t]:-} ${v:-0}"; E[$s.$t]=$(( ${E[$s.$t]:-0} + ${e:-0} ))
            echo "rep $r $t $s: ${v:-0} req/s$([ "${e:-0}" -gt 0 ] && echo ", non-2xx $e")" >&2
        done
    done
done
for s in $ACTIVE; do for t in $TESTS; do M[$s.$t]=$(median <<<"${R[$s.$t]}"); done; done
cleanup

# ---- figures for bench/targets.sh, then this script's own table
setvar "$VARS" run.date "$(date -u +%Y-%m-%dT%H:%MZ)"
setvar "$VARS" run.params "REPS=$REPS N_INFO=$N_INFO N_HELLO=$N_HELLO N_STATIC=$N_STATIC WRK_DUR=$WRK_DUR CGI_N=$CGI_N${MPMD_POOL:+ MPMD_POOL=$MPMD_POOL}"
setvar "$VARS" run.load "$LOAD0"
for s in $SYSTEMS; do
    if [ -n "${NA[$s]:-}" ]; then setvar "$VARS" "na.$s" "${NA[$s]}"; continue; fi
    for t in info hello static wrk; do
        if [ $t = wrk ] && [ -n "$WRK_NA" ]; then setvar "$VARS" "na.$s.wrk" "$WRK_NA"; continue; fi
        setvar "$VARS" "$s.$t" "${M[$s.$t]}"
        setvar "$VARS" "$s.$t.raw" "${R[$s.$t]# }"
        setvar "$VARS" "$s.$t.non2xx" "${E[$s.$t]}"
    done
done

cell() { # system test: median, or n/a
    if [ -n "${NA[$1]:-}" ] || { [ "$2" = wrk ] && [ -n "$WRK_NA" ]; }; then echo n/a; return; fi
    echo "${M[$1.$2]}$([ "${E[$1.$2]}" -gt 0 ] && echo " (non-2xx: ${E[$1.$2]})")"
}
{
    machine_line
    echo "Run: $(date -u +%Y-%m-%dT%H:%MZ), REPS=$REPS, medians of req/s; load before: $LOAD0"
    echo
    echo "| system | phpinfo ab -c1 | hello.php ab -c8 | static ab -k -c8 | hello.php wrk -c16 | raw req/s (info; hello; static; wrk) |"
    echo "|---|---|---|---|---|---|"
    for s in $SYSTEMS; do
        if [ -n "${NA[$s]:-}" ]; then echo "| $s | n/a | n/a | n/a | n/a | ${NA[$s]} |"; continue; fi
        echo "| $s | $(cell $s info) | $(cell $s hello) | $(cell $s static) | $(cell $s wrk) | ${R[$s.info]# }; ${R[$s.hello]# }; ${R[$s.static]# }; $(if [ -n "$WRK_NA" ]; then echo n/a; else echo "${R[$s.wrk]# }"; fi) |"
    done
    echo
    echo "Isolation check (whoami.php, peer.php reading the other site):"
    sed 's/^/- /' "$OUT/isolation.txt"
    echo
    echo "The systems that fork php-cgi per request (mpmd-cgi, cgi-suexec, go-cgi) ran ab -n $CGI_N instead of -n $N_INFO / $N_HELLO (same rate, shorter run)."
    [ -z "$WRK_NA" ] || echo "wrk: n/a: $WRK_NA"
} | tee "$OUT/run.md"
echo "raw output: $OUT; the targets: bench/targets.sh $OUT" >&2
