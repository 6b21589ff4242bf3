#!/usr/bin/env bash
# Issue 13's and 14's network measurement (docs/benchmarks.md, "Across hosts"): two
# network namespaces on a veth pair, hosts a (10.77.0.1) and b (10.77.0.2),
# each with its own FIFO_PATH and its gateway (embedded NATS servers joined
# as a cluster, plain: -insecure); on b an fcbench echo receiver and a raw
# NATS echo responder. From a, ROUNDS times, one fcbench run per
# configuration measures a remote Send to b:BENCH and raw NATS
# request/reply through the same servers, in turn (fcbench -remote -nats):
# 64 B from 1 sender and from 16; then the same Sends through the bridge
# to C SIMPL hosts (issue 14): a's gateway plays C SIMPL's surrogate_r to
# b's fcgate -csimpl-tcp playing surrogate_S (_simplTCP:10.77.0.2:BENCH).
# As root. Raw output on stdout.
#   B=/tmp/gosimpl-bench ROUNDS=5 bash docs/bench/net-run.sh
set -u
B=${B:-/tmp/gosimpl-bench}
ROUNDS=${ROUNDS:-5}
A=gsbench-a; Bn=gsbench-b
cleanup() {
  for ns in $A $Bn; do
    ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null
  done
  sleep 0.5
  for ns in $A $Bn; do
    ip netns pids $ns 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del $ns 2>/dev/null
  done
  rm -rf "${DA:-}" "${DB:-}"
}
trap cleanup EXIT
cleanup
ip netns add $A && ip netns add $Bn
ip link add gsb-a type veth peer name gsb-b
ip link set gsb-a netns $A && ip link set gsb-b netns $Bn
ip -n $A addr add 10.77.0.1/24 dev gsb-a && ip -n $A link set gsb-a up && ip -n $A link set lo up
ip -n $Bn addr add 10.77.0.2/24 dev gsb-b && ip -n $Bn link set gsb-b up && ip -n $Bn link set lo up
DA=$(mktemp -d); DB=$(mktemp -d)
ina() { ip netns exec $A env FIFO_PATH=$DA HOSTNAME=a "$@"; }
inb() { ip netns exec $Bn env FIFO_PATH=$DB HOSTNAME=b "$@"; }
ina $B/fcgate -host a -listen 127.0.0.1:4222 -cluster 10.77.0.1:6222 -insecure -csimpl-tcp-conns 16 >/dev/null 2>&1 &
inb $B/fcgate -host b -listen 127.0.0.1:4222 -cluster 10.77.0.2:6222 -routes nats://10.77.0.1:6222 -insecure \
  -csimpl-tcp 10.77.0.2:8001 -csimpl-tcp-allow 10.77.0.1 -csimpl-tcp-conns 32 >/dev/null 2>&1 &
sleep 1
inb $B/fcbench -serve BENCH >/dev/null 2>&1 &
inb $B/fcbench -serve-nats nats://127.0.0.1:4222 >/dev/null 2>&1 &
# Wait for the route: until b:BENCH is found from a.
for i in $(seq 1 100); do
  ina $B/fcsend -r b:BENCH -m x >/dev/null 2>&1 && break
  sleep 0.1
done
for r in $(seq 1 "$ROUNDS"); do
  echo "# round $r"
  $B/floor -n 20000 -s 64 | sed 's/^/floor64 /'
  echo "senders1 $(ina $B/fcbench -json -remote b:BENCH -nats nats://127.0.0.1:4222 -size 64 -n 5000 | tr '\n' ' ')"
  echo "senders16 $(ina $B/fcbench -json -remote b:BENCH -nats nats://127.0.0.1:4222 -size 64 -n 2000 -senders 16 | tr '\n' ' ')"
  echo "bridge1 $(ina $B/fcbench -json -remote _simplTCP:10.77.0.2:BENCH -size 64 -n 5000 | tr '\n' ' ')"
  echo "bridge16 $(ina $B/fcbench -json -remote _simplTCP:10.77.0.2:BENCH -size 64 -n 2000 -senders 16 | tr '\n' ' ')"
done
