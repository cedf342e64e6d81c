# shellcheck shell=bash
# Helpers shared by bench/run.sh, bench/extra.sh and bench/targets.sh
# (sourced, not run).

# the middle value of whitespace-separated numbers on stdin (for an even
# count, the lower of the two middle ones); nothing for no numbers
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{if (NR) print a[int((NR+1)/2)]}'; }

# a / b with two decimals, "-" when either is missing or b is 0
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a != "" && b > 0) printf "%.2f", a/b; else print "-" }'; }

# port_used PORT: something accepts connections on 127.0.0.1:PORT, or
# listens on it on any address
port_used() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# descendants PID: the pid and all its descendants, one a line
descendants() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { kids[$2] = kids[$2] " " $1 }
        END { q[1] = root; n = 1
              for (i = 1; i <= n; i++) { print q[i]; m = split(kids[q[i]], k, " ")
                                         for (j = 1; j <= m; j++) q[++n] = k[j] } }'
}

# stop_tree PID: TERM it, wait for it (it must be a child of this shell),
# then TERM any descendant it left behind
stop_tree() {
    local pid=$1 left p
    left=$(descendants "$pid" | tail -n +2)
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in $left; do kill -TERM "$p" 2>/dev/null || true; done
}

# setvar FILE KEY VALUE: record one figure for bench/targets.sh
setvar() { printf '%s=%s\n' "$2" "$3" >>"$1"; }

machine_line() {
    echo "Machine: $(. /etc/os-release; echo "$PRETTY_NAME"), $(nproc) vCPU, kernel $(uname -r), PHP $(php -r 'echo PHP_VERSION;' 2>/dev/null || echo '?'), $(go version | awk '{print $3}')"
}
