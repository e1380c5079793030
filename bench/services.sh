#!/usr/bin/env bash
# Throughput of the services msvc generates, side by side with the source article's
# Python versions, one scenario at a time:
#
#   1. REST  GET /user/1, wrk -t2 -c32: the REST template alone (`msvc new --rest`) vs
#      Flask under `gunicorn -w 2`; the example's REST -> gRPC chain (user-api ->
#      user-service) vs Flask calling a grpcio server.
#   2. gRPC  GetUser with 32 calls in flight (bench/grpc-load): the example's
#      user-service vs a grpcio server of the same proto.
#   3. AMQP  50,000 persistent JSON messages, publisher confirms, consumed with acks:
#      contracts::amqp::Publisher (bench/amqp-publish) and the example's email-worker
#      vs pika.
#
# Services run as in production: release builds, RUST_LOG=info LOG_FORMAT=json, stdout
# to /dev/null, logging, metrics and health left on.
#
#   bash bench/services.sh                # needs root for `apt-get install wrk` if missing
#   DURATION=5 COUNT=20000 IDLE_WAIT=0 bash bench/services.sh
#   SCENARIOS=amqp bash bench/services.sh   # some of: rest (1, the template), grpc (1, the
#                                           # chain, and 2), amqp (3)
#
# Needs the RabbitMQ at AMQP_URL (default 127.0.0.1:5672, guest/guest). It is shared:
# the script never stops it and uses queues of its own, deleted afterwards, for pika and
# for the example's worker (bench-worker: email-worker's library on the bench's queue,
# since other users' tests publish to and consume `user_message`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
BENCH="$ROOT/bench"

DURATION="${DURATION:-10}"          # seconds per HTTP / gRPC measurement
WARMUP="${WARMUP:-2}"               # seconds of load before each measurement
CONNS="${CONNS:-32}"                # wrk connections / gRPC calls in flight
COUNT="${COUNT:-50000}"             # AMQP messages
PREFETCH=256                        # the worker's PREFETCH; pika uses the same
IDLE_WAIT="${IDLE_WAIT:-30}"        # seconds to wait for other processes to quieten
SCENARIOS="${SCENARIOS:-rest grpc amqp}"
for s in $SCENARIOS; do
  case "$s" in rest | grpc | amqp) ;; *) echo "SCENARIOS: unknown scenario '$s' (rest, grpc, amqp)" >&2; exit 2 ;; esac
done
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/bench}"
# Ports away from the example's defaults (5000, 50051, 9100, 9101), which the test
# suite uses.
P_REST=18080 P_API=18000 P_GRPC=18051 P_GRPC_ADMIN=18100 P_WORKER_ADMIN=18101
P_FLASK=18090 P_FLASK_CHAIN=18091 P_GRPCIO=18052

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh  # the working directory is the repository's root
die() { say "error: $*"; exit 1; }

# --- tools ---------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  say "installing wrk (apt)"
  apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null \
    || die "cannot install wrk: run 'apt-get update && apt-get install -y wrk' as root"
