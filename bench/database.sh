#!/usr/bin/env bash
# GET /user/1 from PostgreSQL, side by side, in one run:
#
#   - a REST service msvc generates with `--db postgres` (`msvc new bench-api --rest
#     --resource user --db postgres`): its store reads the `users` table its first
#     migration makes, with logging, metrics and readiness on, as in production;
#   - the article's Flask app with Flask-SQLAlchemy (`User.query.get`) under
#     `gunicorn -w 2`, on the same rows of the same server;
#   - a bare axum + sqlx handler (bench/db-ceiling), the ceiling.
#
#   bash bench/database.sh                 # a few minutes with the builds cached
#   DURATION=5 IDLE_WAIT=0 bash bench/database.sh
#
# Needs the PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth; PGURL to change the
# server). It makes a database of its own there and drops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNS="${CONNS:-32}"
IDLE_WAIT="${IDLE_WAIT:-30}"
PGURL="${PGURL:-postgres://postgres@127.0.0.1:5432}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/bench}"
P_MSVC=18180 P_FLASK=18190 P_CEILING=18191

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh
die() { say "error: $*"; exit 1; }

if ! command -v wrk >/dev/null; then
  say "installing wrk (apt)"
  apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null \
    || die "cannot install wrk: run 'apt-get update && apt-get install -y wrk' as root"
fi
say "installing flask flask-sqlalchemy gunicorn psycopg2-binary (pip)"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  flask flask-sqlalchemy gunicorn psycopg2-binary
psql "$PGURL/postgres" -Atc 'SELECT 1' >/dev/null || die "no PostgreSQL at $PGURL"
for port in $P_MSVC $P_FLASK $P_CEILING; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port is in use"; fi
done

scratch="$(mktemp -d /tmp/msvc-bench-db.XXXXXX)"
db="msvc_bench_db_$$"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql "$PGURL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT
start() { local name="$1"; shift; "$@" >/dev/null 2>"$scratch/$name.log" & pids+=("$!"); }
wait_ready() { # wait_ready URL NAME
  local i
  for i in $(seq 1 400); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ]; then return 0; fi
    sleep 0.05
  done
  cat "$scratch/$2.log" >&2 || true
  die "$2 did not answer 200 at $1"
}

say "building msvc, the generated service and the ceiling (release)"
cargo build --release --quiet --bin msvc
MSVC="$CARGO_TARGET_DIR/release/msvc"
ws="$CARGO_TARGET_DIR/db-ws"
rm -rf "$ws" && mkdir -p "$ws"
(cd "$ws" && "$MSVC" init dbbench -q && cd dbbench \
  && "$MSVC" new bench-api --rest --resource user --db postgres --port "$P_MSVC" -q)
(cd "$ws/dbbench" && cargo build --release --quiet -p bench-api)
cargo build --release --quiet --manifest-path bench/db-ceiling/Cargo.toml

psql "$PGURL/postgres" -qc "CREATE DATABASE $db" >/dev/null
export DATABASE_URL="$PGURL/$db"

# The generated service first: its migration makes the table the others read.
start msvc env RUST_LOG=info LOG_FORMAT=json HOST=127.0.0.1 PORT="$P_MSVC" \
  "$CARGO_TARGET_DIR/release/bench-api"
wait_ready "http://127.0.0.1:$P_MSVC/readyz" msvc
start flask env -C bench/python gunicorn -w 2 -b "127.0.0.1:$P_FLASK" flask_sqlalchemy_app:app
wait_ready "http://127.0.0.1:$P_FLASK/user/1" flask
start ceiling env PORT="$P_CEILING" "$CARGO_TARGET_DIR/release/db-ceiling"
wait_ready "http://127.0.0.1:$P_CEILING/user/1" ceiling

results="$scratch/results"
: >"$results"
run() { # run NAME PORT
  quiet_machine "$1"
  wrk -t2 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$2/user/1" >/dev/null
  local out
  out="$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$2/user/1")"
  python3 - "$1" "$out" "$BUSY" >>"$results" <<'PY'
import re, sys
name, out, busy = sys.argv[1:]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
val, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
p99 = float(val) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
print(f"{name} {rps:.0f} {p99:.2f} {bad.group(1) if bad else 0} {busy}")
PY
  say "  $1: $(tail -1 "$results")"
}
say "GET /user/1 from PostgreSQL, wrk -t2 -c$CONNS -d${DURATION}s each, one at a time"
run msvc "$P_MSVC"
run flask "$P_FLASK"
run ceiling "$P_CEILING"

python3 - "$results" "$CONNS" "$DURATION" "$(nproc)" <<'PY'
import sys
path, conns, duration, cores = sys.argv[1:]
rows = {l.split()[0]: l.split()[1:] for l in open(path) if l.strip()}
def rps(n): return float(rows[n][0])
print(f"GET /user/1 from PostgreSQL ({duration}s per run, {conns} connections, wrk and servers on the same {cores} cores)\n")
print(f"{'server':<44} {'req/s':>9} {'p99':>9} {'non-2xx':>8}")
labels = {
    "msvc": "msvc new --rest --db postgres (sqlx)",
    "flask": "Flask-SQLAlchemy, gunicorn -w 2",
    "ceiling": "bare axum + sqlx (ceiling)",
}
for name in ["msvc", "flask", "ceiling"]:
    r, p99, bad, busy = rows[name]
    flag = f"  (machine {busy}% busy before)" if int(busy) >= 20 else ""
    print(f"{labels[name]:<44} {float(r):>9,.0f} {float(p99):>7.2f}ms {bad:>8}{flag}")
print()
print(f"msvc vs Flask-SQLAlchemy: {rps('msvc') / rps('flask'):.1f}x")
share = 100 * rps('msvc') / rps('ceiling')
print(f"msvc's share of the ceiling: {share:.0f}% (goal: at least 80%)")
PY
