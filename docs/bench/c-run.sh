#!/usr/bin/env bash
# Issue 11 item 4: ported C programs against C SIMPL's own C -> C figure,
# and the C API's cost over the Go API, in one interleaved run.
#
# Builds, in a temporary directory (never in the repository): the drop-in
# library (simpl/clib, c-shared), simpl/clib/testdata/cbench.c twice
# (against that library, and against testdata/csimpl.c, the stand-in for
# C SIMPL's library), fcbench, and the floor (../shared/bench/floor.c).
# Then ROUNDS rounds, the order of the variants reversed every other
# round, each round measuring SIZE-byte round trips, N each:
#
#   floor        floor.c: futex-block and pipe ping-pong (no SIMPL at all)
#   csimpl       cbench, C SIMPL stand-in <-> stand-in (FIFO wake-ups,
#                System V segments, as C SIMPL does them)
#   ported-shm   cbench, ported C <-> ported C through gosimpl, shared memory
#   ported-fifo  cbench, ported C <-> ported C, C SIMPL's FIFO wire forced
#                (GOSIMPL_TRANSPORT=fifo)
#   go-shm       fcbench -transport shm: the same exchange from Go
#   go-fifo      fcbench -transport fifo -thread-waits=true: waits on the
#                calling threads, as the C library's (simpl.WithThreadWaits)
#
# By default nothing spins: GOSIMPL_SPIN=off for the ported programs, -spin=false for
# fcbench (C SIMPL never spins). Raw lines go to stdout as they come,
# then a table of each round's medians and the ratios the issue asks
# for: csimpl / ported-shm (target: at least 10) and csimpl / ported-fifo
# (speed-ups, from medians), ported-shm - go-shm and ported-fifo - go-fifo
# (the C API's overhead over the Go API, µs of median; target: at most 1).
#
#   ROUNDS=5 N=20000 SIZE=64 bash docs/bench/c-run.sh
#
# B=DIR builds into DIR and keeps it; by default a temporary directory is
# made and removed at the end. CPUS=LIST runs every variant (and the
# floor) under taskset -c LIST: CPUS=0 puts both processes of each on one
# CPU, where no wake-up crosses CPUs (on a virtual machine, waking an
# idle virtual CPU is the largest and most variable part of a round
# trip), so the C API's own cost stands out. SPIN=on lets the ported
# programs and fcbench spin before they sleep (gosimpl's default on more
# than one CPU; C SIMPL's stand-in never spins): the figure for the other
# reading of the target. Run it on a quiet machine: timing on a shared
# one says little.
set -eu
ROUNDS=${ROUNDS:-5}
N=${N:-20000}
SIZE=${SIZE:-64}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
FLOOR_SRC=${FLOOR_SRC:-$REPO/../shared/bench/floor.c}
if [ -n "${B:-}" ]; then
  mkdir -p "$B"
  KEEP=1
else
  B=$(mktemp -d /tmp/gosimpl-c-run.XXXXXX)
  KEEP=0
fi
export FIFO_PATH=$(mktemp -d /tmp/gosimpl-c-run-fifo.XXXXXX)
cleanup() {
  rm -rf "$FIFO_PATH"
  if [ "$KEEP" = 0 ]; then rm -rf "$B"; fi
}
trap cleanup EXIT

echo "# building in $B"
(
  cd "$REPO"
  CGO_ENABLED=1 go build -buildmode=c-shared -o "$B/libsimpl.so" ./simpl/clib
  go build -o "$B/fcbench" ./tools/fcbench
  cc -O2 -Wall -Werror -I simpl/clib/include simpl/clib/testdata/cbench.c -L "$B" -lsimpl -o "$B/cbench"
  cc -O2 -Wall -Werror -I simpl/clib/include simpl/clib/testdata/cbench.c simpl/clib/testdata/csimpl.c -o "$B/cbench-csimpl"
  gcc -O2 -o "$B/floor" "$FLOOR_SRC" -lpthread
)
echo "# commit $(git -C "$REPO" rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
SPIN=${SPIN:-off}
case $SPIN in
on) gospin=true ;;
off) gospin=false ;;
*) echo "SPIN=$SPIN: want on or off" >&2; exit 2 ;;
esac
echo "# ROUNDS=$ROUNDS N=$N SIZE=$SIZE CPUS=${CPUS:-all} SPIN=$SPIN"
pin=()
if [ -n "${CPUS:-}" ]; then
  pin=(taskset -c "$CPUS")
fi

