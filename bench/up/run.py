"""One supervisor's run for bench/up.sh; prints `key=value` lines on stdout.

    python3 run.py msvc|honcho|foreman|direct WORKDIR

The same process set for every supervisor (the commands are identical shell lines):

  web1..web4  small HTTP servers (web.py) that sleep 0.25 / 0.5 / 1.0 / 1.5 s, then listen
  stubborn    the same server, started with SIGTERM and SIGINT ignored (`trap '' TERM INT`)
  forker      the same server, after starting a grandchild in a session of its own (setsid)
  logger      writes LINES numbered lines when told to (logger.py), then idles

No dependencies between them: every supervisor starts all at once. Every process of the set
carries a tag (an exported variable and an argument), so that leftovers can be found in /proc.

Phases:
  1. ready      from the supervisor's start until every port answers GET / with 200 (this
                script polls every 10 ms, the same poller for all)
  2. idle       IDLE seconds later: CPU time of the supervisor's own processes (the process
                tree under the supervisor's pid minus the tagged set) over IDLE seconds, and
                their summed VmRSS (and PSS, shared pages counted once)
  3. logs       one byte to the logger's FIFO, then LINES lines; counted on the
                supervisor's stdout (a pipe read by this script), every number checked;
                once written one line per write, once in 64 KiB writes
  4. SIGINT     to the supervisor's pid (what Ctrl-C sends; node-foreman handles SIGINT
                only); time until it exits, then processes of the set still alive
  5. SIGKILL    a second start (a second ready figure), then SIGKILL of the supervisor:
                processes of the set still alive 1 s and KILL_WAIT s later

`direct` runs the logger alone into the pipe, for the producer's own rate.
"""
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LINES = int(os.environ.get("LINES", "200000"))
IDLE = float(os.environ.get("IDLE", "10"))
GRACE = 5  # s: honcho's fixed KILL_WAIT; msvc's shutdown_grace is set to the same
STOP_TIMEOUT = float(os.environ.get("STOP_TIMEOUT", "20"))
KILL_WAIT = float(os.environ.get("KILL_WAIT", "10"))
TICKS = os.sysconf("SC_CLK_TCK")
PY = sys.executable

sup, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
tag = f"msvcbench{os.getpid()}x{random.randrange(1 << 30)}"
results = []


def record(key, value):
    results.append(f"{key}={value}")
    print(f"{key}={value}", flush=True)


def say(msg):
    print(f"[{time.strftime('%H:%M:%S')}]   {sup}: {msg}", file=sys.stderr, flush=True)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# --- the process set ------------------------------------------------------------------------

def commands(ports, fifo):
    web = shlex.quote(os.path.join(HERE, "web.py"))
    logger = shlex.quote(os.path.join(HERE, "logger.py"))
    pre = f"export MSVC_BENCH_TAG={tag}; "
    cmds = {}
    for i, delay in enumerate([0.25, 0.5, 1.0, 1.5]):
        cmds[f"web{i + 1}"] = f"{pre}exec {PY} {web} {ports[i]} {delay} web{i + 1} {tag}"
    cmds["stubborn"] = f"{pre}trap '' TERM INT; exec {PY} {web} {ports[4]} 0.5 stubborn {tag}"
    cmds["forker"] = (f"{pre}setsid {PY} -c 'import time; time.sleep(10**6)' grandchild {tag} & "
                      f"exec {PY} {web} {ports[5]} 0.5 forker {tag}")
    cmds["logger"] = f"{pre}exec {PY} {logger} {LINES} {fifo} {ports[6]} {tag}"
    return cmds


def write_workspace(d, cmds, ports):
    os.makedirs(d, exist_ok=True)
    # msvc: `process` services; a port makes msvc probe it with a TCP connect.
    toml = [f'[workspace]\nname = "bench"\nshutdown_grace = "{GRACE}s"\n']
    port_of = dict(zip(["web1", "web2", "web3", "web4", "stubborn", "forker", "logger"], ports))
    for name, cmd in cmds.items():
        toml.append(f"\n[services.{name}]\nkind = \"process\"\n")
        toml.append(f"port = {port_of[name]}\n")
        toml.append(f"command = '''{cmd}'''\n")
    with open(os.path.join(d, "services.toml"), "w") as f:
        f.write("".join(toml))
    # honcho and node-foreman: a Procfile of the same commands, in the order msvc starts
    # them (by name), so that the slowest server is started last by all three.
    with open(os.path.join(d, "Procfile"), "w") as f:
        for name, cmd in sorted(cmds.items()):
            f.write(f"{name}: {cmd}\n")


