#!/usr/bin/env bash
# Fuzzes `msvc check` for a bounded time: the manifest loader in memory, then a whole
# workspace on disk. Outside the normal test command (it needs cargo-fuzz and takes
# minutes). A crash is minimised and copied into tests/fixtures/check/regressions/, which
# the normal suite runs (`odd_inputs_never_crash_check`); fix it, then commit both.
#
#   bash fuzz/run.sh            # 120 s per target
#   SECONDS_PER_TARGET=600 bash fuzz/run.sh
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Without a nightly toolchain it builds
# with RUSTC_BOOTSTRAP=1, which lets stable rustc take the -Z flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SECONDS_PER_TARGET:-120}"
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz not found: cargo install cargo-fuzz" >&2; exit 2; }
cargo build --quiet
MSVC="$PWD/target/debug/msvc"

# Seeds: the example system and every check fixture, as the targets read them.
corpus="fuzz/corpus"
mkdir -p "$corpus/manifest" "$corpus/check"
seed_dir="$(mktemp -d)"
trap 'rm -rf "$seed_dir"' EXIT
(cd "$seed_dir" && "$MSVC" init shop --example -q)
python3 - "$seed_dir/shop" "$corpus" tests/fixtures/check <<'PY'
import hashlib, os, sys
ws, corpus, fixtures = sys.argv[1:]
files = ["services.toml", "proto/user_service/v1/user_service.proto", "services/user-api/Dockerfile",
         "services/user-api/openapi.yaml", "docker-compose.yml", "proto/shared/v1/shared.proto"]
def read(root, rel):
    p = os.path.join(root, rel)
    return open(p, "rb").read() if os.path.isfile(p) else b""
def seed(target, data):
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)
base = [read(ws, f) for f in files]
seed("check", b"\0".join(base))
seed("manifest", base[0])
# Fixture files (services.toml, protos, Dockerfiles, openapi.yaml) over the example.
for dirpath, _, names in os.walk(fixtures):
    for n in names:
        p = os.path.join(dirpath, n)
        data = open(p, "rb").read()
        if n == "services.toml":
            seed("manifest", data)
        for i, f in enumerate(files):
            if f.endswith(n) or (n.endswith(".proto") and f.endswith("shared.proto")):
                parts = list(base)
                parts[i] = data
                seed("check", b"\0".join(parts))
PY

status=0
for target in manifest check; do
  echo "== fuzzing $target for ${SECS}s"
  if ! cargo fuzz run "$target" "$corpus/$target" -- -max_total_time="$SECS" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1; then
    status=1
  fi
done

# Every crash (or timeout) becomes a regression fixture of the normal test suite.
shopt -s nullglob
for artifact in fuzz/artifacts/*/crash-* fuzz/artifacts/*/timeout-* fuzz/artifacts/*/oom-*; do
  target="$(basename "$(dirname "$artifact")")"
  name="fuzz-$target-$(basename "$artifact" | cut -c1-20)"
  dest="tests/fixtures/check/regressions/$name"
  [ -e "$dest" ] && continue
  python3 - "$artifact" "$target" "$dest" <<'PY'
import os, sys
artifact, target, dest = sys.argv[1:]
files = ["services.toml", "proto/user_service/v1/user_service.proto", "services/user-api/Dockerfile",
         "services/user-api/openapi.yaml", "docker-compose.yml", "proto/shared/v1/shared.proto"]
data = open(artifact, "rb").read()
parts = [data] if target == "manifest" else data.split(b"\0")
for f, part in zip(files, parts):
    p = os.path.join(dest, f)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(part)
print(f"new regression fixture: {dest}")
PY
  status=1
done
if [ "$status" -ne 0 ]; then
  echo "fuzzing found a problem: see above and tests/fixtures/check/regressions/" >&2
fi
exit "$status"