# run VARIANT: one measurement, printed as "VARIANT JSON".
run() {
  case $1 in
  csimpl) "${pin[@]}" "$B/cbench-csimpl" -json -label csimpl -size "$SIZE" -n "$N" ;;
  ported-shm) GOSIMPL_TRANSPORT=auto GOSIMPL_SPIN=$SPIN LD_LIBRARY_PATH="$B" "${pin[@]}" "$B/cbench" -json -label ported-shm -size "$SIZE" -n "$N" ;;
  ported-fifo) GOSIMPL_TRANSPORT=fifo GOSIMPL_SPIN=$SPIN LD_LIBRARY_PATH="$B" "${pin[@]}" "$B/cbench" -json -label ported-fifo -size "$SIZE" -n "$N" ;;
  go-shm) "${pin[@]}" "$B/fcbench" -json -transport shm -spin=$gospin -size "$SIZE" -n "$N" | tail -1 ;;
  go-fifo) "${pin[@]}" "$B/fcbench" -json -transport fifo -thread-waits=true -size "$SIZE" -n "$N" | tail -1 ;;
  esac | sed "s/^/$1 /"
}

variants=(csimpl ported-shm ported-fifo go-shm go-fifo)
out=$(mktemp "$B/raw.XXXXXX")
for r in $(seq 1 "$ROUNDS"); do
  echo "# round $r" | tee -a "$out"
  "${pin[@]}" "$B/floor" -n "$N" -s "$SIZE" | grep -E 'futex-block|pipe' | sed 's/^/floor /' | tee -a "$out"
  order=("${variants[@]}")
  if [ $((r % 2)) = 0 ]; then
    order=()
    for ((i = ${#variants[@]} - 1; i >= 0; i--)); do order+=("${variants[i]}"); done
  fi
  for v in "${order[@]}"; do
    run "$v" | tee -a "$out"
  done
done

# The table: one row a round, medians in µs (p99 in brackets), then the
# ratios; the last row the median of each column over the rounds.
awk -v rounds="$ROUNDS" '
function field(s, k,   m) {
  if (match(s, "\"" k "\":[-0-9.eE+]+")) { m = substr(s, RSTART, RLENGTH); sub(/^[^:]*:/, "", m); return m + 0 }
  if (match(s, k "=[-0-9.eE+]+")) { m = substr(s, RSTART, RLENGTH); sub(/^[^=]*=/, "", m); return m + 0 }
  return -1
}
function median(a, n,   i, j, t, b) {
  for (i = 1; i <= n; i++) b[i] = a[i]
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t }
  return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
}
/^# round / { r = $3; next }
/^floor / { if ($0 ~ /floor=futex-block/) fb[r] = field($0, "median_us"); if ($0 ~ /floor=pipe/) fp[r] = field($0, "median_us"); next }
/^[a-z-]+ \{/ { med[$1, r] = field($0, "median_us"); p99[$1, r] = field($0, "p99_us"); cpu[$1, r] = field($0, "cpu_us_per_msg") }
END {
  printf "\n%-6s %9s %9s %16s %16s %16s %16s %16s %9s %9s %10s %10s\n", "round", "futex", "pipe", "csimpl", "ported-shm", "ported-fifo", "go-shm", "go-fifo", "C/p-shm", "C/p-fifo", "p-shm-go", "p-fifo-go"
  for (r = 1; r <= rounds; r++) {
    a[1, r] = med["csimpl", r] / med["ported-shm", r]
    a[2, r] = med["csimpl", r] / med["ported-fifo", r]
    a[3, r] = med["ported-shm", r] - med["go-shm", r]
    a[4, r] = med["ported-fifo", r] - med["go-fifo", r]
    printf "%-6d %9.2f %9.2f", r, fb[r], fp[r]
    split("csimpl ported-shm ported-fifo go-shm go-fifo", vs, " ")
    for (i = 1; i <= 5; i++) printf " %7.2f (%6.1f)", med[vs[i], r], p99[vs[i], r]
    printf " %8.1fx %8.1fx %+10.2f %+10.2f\n", a[1, r], a[2, r], a[3, r], a[4, r]
    for (i = 1; i <= 5; i++) { m[i, r] = med[vs[i], r]; c[i, r] = cpu[vs[i], r] }
    f1[r] = fb[r]; f2[r] = fp[r]
  }
  printf "%-6s %9.2f %9.2f", "median", median(f1, rounds), median(f2, rounds)
  for (i = 1; i <= 5; i++) { for (r = 1; r <= rounds; r++) col[r] = m[i, r]; printf " %16.2f", median(col, rounds) }
  for (i = 1; i <= 4; i++) { for (r = 1; r <= rounds; r++) col[r] = a[i, r]; printf (i <= 2 ? " %8.1fx" : " %+10.2f"), median(col, rounds) }
  printf "\n\nCPU µs per round trip (both processes), median over the rounds:"
  for (i = 1; i <= 5; i++) { for (r = 1; r <= rounds; r++) col[r] = c[i, r]; printf " %s %.2f;", vs[i], median(col, rounds) }
  printf "\nTargets: C/p-shm (C SIMPL median / ported shm median) >= 10; p-shm-go (ported C minus Go, µs) <= 1.\n"
}' "$out"