def launch(d):
    # As a user starts them (PYTHONUNBUFFERED unset: honcho flushes each line itself).
    env = dict(os.environ, NO_COLOR="1")
    env.pop("PYTHONUNBUFFERED", None)
    argv = {
        "msvc": [os.environ.get("MSVC", "msvc"), "up"],
        # python -m: no pyenv shim or entry-point script in between. Its printer flushes
        # every line itself.
        "honcho": [PY, "-m", "honcho", "--no-colour", "start"],
        "foreman": ["nf", "start", "-j", "Procfile"],
    }[sup]
    return subprocess.Popen(argv, cwd=d, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=open(os.path.join(d, "stderr.log"), "ab"),
                            start_new_session=True)


# --- /proc ------------------------------------------------------------------------------------

def procs():
    """pid -> (ppid, tagged, state, cmdline) of every process we can read."""
    out = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                stat = f.read()
            fields = stat[stat.rfind(")") + 2:].split()
            with open(f"/proc/{e}/cmdline", "rb") as f:
                cmdline = f.read()
            try:
                with open(f"/proc/{e}/environ", "rb") as f:
                    environ = f.read()
            except OSError:
                environ = b""
        except OSError:
            continue
        tagged = tag.encode() in cmdline or tag.encode() in environ
        out[int(e)] = (int(fields[1]), tagged, fields[0], cmdline.replace(b"\0", b" ").decode(errors="replace").strip())
    return out


def alive(state):
    return state not in ("Z", "X")


def tagged_alive():
    return {pid: p[3] for pid, p in procs().items() if p[1] and alive(p[2])}


def supervisor_pids(root):
    """The supervisor's own processes: its tree minus the tagged set and what is under it."""
    ps = procs()
    children = {}
    for pid, p in ps.items():
        children.setdefault(p[0], []).append(pid)
    own, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid not in ps or ps[pid][1]:
            continue
        own.append(pid)
        todo.extend(children.get(pid, []))
    return own


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rfind(")") + 2:].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return None


