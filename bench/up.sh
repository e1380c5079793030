#!/usr/bin/env bash
# `msvc up` against honcho (PyPI) and node-foreman (npm `foreman`, the `nf` command)
# supervising the same processes (bench/up/run.py has the details):
#
#   web1..web4  small HTTP servers that sleep 0.25-1.5 s before they listen
#   stubborn    one that ignores SIGTERM and SIGINT
#   forker      one that leaves a grandchild in a session of its own (setsid)
#   logger      writes LINES numbered lines as fast as it can when told to
#
# and prints, side by side: time until every port answers, the supervisor's own CPU and
# RSS while idle, log lines per second on its stdout (every line checked: none lost,
# duplicated or reordered), and shutdown on SIGINT and on SIGKILL with the processes of
# the set left running. No service depends on another, so msvc's health gating plays no
# part: all three start everything at once.
#
#   bash bench/up.sh                          # about 3 min; installs honcho / foreman if missing
#   LINES=50000 IDLE=5 bash bench/up.sh       # quicker, rougher
#   MSVC=path/to/msvc bash bench/up.sh        # another msvc build
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export LINES="${LINES:-200000}"        # numbered log lines
export IDLE="${IDLE:-10}"              # seconds of idle sampling
export STOP_TIMEOUT="${STOP_TIMEOUT:-20}"  # seconds a supervisor gets to exit after SIGINT
export KILL_WAIT="${KILL_WAIT:-10}"    # seconds to watch for leftovers after a SIGKILL
IDLE_WAIT="${IDLE_WAIT:-30}"           # seconds to wait for other processes to quieten

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh  # the working directory is the repository's root
die() { say "error: $*"; exit 1; }

# --- tools -----------------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is needed"
if ! python3 -c 'import honcho' 2>/dev/null; then
  say "installing honcho (pip)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore honcho \
    || die "cannot install honcho: python3 -m pip install honcho"
fi
if ! command -v nf >/dev/null; then
  say "installing node-foreman (npm install -g foreman)"
  command -v npm >/dev/null || die "node-foreman needs node and npm (apt-get install -y nodejs npm)"
  npm install -g --silent foreman >/dev/null || die "cannot install node-foreman: npm install -g foreman"
fi

work="$(mktemp -d /tmp/msvc-bench-up.XXXXXX)"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

if [ -n "${MSVC:-}" ]; then
  say "using MSVC=$MSVC"
else
  say "building msvc (cargo build --release)"
  CARGO_TARGET_DIR="$ROOT/target" cargo build --release --quiet || die "cannot build msvc"
  MSVC="$ROOT/target/release/msvc"
fi
export MSVC
versions="msvc $("$MSVC" --version | awk '{print $2}'), honcho $(python3 -m honcho --version | awk '{print $2}'), node-foreman $(nf --version), $(python3 --version), node $(node --version)"
say "$versions"

# busy NAME: waits for a quiet machine before NAME and records how busy it was.
busy() {
  quiet_machine "$1"
  echo "busy_$1=$BUSY" >>"$work/results"
}

: >"$work/results"
started=$SECONDS
say "the logger alone into a pipe ($LINES lines)"
python3 bench/up/run.py direct "$work" >>"$work/results"
for sup in msvc honcho foreman; do
  say "$sup"
  busy "$sup"
  python3 bench/up/run.py "$sup" "$work" >>"$work/results"
done
say "done in $((SECONDS - started))s"

# --- table ---------------------------------------------------------------------------------
python3 - "$work/results" "$versions" <<'PY'
import os, sys
r = {}
for line in open(sys.argv[1]):
    k, _, v = line.strip().partition("=")
    if k:
        r[k] = v
sups = ["msvc", "honcho", "foreman"]
lines, idle, stop_timeout, kill_wait = (os.environ[k] for k in ["LINES", "IDLE", "STOP_TIMEOUT", "KILL_WAIT"])

def g(s, k, fmt=None):
    v = r.get(f"{s}_{k}")
    if v is None:
        return "n/a"
    return fmt(v) if fmt else v

