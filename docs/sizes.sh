#!/usr/bin/env bash
# Prints the stripped size (go build -ldflags='-s -w') of the minimal echo
# server (simpl/internal/echo, which imports only simpl) and of every tool,
# built from a commit (default HEAD) in a temporary directory, and the
# count of packages each links with how many of them are Prometheus or
# protobuf. A commit older than the echo program gets this tree's copy.
# docs/benchmarks.md, "Binary sizes".
#
#	bash docs/sizes.sh [COMMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
commit=${1:-HEAD}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive "$commit" | tar -x -C "$tmp"
if [ ! -d "$tmp/simpl/internal/echo" ]; then
  mkdir -p "$tmp/simpl/internal/echo"
  cp simpl/internal/echo/main.go "$tmp/simpl/internal/echo/"
fi
cd "$tmp"
printf '%-10s %10s %9s %9s\n' program bytes packages prom+pb
for dir in simpl/internal/echo tools/*/; do
  dir=${dir%/}
  [ -f "$dir/main.go" ] || continue
  name=$(basename "$dir")
  go build -ldflags='-s -w' -o "$tmp/bin/$name" "./$dir"
  deps=$(go list -deps "./$dir")
  printf '%-10s %10d %9d %9d\n' "$name" "$(stat -c %s "$tmp/bin/$name")" \
    "$(wc -l <<<"$deps")" "$(grep -cE 'prometheus|protobuf' <<<"$deps" || true)"
done
