#!/usr/bin/env bash
# Times `msvc new` for each kind of service (manifest edit, compose and contracts
# regeneration, formatting included) against cookiecutter, copier and cargo-generate
# rendering the same files as a template, with the service name as its variable.
#
#   bash bench/new.sh            # installs cookiecutter and copier with pip, and
#                                # cargo-generate with cargo when it is missing
#   RUNS=50 bash bench/new.sh
#   CARGO_GENERATE_VERSION=0.23.3 bash bench/new.sh   # an older cargo-generate, for a
#                                # Rust older than the latest one needs
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-30}"

python3 -m pip install --quiet --disable-pip-version-check cookiecutter copier
command -v cargo-generate >/dev/null ||
  cargo install --locked --quiet "cargo-generate${CARGO_GENERATE_VERSION:+@$CARGO_GENERATE_VERSION}"
cargo build --release --quiet
MSVC="$PWD/target/release/msvc"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

time_runs() { # command...; prints the mean and median wall time in ms over RUNS runs
  python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time, os
runs = int(sys.argv[1]); cmd = sys.argv[2:]
times = []
for i in range(runs):
    env = dict(os.environ, RUN=str(i))
    start = time.perf_counter()
    subprocess.run(["bash", "-c", " ".join(cmd)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times.append((time.perf_counter() - start) * 1000)
times.sort()
print(f"{sum(times)/len(times):.1f} {times[len(times)//2]:.1f}")
PY
}

# Turns a rendered service into a template for one engine: the name becomes the
# engine's variable, and braces that are Rust (format strings, raw strings) are escaped
# so the engine prints them as they are.
templatize() { # engine dir
  python3 - "$@" <<'PY'
import os, sys
engine, root = sys.argv[1], sys.argv[2]
var = {"jinja-cc": ("cookiecutter.name", "cookiecutter.name | replace('-', '_')"),
       "jinja-cp": ("name", "name | replace('-', '_')"),
       "liquid": ("project-name", "crate_name")}[engine]
for dirpath, _, files in os.walk(root):
    for f in files:
        path = os.path.join(dirpath, f)
        text = open(path, encoding="utf-8").read()
        for i, token in enumerate(["{{", "}}", "{%", "%}", "{#", "#}"]):
            text = text.replace(token, f"\x00{i}\x00")
        text = text.replace("bench_svc", "\x01S\x01").replace("bench-svc", "\x01K\x01")
        text = text.replace("\x01S\x01", "{{ " + var[1] + " }}").replace("\x01K\x01", "{{ " + var[0] + " }}")
        for i, token in enumerate(["{{", "}}", "{%", "%}", "{#", "#}"]):
            text = text.replace(f"\x00{i}\x00", "{{ '" + token + "' }}")
        open(path, "w", encoding="utf-8").write(text)
PY
}

results=()
for kind in rest grpc worker; do
  extra=()
  [ "$kind" = worker ] && extra=(--consumes bench_queue)
  ref="$work/$kind/ref"
  mkdir -p "$work/$kind"
  (cd "$work/$kind" && "$MSVC" init ref -q && cd ref && "$MSVC" new bench-svc "--$kind" "${extra[@]}" -q)
  files=$(cd "$ref/services/bench-svc" && find . -type f | wc -l)

  # The same files as a cookiecutter, a copier and a cargo-generate template.
  cc="$work/$kind/cc" cp="$work/$kind/cp" cg="$work/$kind/cg"
  mkdir -p "$cc/{{cookiecutter.name}}" "$cp/{{name}}" "$cg"
  cp -r "$ref/services/bench-svc/." "$cc/{{cookiecutter.name}}/"
  cp -r "$ref/services/bench-svc/." "$cp/{{name}}/"
  cp -r "$ref/services/bench-svc/." "$cg/"
  templatize jinja-cc "$cc/{{cookiecutter.name}}"
  templatize jinja-cp "$cp/{{name}}"
  templatize liquid "$cg"
  for f in $(find "$cp/{{name}}" -type f); do mv "$f" "$f.jinja"; done
  echo '{"name": "bench-svc"}' > "$cc/cookiecutter.json"
  printf 'name:\n  type: str\n  default: bench-svc\n' > "$cp/copier.yml"
  printf '[template]\ncargo_generate_version = ">=0.20"\n' > "$cg/cargo-generate.toml"

  # msvc: a fresh workspace copy per run, so every run adds the same service.
  base="$work/$kind/base"
  cp -r "$ref" "$base" && (cd "$base" && "$MSVC" rm bench-svc --delete -q)
  m="$work/$kind/m"
  msvc_t=$(time_runs "rm -rf $m\$RUN && cp -r $base $m\$RUN && cd $m\$RUN && $MSVC new bench-svc --$kind ${extra[*]} -q")
  copy_t=$(time_runs "rm -rf $m\$RUN && cp -r $base $m\$RUN")
  cc_t=$(time_runs "cookiecutter --no-input -f -o $work/$kind/out-cc $cc")
  cp_t=$(time_runs "copier copy --defaults --overwrite --quiet $cp $work/$kind/out-cp\$RUN")
  cg_t=$(time_runs "rm -rf $work/$kind/out-cg\$RUN && mkdir -p $work/$kind/out-cg\$RUN && cargo generate --path $cg --name bench-svc --silent --vcs none --destination $work/$kind/out-cg\$RUN")
  results+=("$kind $files ${msvc_t% *} ${copy_t% *} ${cc_t% *} ${cp_t% *} ${cg_t% *}")
done

python3 - "${results[@]}" <<'PY'
import sys
print("rendering one service with its name as the variable, mean ms of runs")
print(f"  {'kind':<8}{'files':>6}{'msvc new':>10}{'cookiecutter':>14}{'copier':>9}{'cargo-generate':>16}")
for row in sys.argv[1:]:
    kind, files, msvc, copy, cc, cp, cg = row.split()
    own = max(float(msvc) - float(copy), 0.01)  # less the per-run workspace copy
    cc, cp, cg = float(cc), float(cp), float(cg)
    print(f"  {kind:<8}{files:>6}{own:>10.1f}{cc:>8.1f} ({cc/own:>3.0f}x){cp:>6.1f} ({cp/own:>3.0f}x){cg:>9.1f} ({cg/own:>3.0f}x)")
print("msvc new includes the manifest edit and the regeneration of compose and the contracts")
print("crate; the others only copy and substitute.")
PY