def kib_field(path, key):
    """The kB figure of the line starting with `key` in a /proc file, 0 if unreadable."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid):
    return kib_field(f"/proc/{pid}/status", "VmRSS:")


def pss_kib(pid):
    """Proportional set size: shared pages (honcho's forked workers) counted once overall."""
    return kib_field(f"/proc/{pid}/smaps_rollup", "Pss:")


def name_of(cmdline):
    for role in ["web1", "web2", "web3", "web4", "stubborn", "forker", "grandchild"]:
        if f" {role} " in f" {cmdline} ":
            return role
    if "logger.py" in cmdline:
        return "logger"
    return "sh" if cmdline.startswith("/bin/sh") or cmdline.startswith("sh ") else cmdline[:30]


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# --- output reader ------------------------------------------------------------------------------

NUM = re.compile(rb"bench-log (\d+)")


class Reader(threading.Thread):
    """Reads the supervisor's stdout; checks the numbered lines as they come."""

    def __init__(self, pipe, log_path):
        super().__init__(daemon=True)
        self.fd = pipe.fileno()
        self.log = open(log_path, "wb")
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        """For the next burst (the logger numbers each from 0)."""
        self.next = 0          # the number expected next
        self.seen = 0          # numbered lines seen
        self.out_of_order = 0  # numbered lines not equal to the one expected
        self.last_at = None    # when the last numbered line arrived
        self.first_at = None
        self.distinct = set()

    def run(self):
        rest = b""
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            now = time.perf_counter()
            if len(chunk) < 1 << 14:
                # Let small writes gather: reading each one as it comes would make this
                # script, not the supervisor, the bottleneck (up to 16 MiB/s this way).
                time.sleep(0.001)
            self.log.write(chunk)
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            found = NUM.findall(data[:cut])
            if not found:
                continue
            nums = list(map(int, found))
            with self.lock:
                if self.first_at is None:
                    self.first_at = now
                self.last_at = now
                self.seen += len(nums)
                if nums == list(range(self.next, self.next + len(nums))):
                    self.next += len(nums)
                    self.distinct.update(range(nums[0], nums[-1] + 1))
                else:
                    for n in nums:
                        if n != self.next:
                            self.out_of_order += 1
                        self.next = n + 1
                        self.distinct.add(n)
        self.log.flush()


# --- phases ---------------------------------------------------------------------------------------

def http_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.settimeout(2)
            s.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return s.recv(12)[9:12] == b"200"
    except OSError:
        return False


def wait_ready(ports, started, child, timeout=60):
    pending = set(ports)
    while pending and time.perf_counter() - started < timeout:
        if child.poll() is not None:
            return None
        pending = {p for p in pending if not http_ok(p)}
        if pending:
            time.sleep(0.01)
    return None if pending else time.perf_counter() - started


def one_start(d, cmds, ports):
    started = time.perf_counter()
    child = launch(d)
    reader = Reader(child.stdout, os.path.join(d, f"stdout.{int(time.time() * 1000)}.log"))
    reader.start()
    ready = wait_ready(ports, started, child)
    if ready is None:
        tail = open(os.path.join(d, "stderr.log"), "rb").read()[-2000:].decode(errors="replace")
        child.kill()
        kill_all(tagged_alive())
        sys.exit(f"{sup} did not get every port ready (exit {child.poll()}):\n{tail}")
    return child, reader, ready


def direct():
    """The logger alone, writing into a pipe this script reads: the producer's own rate."""
    fifo = os.path.join(work, "go")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    port = free_ports(1)[0]
    child = subprocess.Popen([PY, os.path.join(HERE, "logger.py"), str(LINES), fifo, str(port), tag],
                             stdout=subprocess.PIPE, start_new_session=True)
    reader = Reader(child.stdout, os.path.join(work, "direct.log"))
    reader.start()
    rates = {mode: logs(reader, fifo, mode)["rate"] for mode in "lb"}
    child.kill()
    child.wait()
    return rates


def logs(reader, fifo, mode):
    """One burst: `l` one write per line, `b` 64 KiB writes."""
    with reader.lock:
        reader.reset()
    go = time.perf_counter()
    with open(fifo, "wb") as f:
        f.write(mode.encode())
    # Until every line arrived, or nothing new came for 10 s.
    last_seen, last_change = -1, time.perf_counter()
    while True:
        time.sleep(0.01)
        with reader.lock:
            seen = reader.seen
        if seen >= LINES:
            break
        if seen != last_seen:
            last_seen, last_change = seen, time.perf_counter()
        elif time.perf_counter() - last_change > 10:
            break
    with reader.lock:
        elapsed = (reader.last_at or go) - go
        lost = LINES - len(reader.distinct & set(range(LINES)))
        return {
            "rate": round(len(reader.distinct) / elapsed) if elapsed > 0 else 0,
            "seconds": round(elapsed, 3),
            "lost": lost,
            "dup": reader.seen - len(reader.distinct),
            "disorder": reader.out_of_order,
        }


def main():
    if sup == "direct":
        rates = direct()
        record("direct_log_rate", rates["l"])
        record("direct_blog_rate", rates["b"])
        return

    ports = free_ports(7)  # the six web servers' and the logger's
    d = os.path.join(work, sup)
    fifo = os.path.join(d, "go")
    os.makedirs(d, exist_ok=True)
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    cmds = commands(ports, fifo)
    write_workspace(d, cmds, ports)

    # 1. ready
    child, reader, ready = one_start(d, cmds, ports[:6])
    record(f"{sup}_ready1", f"{ready:.3f}")
    say(f"every port answers after {ready:.2f} s")

    # 2. idle
    time.sleep(min(IDLE, 2))  # let the start-up settle (the slowest server just listened)
    own = supervisor_pids(child.pid)
    t0 = {pid: cpu_ticks(pid) for pid in own}
    w0 = time.perf_counter()
    time.sleep(IDLE)
    wall = time.perf_counter() - w0
    used = sum((cpu_ticks(p) or t0[p]) - t0[p] for p in own if t0[p] is not None)
    rss = sum(rss_kib(p) for p in own)
    pss = sum(pss_kib(p) for p in own)
    ps = procs()
    record(f"{sup}_idle_cpu_pct", f"{100 * used / TICKS / wall:.2f}")
    record(f"{sup}_rss_mib", f"{rss / 1024:.1f}")
    record(f"{sup}_pss_mib", f"{pss / 1024:.1f}")
    record(f"{sup}_procs", len(own))
    kinds = {}
    for p in own:
        if p in ps:
            words = ps[p][3].split()
            name = " ".join([os.path.basename(words[0])] + words[1:2]) if words else "?"
            kinds[name] = kinds.get(name, 0) + 1
    say(f"idle: {100 * used / TICKS / wall:.2f}% of a core, {rss / 1024:.1f} MiB RSS ({pss / 1024:.1f} PSS) in {len(own)} "
        f"process(es): {', '.join(f'{k} x{v}' if v > 1 else k for k, v in kinds.items())}")

    # 3. logs
    for mode, key, how in [("l", "log", "a write per line"), ("b", "blog", "64 KiB writes")]:
        r = logs(reader, fifo, mode)
        for k, v in r.items():
            record(f"{sup}_{key}_{k}", v)
        say(f"logs, {how}: {r['rate']:,} lines/s over {r['seconds']} s, lost {r['lost']}, "
            f"duplicated {r['dup']}, out of order {r['disorder']}")
    record(f"{sup}_rss_after_logs_mib", f"{sum(rss_kib(p) for p in own) / 1024:.1f}")

    # 4. SIGINT
    os.kill(child.pid, signal.SIGINT)
    t = time.perf_counter()
    try:
        child.wait(timeout=STOP_TIMEOUT)
        stop = time.perf_counter() - t
        record(f"{sup}_stop_s", f"{stop:.2f}")
    except subprocess.TimeoutExpired:
        stop = None
        record(f"{sup}_stop_s", f">{STOP_TIMEOUT:.0f}")
        child.kill()
        child.wait()
    time.sleep(0.5)
    left = tagged_alive()
    helpers = [p for p in own if p != child.pid and p in procs() and alive(procs()[p][2])]
    record(f"{sup}_stop_left", len(left))
    record(f"{sup}_stop_left_names", ",".join(sorted(name_of(c) for c in left.values())) or "-")
    record(f"{sup}_stop_helpers_left", len(helpers))
    say(f"SIGINT: {'exited after %.2f s' % stop if stop is not None else 'still running after %.0f s (killed)' % STOP_TIMEOUT}; "
        f"left: {len(left)} {sorted(name_of(c) for c in left.values())}"
        + (f", {len(helpers)} of its own processes" if helpers else ""))
    kill_all(list(left) + helpers)
    time.sleep(0.3)

    # 5. SIGKILL
    child, reader, ready = one_start(d, cmds, ports[:6])
    record(f"{sup}_ready2", f"{ready:.3f}")
    time.sleep(1)  # the forker's grandchild has started
    own = supervisor_pids(child.pid)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    t = time.perf_counter()
    time.sleep(1)
    left1 = tagged_alive()
    gone_at = None
    while time.perf_counter() - t < KILL_WAIT:
        if not tagged_alive():
            gone_at = time.perf_counter() - t
            break
        time.sleep(0.1)
    left2 = tagged_alive()
    helpers = [p for p in own if p != child.pid and p in procs() and alive(procs()[p][2])]
    record(f"{sup}_kill_left_1s", len(left1))
    record(f"{sup}_kill_left_late", len(left2))
    record(f"{sup}_kill_gone_s", f"{gone_at:.1f}" if gone_at is not None else "never")
    record(f"{sup}_kill_left_names", ",".join(sorted(name_of(c) for c in left2.values())) or "-")
    say(f"SIGKILL: left after 1 s: {len(left1)}; after {KILL_WAIT:.0f} s: {len(left2)} "
        f"{sorted(name_of(c) for c in left2.values())}" + (f", {len(helpers)} of its own processes" if helpers else ""))
    kill_all(list(left2) + helpers)


try:
    main()
finally:
    # Whatever happened, nothing of this run keeps running.
    kill_all(tagged_alive())
