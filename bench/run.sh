#!/bin/bash
# One command, one table: mpmd (php-cgi and PHP-FPM) against the anchors
# (../shared/bench/anchors, set up by their setup.sh) on loopback. All
# systems run at once on their own ports and the tests are interleaved
# (rep 1 of every system, then rep 2, ...), so drift hits all alike and
# the ratios come from the same run. See bench/README.md.
#
# Env: ANCHORS (anchors directory), SYSTEMS (subset, names below), REPS (3),
#      N_INFO (1000), N_HELLO (2000), N_STATIC (10000), WRK_DUR (5s),
#      CGI_N (200: -n for the systems that fork php-cgi per request).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
ANCHORS=${ANCHORS:-$REPO/../shared/bench/anchors}
ALL="mpmd-fpm mpmd-cgi prefork-modphp itk-modphp event-fpm fcgid-suexec cgi-suexec go-cgi"
SYSTEMS=${SYSTEMS:-$ALL}
REPS=${REPS:-3}
N_INFO=${N_INFO:-1000}; N_HELLO=${N_HELLO:-2000}; N_STATIC=${N_STATIC:-10000}
WRK_DUR=${WRK_DUR:-5s}; CGI_N=${CGI_N:-200}
OUT="$HERE/results/$(date +%Y%m%d-%H%M%S)"
WORK=/run/mpmd-bench

[ "$(id -u)" = 0 ] || { echo "run as root (mpmd and the anchors switch users)" >&2; exit 1; }
[ -d /srv/www/alice ] && getent passwd alice >/dev/null || {
    echo "the anchors are not set up: run $ANCHORS/setup.sh as root first" >&2; exit 1; }
for t in ab wrk curl php-cgi; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
mkdir -p "$OUT"

port() {
    case $1 in
        prefork-modphp) echo 8081 ;; itk-modphp) echo 8082 ;; event-fpm) echo 8083 ;;
        fcgid-suexec) echo 8084 ;; cgi-suexec) echo 8085 ;; go-cgi) echo 8086 ;;
        mpmd-cgi) echo 8091 ;; mpmd-fpm) echo 8092 ;;
    esac
}
is_cgi() { case $1 in mpmd-cgi|cgi-suexec|go-cgi) return 0 ;; esac; return 1; }

# ---- mpmd: one daemon per PHP mode, the anchors' users and docroots
MPMD_PIDS=()
CGIFLOOR_PID= # see start_cgifloor
start_mpmd() { # mode port
    local mode=$1 p=$2 dir=$WORK/$1
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p already in use" >&2; exit 1; fi
    install -d -m 0755 "$dir"
    cat >"$dir/mpmd.toml" <<TOML
[server]
listen = ["127.0.0.1:$p"]
admin = "off"
run_dir = "$dir/run"
multiplexer_user = "2398"
multiplexer_group = "2398"

[pool]
min = ${MPMD_MIN:-2}
min_spare = ${MPMD_MIN_SPARE:-1}
max_spare = ${MPMD_MAX_SPARE:-4}
max = 32
max_requests = 100000

[identity.alice]
user = "alice"

[identity.bob]
user = "bob"

[[vhost]]
server_name = "alice.test"
document_root = "/srv/www/alice"
identity = "alice"
php = true
php_mode = "$mode"

[[vhost]]
server_name = "bob.test"
document_root = "/srv/www/bob"
identity = "bob"
php = true
php_mode = "$mode"
TOML
    "$HERE/.build/mpmd" -config "$dir/mpmd.toml" >"$OUT/mpmd-$mode.log" 2>&1 &
    MPMD_PIDS+=($!)
}

cleanup() {
    local s
    for p in "${MPMD_PIDS[@]}" $CGIFLOOR_PID; do kill -TERM "$p" 2>/dev/null || true; done
    for s in $SYSTEMS; do
        case $s in mpmd-*) ;; *) "$ANCHORS/run.sh" stop "$s" >/dev/null 2>&1 || true ;; esac
    done
    for p in "${MPMD_PIDS[@]}" $CGIFLOOR_PID; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

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

(cd "$REPO" && CGO_ENABLED=0 go build -o "$HERE/.build/mpmd" ./examples/mpmd)
for s in $SYSTEMS; do
    case $s in
        mpmd-cgi) start_mpmd cgi "$(port $s)" ;;
        mpmd-fpm) start_mpmd fpm "$(port $s)" ;;
        go-cgi) if [ -x "$ANCHORS/.build/cgifloor" ]; then "$ANCHORS/run.sh" start go-cgi >/dev/null; else start_cgifloor; fi ;;
        *) "$ANCHORS/run.sh" start "$s" >/dev/null ;;
    esac
done