def stop(s):
    v = g(s, "stop_s")
    return f"hangs (killed after {v[1:]} s)" if v.startswith(">") else f"{v} s"

def left(s, n, names):
    count = g(s, n)
    if count in ("0", "n/a"):
        return count
    if count == "8":
        return "8 (all)"
    return f"{count} ({g(s, names).replace(',', ', ')})"

def gone(s):
    v = g(s, "kill_gone_s")
    return "never" if v == "never" else f"{v} s"

rows = [
    ("ready: every port answers (s)", lambda s: f"{float(g(s, 'ready1')):.2f} / {float(g(s, 'ready2')):.2f}"),
    (f"idle CPU of the supervisor, {idle} s (% of a core)", lambda s: g(s, "idle_cpu_pct")),
    ("idle RSS of the supervisor (MiB)", lambda s: f"{g(s, 'rss_mib')} in {g(s, 'procs')} proc"),
    ("  PSS (shared pages counted once)", lambda s: g(s, "pss_mib")),
    ("RSS after the log burst (MiB)", lambda s: g(s, "rss_after_logs_mib")),
    (f"log lines/s, a write per line ({int(lines):,})", lambda s: f"{int(g(s, 'log_rate')):,}"),
    ("  lost / duplicated / out of order", lambda s: f"{g(s, 'log_lost')} / {g(s, 'log_dup')} / {g(s, 'log_disorder')}"),
    (f"log lines/s, 64 KiB writes ({int(lines):,})", lambda s: f"{int(g(s, 'blog_rate')):,}"),
    ("  lost / duplicated / out of order", lambda s: f"{g(s, 'blog_lost')} / {g(s, 'blog_dup')} / {g(s, 'blog_disorder')}"),
    ("SIGINT: time to exit", stop),
    ("  processes of the set left", lambda s: left(s, "stop_left", "stop_left_names")),
    ("  supervisor's own processes left", lambda s: g(s, "stop_helpers_left")),
    ("SIGKILL: processes left after 1 s", lambda s: g(s, "kill_left_1s")),
    (f"  left after {kill_wait} s", lambda s: left(s, "kill_left_late", "kill_left_names")),
    ("  all gone after", gone),
]
table = [("", "msvc up", "honcho", "node-foreman")]
for name, f in rows:
    cells = []
    for s in sups:
        try:
            cells.append(f(s))
        except (ValueError, KeyError):
            cells.append("n/a")
    table.append((name, *cells))
w = [max(len(row[i]) for row in table) for i in range(4)]
print()
print(f"msvc up vs honcho vs node-foreman, the same 8 processes ({os.cpu_count()} cores)")
print(sys.argv[2])
print()
for i, row in enumerate(table):
    print("  ".join(c.ljust(w[j]) if j == 0 else c.rjust(w[j]) for j, c in enumerate(row)))
    if i == 0:
        print("  ".join("-" * x for x in w))
print()
print("ready: from the supervisor's exec until all 6 HTTP ports answer 200 (the slowest server")
print("  sleeps 1.5 s first); first start / the start before the SIGKILL. No dependencies.")
print("idle: utime+stime, VmRSS and PSS of the supervisor's own processes (msvc: msvc + its reaper;")
print("  honcho: its main process + one per service; node-foreman: node), services excluded.")
print("logs: lines/s from the go signal to the last line on the supervisor's stdout (a pipe); the")
print(f"  logger alone into a pipe: {int(r.get('direct_log_rate', 0)):,} lines/s a write per line, "
      f"{int(r.get('direct_blog_rate', 0)):,} in 64 KiB writes.")
print("SIGINT: sent to the supervisor's pid only; 'left' counts the set's processes alive 0.5 s after")
print("  it exited (or was killed); stubborn ignores SIGTERM and SIGINT, forker's grandchild is setsid.")
busy = {k[5:]: int(v) for k, v in r.items() if k.startswith("busy_")}
print("CPU busy with other processes in the second before each: "
      + ", ".join(f"{k} {v}%" for k, v in busy.items())
      + ("  <- WARNING: a busy machine skews the figures" if any(v >= 20 for v in busy.values()) else ""))
PY
