#!/usr/bin/env bash
# install.embed: cmake --install into a scratch prefix, build an application
# with its own state machine out of tree with pkg-config, run 3 replicas of
# it on 127.0.0.1 and check they agree.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d /tmp/rabia-install.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH=$tmp/prefix/lib/pkgconfig:$tmp/prefix/lib/x86_64-linux-gnu/pkgconfig
echo "pkg-config --libs rabia: $(pkg-config --libs rabia)"
mkdir "$tmp/app"
cp "$src" "$tmp/app/"
# out of tree: only the installed headers and libraries, built as strict
# ISO C17 as a user may (EMBED_CFLAGS: a sanitizer build's installed
# library needs its runtime in the program too)
# shellcheck disable=SC2086
cc -std=c17 -O2 -Wall -Wextra -Werror ${EMBED_CFLAGS:-} -o "$tmp/app/maxreg" "$tmp/app/maxreg.c" $(pkg-config --cflags --libs rabia)
echo "built $tmp/app/maxreg out of tree"

base=$((18500 + RANDOM % 400))
members="1=127.0.0.1:$((base + 1)),2=127.0.0.1:$((base + 2)),3=127.0.0.1:$((base + 3))"
for i in 1 2 3; do
  "$tmp/app/maxreg" "$i" "$members" 200 "$tmp/d$i" >"$tmp/out$i" 2>"$tmp/err$i" &
  pids+=($!)
done
deadline=$((SECONDS + 120))
while :; do
  done_count=0
  for i in 1 2 3; do grep -q '^final' "$tmp/out$i" && done_count=$((done_count + 1)); done
  ((done_count == 3)) && break
  if ((SECONDS > deadline)); then
    echo "FAIL: replicas did not finish in time" >&2
    for i in 1 2 3; do echo "--- replica $i"; cat "$tmp/out$i" "$tmp/err$i"; done >&2
    exit 1
  fi
  # a replica that exited without its final line fails the test now, with
  # its output, rather than after the whole deadline
  for i in 1 2 3; do
    if ! kill -0 "${pids[i - 1]}" 2>/dev/null && ! grep -q '^final' "$tmp/out$i"; then
      echo "FAIL: replica $i exited without its final line" >&2
      cat "$tmp/out$i" "$tmp/err$i" >&2
      exit 1
    fi
  done
  sleep 0.2
done
for i in 1 2 3; do echo "replica $i: $(cat "$tmp/out$i")"; done
want="final 3000199"
for i in 1 2 3; do
  grep -q "^$want " "$tmp/out$i" || { echo "FAIL: replica $i: $(cat "$tmp/out$i"), want '$want'" >&2; exit 1; }
done
echo "install.embed: 3 replicas of an out-of-tree state machine agree ($want): 1 passed, 0 failed"
