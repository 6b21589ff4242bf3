#!/usr/bin/env bash
set -u
B=${B:-/tmp/gosimpl-bench}
export FIFO_PATH=$(mktemp -d)
trap 'rm -rf "$FIFO_PATH"' EXIT
cfgs=(
  "-transport fifo -size 64 -n 20000"
  "-transport fifo -size 65536 -n 5000"
  "-transport shm -spin=false -size 1048576 -n 5000"
)
for r in $(seq 1 ${ROUNDS:-20}); do
  for c in "${cfgs[@]}"; do
    for v in before after; do
      if [ $((r % 2)) = 0 ]; then v=$([ $v = before ] && echo after || echo before); fi
      echo "$v $c $($B/fcbench-$v -json $c | tail -1)"
    done
  done
done
for r in $(seq 1 5); do
  for v in before after; do
    if [ $((r % 2)) = 0 ]; then v=$([ $v = before ] && echo after || echo before); fi
    $B/simpl-$v.test -test.run '^$' -test.bench 'RoundTrip/(fifo/64B|fifo/1MiB|shm-nospin/1MiB|shm-spin/1MiB)$' -test.benchtime 20000x 2>&1 | grep '^Benchmark' | sed "s/^/go-$v /"
  done
done
