#!/usr/bin/env bash
# Interleaved before/after run of the FIFO transport for issue 16's changes
# (doorbell alignment check, copies by size, free lists): the floor, then
# each fcbench configuration with the old binary and the new one back to
# back (order alternating by round), ROUNDS times; then the Go benchmarks
# of both, interleaved. Raw output on stdout; docs/benchmarks.md says how
# the binaries are built.
set -u
B=${B:-/tmp/gosimpl-bench}
ROUNDS=${ROUNDS:-5}
export FIFO_PATH=$(mktemp -d)
trap 'rm -rf "$FIFO_PATH"' EXIT
cfgs=(
  "-transport fifo -size 64 -n 20000"
  "-transport fifo -size 4096 -n 10000"
  "-transport fifo -size 65536 -n 5000"
  "-transport fifo -size 1048576 -n 1000"
  "-transport fifo -size 8388608 -n 200"
  "-transport shm -spin=false -size 64 -n 20000"
)
for r in $(seq 1 "$ROUNDS"); do
  echo "# round $r"
  $B/floor -n 20000 -s 64 | sed 's/^/floor64 /'
  for c in "${cfgs[@]}"; do
    for v in before after; do
      if [ $((r % 2)) = 0 ]; then v=$([ $v = before ] && echo after || echo before); fi
      echo "$v $c $($B/fcbench-$v -json $c | tail -1)"
    done
  done
done
for r in $(seq 1 3); do
  for v in before after; do
    if [ $((r % 2)) = 0 ]; then v=$([ $v = before ] && echo after || echo before); fi
    $B/simpl-$v.test -test.run '^$' -test.bench 'RoundTrip/fifo/(64B|1MiB)$' -test.benchtime 20000x -test.benchmem 2>&1 | grep '^Benchmark' | sed "s/^/go-$v /"
  done
done