fi
say "installing flask gunicorn grpcio grpcio-tools pika (pip)"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  flask gunicorn grpcio grpcio-tools pika
(exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null || die "no RabbitMQ at 127.0.0.1:5672"
for port in $P_REST $P_API $P_GRPC $P_GRPC_ADMIN $P_WORKER_ADMIN $P_FLASK $P_FLASK_CHAIN $P_GRPCIO; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port is in use"; fi
done

# --- scratch space and cleanup ---------------------------------------------------------
scratch="$(mktemp -d /tmp/msvc-bench.XXXXXX)"
BIN=""                     # set once the binaries are built
pids=()                    # processes started by start()
py_queue="msvc-bench.pika.$$.$RANDOM"
rust_queue="msvc-bench.publisher.$$.$RANDOM"
worker_queue="msvc-bench.worker.$$.$RANDOM"
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$BIN" ]; then
    "$BIN/amqp-publish" delete "$py_queue" >/dev/null 2>&1 || true
    "$BIN/amqp-publish" delete "$rust_queue" >/dev/null 2>&1 || true
    "$BIN/amqp-publish" delete "$worker_queue" >/dev/null 2>&1 || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ---------------------------------------------------------------------------
started=$SECONDS
if [ -n "${MSVC:-}" ]; then
  say "using MSVC=$MSVC"
else
  say "building msvc"
  MSVC="$ROOT/target/release/msvc"
  if ! CARGO_TARGET_DIR="$ROOT/target" cargo build --release --quiet 2>"$scratch/msvc-build.log"; then
    # The work tree may be mid-edit; a previous build still renders the templates.
    [ -x "$MSVC" ] || { cat "$scratch/msvc-build.log" >&2; die "cannot build msvc"; }
    say "WARNING: cargo build --release of msvc failed (see below); using the previous build $MSVC ($(date -r "$MSVC" '+%F %T'))"
    grep -E '^error' "$scratch/msvc-build.log" | head -5 >&2 || true
  fi
fi

# The generated workspace is kept in $CARGO_TARGET_DIR/services-ws between runs and
# replaced only when msvc renders something different, so that cargo rebuilds only what
# changed.
(cd "$scratch" && "$MSVC" init shop --example -q \
  && cd shop && "$MSVC" new bench-api --rest --resource user -q)
WSROOT="$CARGO_TARGET_DIR/services-ws"
WS="$WSROOT/shop"
mkdir -p "$WSROOT"
if ! diff -rq -x target -x Cargo.lock "$scratch/shop" "$WS" >/dev/null 2>&1; then
  say "msvc output changed (or first run): replacing $WS"
  rm -rf "$WS" && cp -r "$scratch/shop" "$WS"
fi
# The publish-side binary depends on ../shop/crates/contracts: built next to $WS.
mkdir -p "$WSROOT/amqp-publish"
rsync -a --checksum --exclude target --exclude Cargo.lock "$BENCH/amqp-publish/" "$WSROOT/amqp-publish/"

say "building the generated services (cargo build --release in $WS)"
(cd "$WS" && cargo build --release --quiet)
say "building bench/grpc-load and amqp-publish"
GRPC_LOAD_PROTO="$WS/proto/user_service/v1/user_service.proto" \
  cargo build --release --quiet --manifest-path "$BENCH/grpc-load/Cargo.toml"
cargo build --release --quiet --manifest-path "$WSROOT/amqp-publish/Cargo.toml"
BIN="$CARGO_TARGET_DIR/release"
say "builds done in $((SECONDS - started))s"

# Python stubs of the same proto.
PYOUT="$scratch/py"
mkdir -p "$PYOUT"
python3 -m grpc_tools.protoc -I "$WS/proto" --python_out="$PYOUT" --grpc_python_out="$PYOUT" \
  "$WS/proto/user_service/v1/user_service.proto"
export PYTHONPATH="$PYOUT:$BENCH/python${PYTHONPATH:+:$PYTHONPATH}"

# --- processes -----------------------------------------------------------------------

# start NAME CMD...: runs CMD in the background, stdout to /dev/null, stderr to a log.
start() {
  local name="$1"; shift
  "$@" >/dev/null 2>"$scratch/$name.log" &
  pids+=("$!")
  last_pid=$!
}
stop() { # stop PID: SIGTERM and wait
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local kept=() pid
  for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
  pids=("${kept[@]}")
}
wait_port() { # wait_port PORT NAME
  local i
  for i in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  cat "$scratch/$2.log" >&2 || true
  die "$2 did not listen on port $1"
}
rust_env=(env RUST_LOG=info LOG_FORMAT=json HOST=127.0.0.1 AMQP_URL="$AMQP_URL")

RESULTS="$scratch/results"
: >"$RESULTS"
record() { printf '%s\n' "$*" >>"$RESULTS"; } # key=value ...

# busy NAME: waits for a quiet machine before NAME and records how busy it was.
busy() {
  quiet_machine "$1"
  record "busy_$1=$BUSY"
}

# wrk_run NAME URL: warm-up, then the measured run; records NAME_rps / NAME_p99 (ms).
wrk_run() {
  local name="$1" url="$2" out
  wrk -t2 -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null
  out="$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$url")"
  printf '%s\n' "$out" >"$scratch/$name.wrk"
  python3 - "$name" "$out" >>"$RESULTS" <<'PY'
import re, sys
name, out = sys.argv[1], sys.argv[2]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
val, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
p99 = float(val) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
errs = re.search(r"Socket errors:.*", out)
print(f"{name}_rps={rps:.0f}")
print(f"{name}_p99={p99:.2f}")
if bad:
    print(f"{name}_note=non-2xx:{bad.group(1)}")
if errs:
    print(f"{name}_note={errs.group(0).replace(' ', '')}")
PY
  say "  $name: $(grep -E "^${name}_(rps|p99)=" "$RESULTS" | tr '\n' ' ')"
}

