#!/usr/bin/env bash
# Times `msvc check` on a generated workspace of N services (default 1,000) and 1,000
# protos against `buf build` and `buf lint` on the same protos, and shows that check's
# time grows linearly with the size of the workspace.
#
# The workspace is written directly (no `msvc new` per service): services.toml, one
# proto per gRPC service importing one shared-types proto each (1,000 protos for 1,000
# services), a Dockerfile per service, an openapi.yaml per REST service; then one
# `msvc sync` writes the generated files (compose, contracts, worker routes), so the
# workspace checks clean. Nothing is built.
#
#   bash bench/check.sh              # needs python3 and buf (npm install -g @bufbuild/buf)
#   N=2000 RUNS=5 bash bench/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-1000}"
RUNS="${RUNS:-5}"

command -v buf >/dev/null || { echo "buf not found: npm install -g @bufbuild/buf" >&2; exit 2; }
cargo build --release --quiet
MSVC="$PWD/target/release/msvc"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# gen DIR N: writes a workspace of N services (half gRPC, 3/10 REST, 2/10 workers),
# N protos, and the relations between them (no cycles, every queue has both ends).
gen() {
  python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
def w(rel, text):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)

kinds = ["grpc"] * 5 + ["rest"] * 3 + ["worker"] * 2
names = [f"{kinds[i % 10]}-{i:04d}" for i in range(n)]
grpc = [s for s in names if s.startswith("grpc")]
rest = [s for s in names if s.startswith("rest")]
workers = [s for s in names if s.startswith("worker")]
snake = lambda s: s.replace("-", "_")
pascal = lambda s: "".join(p.capitalize() for p in s.split("-"))

dockerfile = """# syntax=docker/dockerfile:1
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin {name} && cp target/release/{name} /usr/local/bin/{name}

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/{name} /usr/local/bin/{name}
USER nonroot:nonroot
HEALTHCHECK --interval=10s --timeout=5s CMD ["/usr/local/bin/{name}", "--healthcheck"]
ENTRYPOINT ["/usr/local/bin/{name}"]
"""
openapi = """openapi: 3.0.3
info: {{title: {name}, version: 0.1.0}}
paths:
  /item/{{id}}:
    get:
      operationId: getItem
      parameters:
        - {{name: id, in: path, required: true, schema: {{type: integer, format: int64}}}}
      responses:
        "200":
          description: The item.
          content: {{application/json: {{schema: {{$ref: "#/components/schemas/Item"}}}}}}
components:
  schemas:
    Item:
      type: object
      required: [id, name]
      properties:
        id: {{type: integer, format: int64}}
        name: {{type: string}}
"""
m = ['[workspace]\nname = "bench"\ntemplate_version = 1\n\n[broker]\nkind = "rabbitmq"\n'
     'url = "amqp://guest:guest@127.0.0.1:5672/%2f"\n']
admin = 9100
protos = 0
for i, s in enumerate(grpc):
    t = f"t{i:04d}"
    w(f"proto/types/{t}/v1/{t}.proto",
      f'syntax = "proto3";\n\npackage types.{t}.v1;\n\n// Meta is shared metadata.\n'
      f'message Meta {{\n  string owner = 1;\n  int64 created_at = 2;\n  repeated string tags = 3;\n}}\n')
    w(f"proto/{snake(s)}/v1/{snake(s)}.proto",
      f'syntax = "proto3";\n\npackage {snake(s)}.v1;\n\nimport "types/{t}/v1/{t}.proto";\n\n'
      f'// {pascal(s)}Service serves items.\nservice {pascal(s)}Service {{\n'
      f'  rpc GetItem(GetItemRequest) returns (Item);\n'
      f'  rpc ListItems(ListItemsRequest) returns (stream Item);\n}}\n\n'
      f'message GetItemRequest {{\n  int64 id = 1;\n}}\n\n'
      f'message ListItemsRequest {{\n  int32 page_size = 1;\n  string page_token = 2;\n}}\n\n'
      f'message Item {{\n  int64 id = 1;\n  string name = 2;\n  types.{t}.v1.Meta meta = 3;\n'
      f'  Status status = 4;\n}}\n\n'
      f'enum Status {{\n  STATUS_UNSPECIFIED = 0;\n  STATUS_ACTIVE = 1;\n}}\n')
    protos += 2
    deps = [grpc[i - 10]] if i >= 10 else []
    m.append(f'\n[services.{s}]\nkind = "grpc"\nport = {50051 + i}\nadmin_port = {admin}\n'
             f'proto = "proto/{snake(s)}/v1/{snake(s)}.proto"\n'
             + (f'depends_on = ["{deps[0]}"]\ncalls = ["{deps[0]}/{pascal(deps[0])}Service.GetItem"]\n' if deps else ""))
    admin += 1
