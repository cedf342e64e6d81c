#!/bin/bash
# The performance issue's targets, from the figures one run of bench/run.sh
# and bench/extra.sh left in one results directory (run.vars, extra.vars):
# each row with its value, its target and MET or MISSED, or n/a with the
# reason when the run could not measure it. Prints the table and writes it
# to DIR/targets.md. `make bench` runs it last. See bench/README.md.
#
#   bench/targets.sh DIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"
DIR=${1:?usage: bench/targets.sh RESULTS-DIR}
[ -d "$DIR" ] || { echo "no directory $DIR" >&2; exit 1; }
RUNV=$DIR/run.vars EXTRAV=$DIR/extra.vars

# get KEY: its value in run.vars or extra.vars, or nothing
VARFILES=()
for f in "$RUNV" "$EXTRAV"; do [ -f "$f" ] && VARFILES+=("$f"); done
get() {
    [ ${#VARFILES[@]} -gt 0 ] || return 0
    awk -v k="$1" 'index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "${VARFILES[@]}"
}
# ge A B / le A B: numeric comparison
ge() { awk -v a="$1" -v b="$2" 'BEGIN{ exit !(a + 0 >= b + 0) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN{ exit !(a + 0 <= b + 0) }'; }
verdict() { if "$@"; then echo MET; else echo MISSED; fi; }

NOT_RUN="not measured: bench/run.sh left no figures in $DIR"
NOT_EXTRA="not measured: bench/extra.sh left no figures in $DIR"
# why SYSTEM [TEST]: why run.sh has no median for it (empty if it has one)
why() {
    [ -s "$RUNV" ] || { echo "$NOT_RUN"; return; }
    local r
    r=$(get "na.$1"); [ -n "$r" ] && { echo "$1: $r"; return; }
    if [ -n "${2:-}" ]; then r=$(get "na.$1.$2"); [ -n "$r" ] && { echo "$1: $r"; return; }; fi
    [ -n "$(get "$1.${2:-info}")" ] || echo "$1: not in this run (SYSTEMS)"
}
# errs SYSTEM TEST: a note when some answers were not 2xx
errs() { local e; e=$(get "$1.$2.non2xx"); [ "${e:-0}" -gt 0 ] && echo "; $1 answered $e non-2xx" || true; }

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 |"); } # what value target result detail

# a ratio of two systems' medians in run.sh's table
ratio_row() { # label test system-a system-b target-min
    local label=$1 t=$2 a=$3 b=$4 min=$5 w va vb r
    w=$(why "$a" "$t"); [ -n "$w" ] || w=$(why "$b" "$t")
    if [ -n "$w" ]; then row "$label" n/a ">= $min" n/a "$w"; return; fi
    va=$(get "$a.$t"); vb=$(get "$b.$t"); r=$(ratio "$va" "$vb")
    if [ "$r" = - ]; then row "$label" n/a ">= $min" n/a "median req/s $a ${va:-none}, $b ${vb:-none}"; return; fi
    row "$label" "$r" ">= $min" "$(verdict ge "$r" "$min")" "median req/s $a $va ($(get "$a.$t.raw")), $b $vb ($(get "$b.$t.raw"))$(errs "$a" "$t")$(errs "$b" "$t")"
}

# ---- dispatch (extra.sh)
dispatch_row() { # label new|ka target-min
    local m p r
    m=$(get "dispatch.mpmd.$2"); p=$(get "dispatch.plain.$2")
    if [ -z "$m" ] || [ -z "$p" ]; then row "$1" n/a ">= $3" n/a "$NOT_EXTRA"; return; fi
    r=$(ratio "$m" "$p")
    local extra=""
    [ "$2" = ka ] && extra="; requests on a kept-alive connection: mpmd $(get dispatch.ka_pct.mpmd) %, plain $(get dispatch.ka_pct.plain) %"
    row "$1" "$r" ">= $3" "$(verdict ge "$r" "$3")" "median req/s mpmd $m ($(get "dispatch.mpmd.$2.raw")), plain $p ($(get "dispatch.plain.$2.raw"))$extra"
}
dispatch_row "dispatch, new connections (ab -c8), mpmd / plain net/http" new 0.9
dispatch_row "dispatch, keep-alive (ab -k -c8), mpmd / plain net/http" ka 0.97

# ---- run.sh's ratios
ratio_row "hello.php ab -c8, mpmd-fpm / Apache event + php-fpm" hello mpmd-fpm event-fpm 1.0
ratio_row "hello.php wrk -c16 keep-alive, mpmd-fpm / event + php-fpm" wrk mpmd-fpm event-fpm 1.2

# phpinfo against the fastest isolated anchor of this run
label="phpinfo ab -c1, mpmd-fpm / the best isolated anchor"
w=$(why mpmd-fpm info)
best='' bestv='' others='' missing='' nb=0
if [ -z "$w" ]; then
    for s in itk-modphp event-fpm fcgid-suexec cgi-suexec; do
        n=$(why "$s" info)
        if [ -n "$n" ]; then missing="$missing; n/a $n"; continue; fi
        v=$(get "$s.info")
        others="$others, $s $v"; nb=$((nb + 1))
        if [ -z "$best" ] || awk -v a="$v" -v b="$bestv" 'BEGIN{ exit !(a + 0 > b + 0) }'; then best=$s bestv=$v; fi
    done
fi
if [ -n "$w" ]; then row "$label" n/a ">= 1.0" n/a "$w"
elif [ -z "$best" ]; then row "$label" n/a ">= 1.0" n/a "no isolated anchor measured${missing}"
else
    m=$(get mpmd-fpm.info); r=$(ratio "$m" "$bestv")
    partial=""
    [ -n "$missing" ] && partial=" (only $nb of the 4 anchors measured)"
    row "$label ($best)" "$r" ">= 1.0" "$(verdict ge "$r" 1.0)$partial" "best: $best; median req/s mpmd-fpm $m; anchors:${others#,}${missing}$(errs mpmd-fpm info)"
fi
ratio_row "phpinfo ab -c1, mpmd-fpm / prefork + mod_php" info mpmd-fpm prefork-modphp 0.8
ratio_row "static ab -k -c8, mpmd (mpmd-fpm) / prefork" static mpmd-fpm prefork-modphp 1.0

# ---- cold start (extra.sh): against twice its floor measured in the same run
label="cold start: added latency of the first request to an idle identity"
added=$(get cold.added) floor=$(get floor.direct)
if [ -z "$added" ] || [ -z "$floor" ]; then row "$label" n/a "<= 2x start floor" n/a "$NOT_EXTRA"
else
    lim=$(awk -v f="$floor" 'BEGIN{printf "%.2f", 2 * f}')
    row "$label" "$added ms" "<= 2 x $floor ms = $lim ms" "$(verdict le "$added" "$lim")" \
        "$(ratio "$added" "$floor")x the floor; median over $(get cold.n) identities (first $(get cold.first) ms, second $(get cold.warm) ms). Floor: median fork+exec of the same mpmd binary in the worker role, exiting at once, as the site's uid (uid, gid, no groups set between fork and exec), $(get floor.k) samples per identity between its requests; through setpriv --reuid --regid --clear-groups: $(get floor.setpriv) ms"
fi

# ---- PSS (extra.sh): mpmd fpm mode vs php-fpm's per-user pools
n=$(get mem.n_sites)
label="PSS, ${n:-100} identities after one PHP request each (fpm mode)"
m=$(get mem.php) f=$(get fpmref.mem)
if [ -z "$m" ] || [ -z "$f" ]; then row "$label" n/a "<= php-fpm's per-user pools" n/a "$NOT_EXTRA"
else
    row "$label" "$m MiB" "<= php-fpm's pools: $f MiB" "$(verdict le "$m" "$f")" \
        "ratio mpmd / php-fpm $(ratio "$m" "$f"); mpmd $(get mem.php.nproc) processes: $(get mem.php.summary); php-fpm ($(get fpmref.binary), one master as root, ${n} pools, one per uid, ondemand) $(get fpmref.nproc) processes: $(get fpmref.summary)"
fi

{
    machine_line
    echo "Targets of the performance issue, from one run: $DIR"
    if [ -s "$RUNV" ]; then echo "run.sh: $(get run.date), $(get run.params), load before: $(get run.load)"; else echo "run.sh: $NOT_RUN"; fi
    if [ -s "$EXTRAV" ]; then echo "extra.sh: $(get extra.date), $(get extra.params), load before: $(get extra.load)"; else echo "extra.sh: $NOT_EXTRA"; fi
    echo "Ratios are of the medians of the interleaved repetitions; see bench/README.md for how each row is computed."
    echo
    echo "| ratio | value | target | result | detail |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
} | tee "$DIR/targets.md"