# grpc_run NAME URL: warm-up inside grpc-load, then the measured run.
grpc_run() {
  local name="$1" url="$2" out
  out="$("$BIN/grpc-load" --url "$url" --concurrency "$CONNS" --duration "$DURATION" --warmup "$WARMUP")"
  printf '%s\n' "$out" >"$scratch/$name.grpc"
  local rps p99 errors
  rps="$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$out")"
  p99="$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$out")"
  errors="$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$out")"
  record "${name}_rps=$rps" "${name}_p99=$p99"
  [ "$errors" = 0 ] || record "${name}_note=errors:$errors"
  say "  $name: $out"
}

# --- 1. REST ----------------------------------------------------------------------------
if want rest; then
say "REST: the REST template (bench-api) vs Flask + gunicorn -w 2, wrk -t2 -c$CONNS -d${DURATION}s"
busy rest
start bench-api "${rust_env[@]}" PORT=$P_REST "$BIN/bench-api"; pid=$last_pid
wait_port $P_REST bench-api
curl -fsS "http://127.0.0.1:$P_REST/user/1" >/dev/null || die "bench-api: GET /user/1 failed"
wrk_run rest_rust "http://127.0.0.1:$P_REST/user/1"
stop "$pid"

start flask python3 -m gunicorn -w 2 -b "127.0.0.1:$P_FLASK" flask_app:app; pid=$last_pid
wait_port $P_FLASK flask
curl -fsS "http://127.0.0.1:$P_FLASK/user/1" >/dev/null || die "flask: GET /user/1 failed"
wrk_run rest_py "http://127.0.0.1:$P_FLASK/user/1"
stop "$pid"
fi

if want grpc; then
say "REST -> gRPC chain: user-api -> user-service vs Flask (gunicorn -w 2) -> grpcio"
busy chain
start user-service "${rust_env[@]}" PORT=$P_GRPC ADMIN_PORT=$P_GRPC_ADMIN "$BIN/user-service"; svc=$last_pid
wait_port $P_GRPC user-service
start user-api "${rust_env[@]}" PORT=$P_API USER_SERVICE_URL="http://127.0.0.1:$P_GRPC" "$BIN/user-api"; api=$last_pid
wait_port $P_API user-api
curl -fsS "http://127.0.0.1:$P_API/user/1" >/dev/null || die "user-api: GET /user/1 failed"
wrk_run chain_rust "http://127.0.0.1:$P_API/user/1"
stop "$api"

# --- 2. gRPC (user-service is still up) ------------------------------------------------
say "gRPC: user-service vs grpcio, GetUser with $CONNS calls in flight for ${DURATION}s (bench/grpc-load)"
busy grpc
grpc_run grpc_rust "http://127.0.0.1:$P_GRPC"
stop "$svc"

start grpcio python3 "$BENCH/python/grpc_server.py" "127.0.0.1:$P_GRPCIO"; svc=$last_pid
wait_port $P_GRPCIO grpcio
grpc_run grpc_py "http://127.0.0.1:$P_GRPCIO"
start flask-chain env USER_SERVICE_ADDR="127.0.0.1:$P_GRPCIO" \
  python3 -m gunicorn -w 2 -b "127.0.0.1:$P_FLASK_CHAIN" flask_chain:app; api=$last_pid
wait_port $P_FLASK_CHAIN flask-chain
curl -fsS "http://127.0.0.1:$P_FLASK_CHAIN/user/1" >/dev/null || die "flask-chain: GET /user/1 failed"
wrk_run chain_py "http://127.0.0.1:$P_FLASK_CHAIN/user/1"
stop "$api"
stop "$svc"
fi

# --- 3. AMQP -----------------------------------------------------------------------------
if want amqp; then
say "AMQP: $COUNT messages, confirms + acks, prefetch $PREFETCH"
busy amqp
# CPU seconds a process has used; for the broker's share of the consume runs.
TICKS="$(getconf CLK_TCK)"
cpu_of() { awk -v t="$TICKS" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo nan; }
broker_pid="$(pgrep -u rabbitmq -x beam.smp | head -1 || true)"
broker_cpu() { if [ -n "$broker_pid" ]; then cpu_of "$broker_pid"; else echo nan; fi; }
per_msg_us() { python3 -c "import sys; a, b = map(float, sys.argv[1:]); print(f'{(b - a) / $COUNT * 1e6:.0f}')" "$1" "$2" 2>/dev/null || echo nan; }
field() { sed -E "s/.*$1=([0-9.]+).*/\1/" <<<"$2"; }

