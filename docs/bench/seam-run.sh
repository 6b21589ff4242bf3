#!/usr/bin/env bash
# Interleaved before/after run: the floor, then each fcbench configuration
# with the old binary and the new one back to back, ROUNDS times; then the
# Go benchmarks of both, interleaved. Raw output on stdout.
set -u
B=${B:-/tmp/gosimpl-bench}
ROUNDS=${ROUNDS:-5}
export FIFO_PATH=$(mktemp -d)
trap 'rm -rf "$FIFO_PATH"' EXIT
cfgs=(
  "-transport shm -spin=false -size 64 -n 20000"
  "-transport shm -spin=true -size 64 -n 20000"
  "-transport fifo -size 64 -n 20000"
  "-transport shm -spin=false -size 4096 -n 10000"
  "-transport fifo -size 4096 -n 10000"
  "-transport shm -spin=false -size 65536 -n 5000"
  "-transport fifo -size 65536 -n 5000"
  "-transport shm -spin=false -size 1048576 -n 2000"
  "-transport fifo -size 1048576 -n 2000"
  "-transport shm -spin=false -size 64 -senders 16 -n 5000"
)
for r in $(seq 1 "$ROUNDS"); do
  echo "# round $r"
  $B/floor -n 20000 -s 64 | sed 's/^/floor64 /'
  $B/floor -n 2000 -s 1048576 | grep futex-block | sed 's/^/floor1m /'
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
    $B/simpl-$v.test -test.run '^$' -test.bench 'RoundTrip/(fifo|shm-spin|shm-nospin)/(64B|1MiB)$|Senders' -test.benchtime 20000x -test.benchmem 2>&1 | grep '^Benchmark' | sed "s/^/go-$v /"
  done
done
