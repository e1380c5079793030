#!/usr/bin/env bash
# The first build of a new workspace, then `msvc up`'s build right after it: the crates
# each compiles. `cargo test` and `msvc up` resolve the generated crates' dependencies
# with the same features, so the second builds nothing again.
#
#   bash bench/first-build.sh        # a cold build: a few minutes
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
MSVC="$PWD/target/release/msvc"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="$work/target"

measure() { # label, command...: wall time and the crates cargo compiled
  local label="$1" log="$work/log" start end
  shift
  start=$(date +%s.%N)
  "$@" >"$log" 2>&1
  end=$(date +%s.%N)
  printf '  %-44s %7.1f s  %4d crates compiled\n' "$label" \
    "$(echo "$end - $start" | bc)" "$(grep -c ' Compiling ' "$log" || true)"
}

cd "$work" && "$MSVC" init shop --example -q && cd shop
echo "the example (msvc init shop --example), cold target dir:"
measure "cargo test --workspace --no-run" cargo test --workspace --no-run
# The build `msvc up` starts, exactly (its own progress line aside).
measure "then msvc up's build (cargo build --bins)" cargo build --bins --workspace