queue_of = {}
for i, s in enumerate(rest):
    peers = [grpc[(3 * i) % len(grpc)], grpc[(3 * i + 1) % len(grpc)]] if grpc else []
    calls = [f"{p}/{pascal(p)}Service.GetItem" for p in peers]
    if i > 0:
        peers.append(rest[i - 1])
        calls.append(f"{rest[i - 1]}/GET /item/{{id}}")
    q = f"queue_{i:04d}"
    queue_of[s] = q
    m.append(f'\n[services.{s}]\nkind = "rest"\nport = {8080 + i}\n'
             f'depends_on = [{", ".join(chr(34) + p + chr(34) for p in peers)}]\n'
             f'calls = [{", ".join(chr(34) + c + chr(34) for c in calls)}]\n'
             f'publishes = ["{q}"]\n')
    w(f"services/{s}/openapi.yaml", openapi.format(name=s))
queues = list(queue_of.values())
for i, s in enumerate(workers):
    # Every queue gets a consumer; extra workers share them.
    qs = [queues[j] for j in range(i, len(queues), max(len(workers), 1))] or [queues[i % len(queues)]]
    m.append(f'\n[services.{s}]\nkind = "worker"\nadmin_port = {admin}\n'
             f'consumes = [{", ".join(chr(34) + q + chr(34) for q in qs)}]\n')
    admin += 1
for s in names:
    w(f"services/{s}/Dockerfile", dockerfile.format(name=s))
w("services.toml", "".join(m))
w("Cargo.toml", '[workspace]\nresolver = "3"\nmembers = []\n')
w("buf.yaml", "version: v2\nmodules:\n  - path: proto\nlint:\n  use:\n    - STANDARD\n"
  "  except:\n    - RPC_RESPONSE_STANDARD_NAME\n    - RPC_REQUEST_RESPONSE_UNIQUE\n")
print(f"{n} services, {protos} protos", file=sys.stderr)
PY
}

time_runs() { # command...; prints the median wall time in ms over RUNS runs
  python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
times = []
for _ in range(runs):
    start = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    times.append((time.perf_counter() - start) * 1000)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr.decode()}")
times.sort()
print(f"{times[len(times) // 2]:.0f}")
PY
}

setup() { # DIR N
  gen "$1" "$2"
  "$MSVC" -C "$1" sync -q
  # The generated workspace must check clean, or the timing would be of error reporting.
  "$MSVC" -C "$1" check -q || { echo "the generated workspace does not check clean" >&2; exit 1; }
}

setup "$work/ws" "$N"
protos=$(find "$work/ws/proto" -name '*.proto' | wc -l)
check_ms=$(time_runs "$MSVC" -C "$work/ws" check -q)
build_ms=$(time_runs buf build "$work/ws" -o /dev/null)
lint_ms=$(time_runs buf lint "$work/ws")

echo "msvc check on $N services and $protos protos (median of $RUNS runs, $(nproc) cores)"
printf '  %-12s %8s %10s\n' tool ms "vs check"
python3 - "$check_ms" "$build_ms" "$lint_ms" <<'PY'
import sys
check, build, lint = map(float, sys.argv[1:])
print(f"  {'msvc check':<12} {check:>8.0f} {1:>9.1f}x   (all checks: manifest, protos compiled, calls, queues, drift, Dockerfiles)")
print(f"  {'buf build':<12} {build:>8.0f} {build / check:>9.1f}x")
print(f"  {'buf lint':<12} {lint:>8.0f} {lint / check:>9.1f}x")
PY

# Linearity: the same workspace at a quarter, half and full size (and double).
echo "msvc check by size (median of $RUNS runs)"
printf '  %8s %8s %12s\n' services ms "ms/service"
for size in $((N / 4)) $((N / 2)) "$N" $((N * 2)); do
  setup "$work/s$size" "$size"
  ms=$(time_runs "$MSVC" -C "$work/s$size" check -q)
  python3 -c "import sys; s, ms = int(sys.argv[1]), float(sys.argv[2]); print(f'  {s:>8} {ms:>8.0f} {ms / s:>12.3f}')" "$size" "$ms"
  rm -rf "$work/s$size"
done
