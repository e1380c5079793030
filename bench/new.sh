#!/usr/bin/env bash
# Times `msvc new` (manifest edit, compose and contracts regeneration included) against
# cookiecutter and copier rendering an equivalent template: the same files msvc writes
# for a REST service, with the service name as the template variable.
#
#   bash bench/new.sh            # needs python3; installs cookiecutter and copier with pip
#   RUNS=50 bash bench/new.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-30}"

python3 -m pip install --quiet --disable-pip-version-check cookiecutter copier
cargo build --release --quiet
MSVC="$PWD/target/release/msvc"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The reference output: one REST service as msvc renders it.
(cd "$work" && "$MSVC" init ref -q && cd ref && "$MSVC" new bench-api --rest -q)
files=$(cd "$work/ref/services/bench-api" && find . -type f | wc -l)

# The same files as a cookiecutter template and as a copier template.
mkdir -p "$work/cc/{{cookiecutter.name}}" "$work/cp/{{name}}"
cp -r "$work/ref/services/bench-api/." "$work/cc/{{cookiecutter.name}}/"
cp -r "$work/ref/services/bench-api/." "$work/cp/{{name}}/"
find "$work/cc" -type f -exec sed -i 's/bench_api/{{cookiecutter.name | replace("-", "_")}}/g; s/bench-api/{{cookiecutter.name}}/g' {} +
find "$work/cp" -type f -exec sed -i 's/bench_api/{{name | replace("-", "_")}}/g; s/bench-api/{{name}}/g' {} +
for f in $(find "$work/cp/{{name}}" -type f); do mv "$f" "$f.jinja"; done
echo '{"name": "bench-api"}' > "$work/cc/cookiecutter.json"
printf 'name:\n  type: str\n  default: bench-api\n' > "$work/cp/copier.yml"

time_runs() { # label, command...; prints the mean wall time in ms over RUNS runs
  python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time, shutil, os, tempfile
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

# msvc: a fresh workspace copy per run, so every run adds the same service.
cp -r "$work/ref" "$work/base" && (cd "$work/base" && "$MSVC" rm bench-api --delete -q)
msvc_t=$(time_runs "rm -rf $work/m\$RUN && cp -r $work/base $work/m\$RUN && cd $work/m\$RUN && $MSVC new bench-api --rest -q")
copy_t=$(time_runs "rm -rf $work/m\$RUN && cp -r $work/base $work/m\$RUN")
cc_t=$(time_runs "cookiecutter --no-input -f -o $work/out-cc $work/cc")
cp_t=$(time_runs "copier copy --defaults --overwrite --quiet $work/cp $work/out-cp\$RUN")

read -r msvc_mean msvc_med <<<"$msvc_t"
read -r copy_mean _ <<<"$copy_t"
read -r cc_mean cc_med <<<"$cc_t"
read -r cp_mean cp_med <<<"$cp_t"
python3 - "$files" "$msvc_mean" "$copy_mean" "$cc_mean" "$cp_mean" <<'PY'
import sys
files, msvc, copy, cc, cp = sys.argv[1], *map(float, sys.argv[2:])
own = max(msvc - copy, 0.01)  # subtract the per-run workspace copy
print(f"rendering one REST service ({files} files), mean of runs")
print(f"  {'tool':<13}{'ms':>9}{'vs msvc':>10}")
print(f"  {'msvc new':<13}{own:>9.1f}{1:>9.1f}x   (manifest edit + compose + contracts included)")
print(f"  {'cookiecutter':<13}{cc:>9.1f}{cc/own:>9.1f}x")
print(f"  {'copier':<13}{cp:>9.1f}{cp/own:>9.1f}x")
PY
