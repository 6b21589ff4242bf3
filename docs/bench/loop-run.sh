#!/usr/bin/env bash
# The control-loop runs of issue 12 (items 4 and 5): fcloop at 1 kHz,
# SCHED_FIFO 80, memory locked, with cyclictest on the same CPUs in the
# same run, DUR each (10 minutes by default), one after the other:
#
#   idle       no load
#   load       -load cpu,mem,hammer
#   load-gc    the same with -gc (a garbage-producing goroutine in the controller)
#   gogc-400   the same with GOGC=400
#   gogc-off   the same with GOGC=off GOMEMLIMIT=256MiB
#
# Each writes OUT/NAME.json (fcloop -json) and OUT/NAME.png (-plot), and
# prints the table on stdout. Run as root (SCHED_FIFO, mlockall), with
# rt-tests installed, on an otherwise idle machine.
set -eu
DUR=${DUR:-10m}
OUT=${OUT:-/tmp/fcloop-runs}
B=${B:-/tmp/gosimpl-bench}
mkdir -p "$OUT" "$B"
go build -o "$B/fcloop" ./tools/fcloop
common=(-d "$DUR" -period 1ms -fifo 80 -mlock)
one() {
  name=$1; shift
  echo "# $name: $*"
  env "$@" -json -plot "$OUT/$name.png" > "$OUT/$name.json"
  cat "$OUT/$name.json"
}
one idle     "$B/fcloop" "${common[@]}"
one load     "$B/fcloop" "${common[@]}" -load cpu,mem,hammer
one load-gc  "$B/fcloop" "${common[@]}" -load cpu,mem,hammer -gc
one gogc-400 GOGC=400 "$B/fcloop" "${common[@]}" -load cpu,mem,hammer -gc
one gogc-off GOGC=off GOMEMLIMIT=256MiB "$B/fcloop" "${common[@]}" -load cpu,mem,hammer -gc