# ---- every system answers, as the site's user
for s in $SYSTEMS; do
    base="http://127.0.0.1:$(port $s)"
    for i in $(seq 1 100); do curl -fs -o /dev/null -H "Host: alice.test" "$base/static.txt" && break; sleep 0.1; done
    for h in alice bob; do
        body=$(curl -s -H "Host: $h.test" "$base/hello.php")
        [ "$body" = hello ] || { echo "$s: $h.test/hello.php returned '$body'" >&2; exit 1; }
        echo "$s $h.test: uid $(curl -s -H "Host: $h.test" "$base/whoami.php" | tr -d '\n'), other site: $(curl -s -H "Host: $h.test" "$base/peer.php" | tr -d '\n')" >>"$OUT/isolation.txt"
    done
done

# ---- measurements; each prints req/s
ab_rps() { # file n c k path port
    ab -q -r $4 -n "$2" -c "$3" -H "Host: alice.test" "http://127.0.0.1:$6/$5" >"$1" 2>&1 || true
    awk '/^Requests per second/ {print $4}' "$1"
}
wrk_rps() { # file dur path port
    wrk -t2 -c16 -d"$2" -H "Host: alice.test" "http://127.0.0.1:$4/$3" >"$1" 2>&1 || true
    awk '/^Requests\/sec/ {print $2}' "$1"
}
run() { # test system rep
    local t=$1 s=$2 r=$3 p n; p=$(port "$s"); f="$OUT/$s.$t.$r.txt"
    case $t in
        info)   n=$N_INFO;  is_cgi "$s" && n=$CGI_N; ab_rps "$f" "$n" 1 "" info.php "$p" ;;
        hello)  n=$N_HELLO; is_cgi "$s" && n=$CGI_N; ab_rps "$f" "$n" 8 "" hello.php "$p" ;;
        static) ab_rps "$f" "$N_STATIC" 8 -k static.txt "$p" ;;
        wrk)    wrk_rps "$f" "$WRK_DUR" hello.php "$p" ;;
    esac
}
TESTS="info hello static wrk"
declare -A R
for s in $SYSTEMS; do # warm-up, discarded: touch every worker (and its php child)
    ab -q -n 400 -c 32 -H "Host: alice.test" "http://127.0.0.1:$(port $s)/hello.php" >/dev/null 2>&1 || true
    ab -q -n 10 -c 1 -H "Host: alice.test" "http://127.0.0.1:$(port $s)/info.php" >/dev/null 2>&1 || true
done
for r in $(seq 1 "$REPS"); do
    for t in $TESTS; do
        for s in $SYSTEMS; do
            v=$(run "$t" "$s" "$r"); R[$s.$t]="${R[$s.$t]:-} ${v:-0}"
            echo "rep $r $t $s: $v req/s" >&2
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "-" }'; }
declare -A M
for s in $SYSTEMS; do for t in $TESTS; do M[$s.$t]=$(median <<<"${R[$s.$t]}"); done; done

{
    echo "Machine: $(. /etc/os-release; echo "$PRETTY_NAME"), $(nproc) vCPU, kernel $(uname -r), PHP $(php -r 'echo PHP_VERSION;'), $(go version | awk '{print $3}')"
    echo "Run: $(date -u +%Y-%m-%dT%H:%MZ), REPS=$REPS, medians of req/s; ratios are medians of this run"
    echo
    echo "| system | phpinfo ab -c1 | hello.php ab -c8 | static ab -k -c8 | hello.php wrk -c16 | raw req/s (info; hello; static; wrk) |"
    echo "|---|---|---|---|---|---|"
    for s in $SYSTEMS; do
        echo "| $s | ${M[$s.info]} | ${M[$s.hello]} | ${M[$s.static]} | ${M[$s.wrk]} | ${R[$s.info]# }; ${R[$s.hello]# }; ${R[$s.static]# }; ${R[$s.wrk]# } |"
    done
    echo
    rline() { # label a test b
        case " $SYSTEMS " in *" $1 "*) ;; *) return ;; esac
        case " $SYSTEMS " in *" $3 "*) ;; *) return ;; esac
        echo "| $1 / $3 | $2 | $(ratio "${M[$1.$2]}" "${M[$3.$2]}") | $4 |"
    }
    echo "| ratio | test | measured | target |"
    echo "|---|---|---|---|"
    rline mpmd-fpm info event-fpm ">= 1.3"
    rline mpmd-fpm info prefork-modphp ">= 0.9"
    rline mpmd-cgi info go-cgi ">= 0.95"
    rline mpmd-fpm wrk event-fpm ">= 1.5"
    rline mpmd-fpm static prefork-modphp ">= 1.0"
    rline mpmd-fpm info fcgid-suexec "-"
    rline mpmd-fpm info itk-modphp "-"
    rline mpmd-fpm hello event-fpm "-"
    echo
    echo "Isolation check (whoami.php, peer.php reading the other site):"
    sed 's/^/- /' "$OUT/isolation.txt"
    echo
    echo "The systems that fork php-cgi per request (mpmd-cgi, cgi-suexec, go-cgi) ran ab -n $CGI_N instead of -n $N_INFO / $N_HELLO (same rate, shorter run)."
} | tee "$OUT/table.md"
echo "raw output: $OUT" >&2