say "  publishing with contracts::amqp::Publisher to $worker_queue (send + Confirm, 1024 unconfirmed at most)"
out="$("$BIN/amqp-publish" publish --queue "$worker_queue" --count "$COUNT" --window 1024)"
say "  $out"
record "pub_rust_rate=$(field rate "$out")"

info="$("$BIN/amqp-publish" info "$worker_queue")"
[ "$info" = "messages=$COUNT consumers=0" ] || die "$worker_queue holds $info, not the $COUNT messages published"
say "  consuming with email-worker (bench-worker) until worker_messages_processed_total reaches $COUNT"
# The poller is started and has its imports done before the clock starts, and it asks
# over one kept-alive connection: its own CPU, on the cores the worker and the broker
# share, stays out of the timed run as far as it can.
mkfifo "$scratch/go"
python3 - "$P_WORKER_ADMIN" "$COUNT" "$scratch/go" "$worker_queue" >"$scratch/poll.out" <<'PY' &
import http.client, re, sys, time
port, count, go, queue = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
pattern = re.compile(r'^worker_messages_processed_total\{queue="%s"\} (\d+)' % re.escape(queue), re.M)
with open(go) as f:  # blocks until the script opens it, then reads the start time
    t0 = float(f.read())
deadline = time.time() + 120
seen, conn = 0, None
while time.time() < deadline:
    try:
        conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
        m = pattern.search(body)
        seen = int(m.group(1)) if m else 0
    except (OSError, http.client.HTTPException):
        conn = None
    if seen >= count:
        seconds = time.time() - t0
        print(f"messages={seen} seconds={seconds:.3f} rate={count / seconds:.0f}")
        sys.exit(0)
    time.sleep(0.01)
print(f"timeout: processed={seen}")
sys.exit(1)
PY
poller=$!
pids+=("$poller")
exec 4>"$scratch/go"                  # returns once the poller is ready to read
b0="$(broker_cpu)"
t0=$(date +%s.%N)
echo "$t0" >&4
exec 4>&-                             # closed before the worker starts, which would inherit it
start email-worker "${rust_env[@]}" ADMIN_PORT=$P_WORKER_ADMIN BENCH_QUEUE="$worker_queue" "$BIN/bench-worker"; worker=$last_pid
wait "$poller" && polled=0 || polled=$?
out="$(cat "$scratch/poll.out")"
[ "$polled" = 0 ] || { cat "$scratch/email-worker.log" >&2; die "email-worker: $out"; }
b1="$(broker_cpu)"; wcpu="$(cpu_of "$worker")"
out="$out cpu_s=$wcpu"
say "  $out"
record "con_rust_rate=$(field rate "$out")" "con_rust_cpu=$(per_msg_us 0 "$wcpu")" "con_rust_broker=$(per_msg_us "$b0" "$b1")"
stop "$worker"
left="$("$BIN/amqp-publish" info "$worker_queue")"
[ "$left" = "messages=0 consumers=0" ] || say "  WARNING: $worker_queue after the run: $left"
"$BIN/amqp-publish" delete "$worker_queue" >/dev/null

say "  extra: contracts::amqp::Publisher::publish from 32 tasks (one shared Publisher), queue $rust_queue"
out="$("$BIN/amqp-publish" publish --queue "$rust_queue" --count "$COUNT" --tasks 32)"
"$BIN/amqp-publish" delete "$rust_queue" >/dev/null
say "  $out"
record "pub32_rust_rate=$(field rate "$out")"

pika() { # pika PHASE: runs one phase of pika_bench.py, prints its figures line
  python3 "$BENCH/python/pika_bench.py" "$1" "$py_queue" "$COUNT" "$PREFETCH" >/dev/null 2>"$scratch/pika.out" \
    || { cat "$scratch/pika.out" >&2; die "pika_bench.py $1 failed"; }
  grep -E "^$1 " "$scratch/pika.out"
}
say "  pika: publish with confirms (BlockingConnection), queue $py_queue"
out="$(pika publish)"; say "  $out"
record "pub_py_rate=$(field rate "$out")" "pub32_py_rate=$(field rate "$out")"
say "  pika: consume with acks"
b0="$(broker_cpu)"; out="$(pika consume)"; b1="$(broker_cpu)"; say "  $out"
record "con_py_rate=$(field rate "$out")" "con_py_cpu=$(per_msg_us 0 "$(field cpu_s "$out")")" "con_py_broker=$(per_msg_us "$b0" "$b1")"
pika delete >/dev/null || true
fi

