#!/usr/bin/env bash
# The control-loop runs of issue 12 (items 4, 5, 6 and 8): fcloop at 1 kHz,
# SCHED_FIFO 80 (every thread of the loop processes: -runtime-fifo follows
# -fifo), memory locked, with cyclictest on the same CPUs in the same run,
# one after the other:
#
#   load           -load cpu,mem,hammer, DUR (10 minutes): the targets' run,
#                  the loop's processes free to run on either CPU
#   load-onecpu    the same, DUR, the loop's processes and cyclictest on CPU
#                  1 (-cpus 1), the load on both CPUs (-load-cpus 0,1)
#   load-send      the same, SHORT, the sensor Sending instead of triggering
#   load-gc        the same as load, SHORT, with -gc (a garbage-producing
#                  goroutine in the controller)
#   gogc-400       load-gc with GOGC=400
#   gogc-off       load-gc with GOGC=off GOMEMLIMIT=256MiB
#   runtime-other  load, SHORT, the runtime's threads left at SCHED_OTHER
#                  (-runtime-fifo 0): what SetProcessPriority changes
#   isolated       load, SHORT, the loop on CPU 1 and the load on CPU 0
#   no-mlock       load, SHORT, memory not locked
#   other          load, SHORT, everything at SCHED_OTHER (no -fifo; cyclictest
#                  too)
#   idle           no load, SHORT
#   arm64, arm     idle, ARMDUR, fcloop built for linux/arm64 and linux/arm
#                  (GOARM=7) and run under qemu-user (binfmt_misc), with the
#                  host's cyclictest: emulated, so only ratios mean anything
#                  (skipped when qemu-user is not registered)
#
# Each writes OUT/NAME.json (fcloop -json) and OUT/NAME.png (-plot), and
# prints the JSON on stdout. Run as root (SCHED_FIFO, mlockall), with
# rt-tests installed, on an otherwise idle machine, from the repository's
# root.
set -eu
DUR=${DUR:-10m}
SHORT=${SHORT:-90s}
ARMDUR=${ARMDUR:-60s}
OUT=${OUT:-/tmp/fcloop-runs}
B=${B:-/tmp/gosimpl-bench}
mkdir -p "$OUT" "$B"
go build -o "$B/fcloop" ./tools/fcloop
common=(-period 1ms -fifo 80 -mlock)
load=(-load cpu,mem,hammer)
one() {
  name=$1; shift
  echo "# $name: $*"
  env "$@" -json -plot "$OUT/$name.png" > "$OUT/$name.json"
  cat "$OUT/$name.json"
}
one load          "$B/fcloop" -d "$DUR" "${common[@]}" "${load[@]}"
one load-onecpu   "$B/fcloop" -d "$DUR" "${common[@]}" "${load[@]}" -cpus 1 -load-cpus 0,1
one load-send     "$B/fcloop" -d "$SHORT" "${common[@]}" "${load[@]}" -sensor send
one load-gc       "$B/fcloop" -d "$SHORT" "${common[@]}" "${load[@]}" -gc
one gogc-400      GOGC=400 "$B/fcloop" -d "$SHORT" "${common[@]}" "${load[@]}" -gc
one gogc-off      GOGC=off GOMEMLIMIT=256MiB "$B/fcloop" -d "$SHORT" "${common[@]}" "${load[@]}" -gc
one runtime-other "$B/fcloop" -d "$SHORT" "${common[@]}" "${load[@]}" -runtime-fifo 0
one isolated      "$B/fcloop" -d "$SHORT" "${common[@]}" "${load[@]}" -cpus 1 -load-cpus 0
one no-mlock      "$B/fcloop" -d "$SHORT" -period 1ms -fifo 80 "${load[@]}"
one other         "$B/fcloop" -d "$SHORT" -period 1ms -mlock "${load[@]}"
one idle          "$B/fcloop" -d "$SHORT" "${common[@]}"
for arch in arm64 arm; do
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || [ ! -e /proc/sys/fs/binfmt_misc/qemu-arm ]; then
    echo "# $arch: skipped, qemu-user is not registered with binfmt_misc"
    continue
  fi
  CGO_ENABLED=0 GOARCH=$arch GOARM=7 go build -o "$B/fcloop-$arch" ./tools/fcloop
  one "$arch" "$B/fcloop-$arch" -d "$ARMDUR" "${common[@]}"
done