# --- table -------------------------------------------------------------------------------
say "done in $((SECONDS - started))s"
python3 - "$RESULTS" "$DURATION" "$CONNS" "$COUNT" "$PREFETCH" <<'PY'
import sys
results, duration, conns, count, prefetch = sys.argv[1], *sys.argv[2:]
r = {}
for line in open(results):
    for item in line.split():
        k, _, v = item.partition("=")
        r[k] = v

def num(key):
    try:
        return float(r[key])
    except (KeyError, ValueError):
        return None

rows = [
    # scenario, msvc key, python key, unit, target ratio (None: no target)
    ("REST template GET /user/1 (vs gunicorn -w 2)", "rest_rust", "rest_py", "req/s", 20),
    ("REST->gRPC chain GET /user/1 (vs Flask->grpcio)", "chain_rust", "chain_py", "req/s", None),
    ("gRPC GetUser, 32 in flight (vs grpcio)", "grpc_rust", "grpc_py", "calls/s", 9),
    ("AMQP publish, confirms, pipelined* (vs pika)", "pub_rust", "pub_py", "msg/s", 12),
    ("AMQP publish, confirms, 32 tasks* (vs pika)", "pub32_rust", "pub32_py", "msg/s", None),
    (f"AMQP consume, acks, prefetch {prefetch} (vs pika)", "con_rust", "con_py", "msg/s", 6),
]

def cell(key, unit):
    rate = num(key + "_rps") if num(key + "_rps") is not None else num(key + "_rate")
    if rate is None:
        return r.get(key + "_note", "n/a")
    text = f"{rate:,.0f} {unit}"
    p99 = num(key + "_p99")
    if p99 is not None:
        text += f", p99 {p99:.2f} ms"
    if key + "_note" in r:
        text += f" ({r[key + '_note']})"
    return text

def rate(key):
    return num(key + "_rps") if num(key + "_rps") is not None else num(key + "_rate")

table = [("scenario", "msvc", "Python", "ratio", "target", "met")]
for name, rk, pk, unit, target in rows:
    a, b = rate(rk), rate(pk)
    ratio = f"{a / b:.1f}x" if a and b else "n/a"
    tgt = f">= {target}x" if target else "-"
    met = "-" if not target else ("n/a" if not (a and b) else ("yes" if a / b >= target else "NO"))
    table.append((name, cell(rk, unit), cell(pk, unit), ratio, tgt, met))
widths = [max(len(row[i]) for row in table) for i in range(6)]
print()
print(f"msvc services vs the article's Python versions ({duration}s per HTTP/gRPC run, "
      f"{conns} connections / calls in flight, {count} AMQP messages)")
print("Client and server share this machine's cores "
      f"({__import__('os').cpu_count()}); one scenario runs at a time.")
print()
for i, row in enumerate(table):
    print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
    if i == 0:
        print("  ".join("-" * w for w in widths))
print()
print("* pika's BlockingConnection waits for each confirm before the next publish. The Publisher")
print("  row: Publisher::send with up to 1024 messages awaiting their Confirm, each one checked;")
print("  32 tasks: Publisher::publish (awaits the confirm) from 32 tasks sharing one Publisher.")
if "con_rust_cpu" in r and "con_py_cpu" in r:
    print(f"Consume, CPU per message: email-worker {r['con_rust_cpu']} us, pika {r['con_py_cpu']} us; "
          f"RabbitMQ meanwhile {r.get('con_rust_broker', 'nan')} us / {r.get('con_py_broker', 'nan')} us "
          "(one classic queue is one Erlang process: about one core at most).")
busy = {k[5:]: int(v) for k, v in r.items() if k.startswith("busy_")}
print("CPU busy with other processes in the second before each scenario: "
      + ", ".join(f"{k} {v}%" for k, v in busy.items())
      + ("  <- WARNING: a busy machine lowers and skews the figures" if any(v >= 20 for v in busy.values()) else ""))
print("Rust: release builds, RUST_LOG=info LOG_FORMAT=json, stdout to /dev/null, metrics and health on.")
print("Python: gunicorn sync workers; grpcio ThreadPoolExecutor(10); pika BlockingConnection.")
PY
