//! `msvc up` with real processes: dependency order behind health checks, prefixed logs,
//! restart with backoff and giving up, clean stops on SIGTERM and SIGINT, nothing left
//! after SIGKILL (a `setsid` grandchild included), a taken port, `status`, `logs` and
//! `restart` from other processes, and the example system against the real `RabbitMQ`.
//!
//! Most tests use `kind = "process"` services (shell and Python), which start in
//! milliseconds and need no build; the example-system test builds into the shared
//! `target/generated`.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::generated::{in_ci, shared_target_dir, tool};
use crate::support::{Scratch, broker_or_skip, broker_reachable, example, free_port, http};

fn msvc() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_msvc"));
    cmd.env("NO_COLOR", "1")
        .env("CARGO_TARGET_DIR", shared_target_dir())
        // The generated workspace is its own: no flags leak in from msvc's build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd
}

/// A running `msvc up`, its output collected as it comes; killed (SIGKILL) when dropped.
struct Up {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    status: Option<ExitStatus>,
}

impl Up {
    fn start(ws: &Path, args: &[&str]) -> Self {
        Self::start_with(ws, args, |_| {})
    }

    /// As `start`, with `adjust` changing the command first (its environment).
    fn start_with(ws: &Path, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Self {
        let mut cmd = msvc();
        adjust(&mut cmd);
        let mut child = cmd
            .arg("up")
            .args(args)
            .current_dir(ws)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("msvc up starts");
        let collect = |pipe: Box<dyn Read + Send>| {
            let text = Arc::new(Mutex::new(String::new()));
            let sink = Arc::clone(&text);
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
            text
        };
        let out = collect(Box::new(child.stdout.take().unwrap()));
        let err = collect(Box::new(child.stderr.take().unwrap()));
        Self {
            child,
            out,
            err,
            status: None,
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }

    fn out(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    fn err(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    fn both(&self) -> String {
        format!("--- stdout:\n{}\n--- stderr:\n{}", self.out(), self.err())
    }

    /// Waits until `ok(stdout, stderr)`, failing with the output so far.
    fn wait_for(&mut self, what: &str, timeout: Duration, ok: impl Fn(&str, &str) -> bool) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if ok(&self.out(), &self.err()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!("msvc up exited ({status}) before {what}\n{}", self.both());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}\n{}", self.both());
    }

    fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signal msvc");
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.status = Some(status);
                // Let the readers take the last output.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("msvc up did not exit within {timeout:?}\n{}", self.both());
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A workspace of `process` services only: no build, no broker.
fn process_workspace(services: &str) -> (Scratch, PathBuf) {
    let s = Scratch::new();
    let ws = s.path().join("shop");
    fs_err::create_dir_all(&ws).unwrap();
    fs_err::write(
        ws.join("services.toml"),
        format!("[workspace]\nname = \"shop\"\nshutdown_grace = \"2s\"\n\n{services}"),
    )
    .unwrap();
    (s, ws)
}

/// Runs msvc (not `up`) in `ws` and returns its output.
fn run(ws: &Path, args: &[&str]) -> std::process::Output {
    msvc()
        .args(args)
        .current_dir(ws)
        .output()
        .expect("msvc runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn status_json(ws: &Path) -> serde_json::Value {
    let out = run(ws, &["status", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status is JSON")
}

/// Whether a process is alive (a zombie is not).
fn alive(pid: i32) -> bool {
    fs_err::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Pids of living processes whose command line is exactly `argv`.
fn pids_running(argv: &[&str]) -> Vec<i32> {
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    fs_err::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| fs_err::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .filter(|pid| alive(*pid))
        .collect()
}

fn wait_until_gone(pids: &[i32], timeout: Duration) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if pids.iter().all(|p| !alive(*p)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<String> = pids
        .iter()
        .filter(|p| alive(**p))
        .map(|p| {
            format!(
                "{p}: {}",
                text(&fs_err::read(format!("/proc/{p}/cmdline")).unwrap_or_default())
                    .replace('\0', " ")
            )
        })
        .collect();
    panic!("processes left running: {left:?}");
}

/// Pids of living processes whose `/proc/PID/{file}` (`cmdline`, `environ`) contains
/// `needle`.
fn pids_with(file: &str, needle: &str) -> Vec<i32> {
    fs_err::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs_err::read(format!("/proc/{pid}/{file}")).is_ok_and(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(needle)
            })
        })
        .filter(|pid| alive(*pid))
        .collect()
}

/// Every pid in `msvc status --format json`, and the reaper's.
fn pids_of_up(status: &serde_json::Value) -> Vec<i32> {
    let mut pids: Vec<i32> = status["up"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["pid"].as_i64())
        .map(|p| i32::try_from(p).unwrap())
        .collect();
    pids.push(i32::try_from(status["up"]["reaper_pid"].as_i64().unwrap()).unwrap());
    pids
}

/// A `python3 -m http.server` on $PORT: a process that listens, as `process` services do.
const SERVE: &str = "exec python3 -u -m http.server $PORT --bind 127.0.0.1";

#[test]
fn up_starts_in_dependency_order_behind_health_checks() {
    // db is slow to listen; app must not start before both replicas accept connections,
    // and it gets both addresses in DB_URL.
    let (_s, ws) = process_workspace(&format!(
        r#"[services.db]
kind = "process"
port = {db}
replicas = 2
command = "sleep 1; echo db up on $PORT; {SERVE}"

[services.app]
kind = "process"
port = {app}
depends_on = ["db"]
env = {{ GREETING = "from the manifest" }}
command = """python3 -c '
import os, socket
urls = os.environ["DB_URL"].split(",")
for u in urls:
    socket.create_connection(("127.0.0.1", int(u.rsplit(":", 1)[1]))).close()
print("app reached", len(urls), "db replicas;", os.environ["GREETING"], os.environ["HOST"], flush=True)
'; {SERVE}"""
"#,
        db = free_port(),
        app = free_port(),
    ));
    fs_err::write(ws.join(".env"), "GREETING=\"from .env\"\nDOTENV_ONLY=yes\n").unwrap();
    let mut up = Up::start(&ws, &[]);
    up.wait_for("every instance ready", Duration::from_secs(30), |_, err| {
        err.contains("Ready all 3 service instances")
    });
    let err = up.err();
    let ready_db = err.find("Ready db.2").max(err.find("Ready db.1")).unwrap();
    let started_app = err.find("Started app").expect("app started");
    assert!(
        ready_db < started_app,
        "app started before db was ready:\n{err}"
    );
    up.wait_for("app's line", Duration::from_secs(10), |out, _| {
        out.contains("app reached")
    });
    let out = up.out();
    // Prefixed, aligned on the longest label (`db.1`), the manifest's env winning over .env.
    assert!(
        out.contains("app  | app reached 2 db replicas; from the manifest 127.0.0.1\n"),
        "{out}"
    );
    assert!(out.contains("db.1 | db up on "), "{out}");
    assert!(out.contains("db.2 | db up on "), "{out}");

    // From another process: status and logs.
    let status = status_json(&ws);
    let instances = status["up"]["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 3, "{status}");
    for i in instances {
        assert_eq!(i["state"], "running", "{status}");
        assert_eq!(i["health"], "healthy", "{status}");
        assert!(alive(i32::try_from(i["pid"].as_i64().unwrap()).unwrap()));
    }
    let ports: Vec<i64> = instances
        .iter()
        .filter_map(|i| i["port"].as_i64())
        .collect();
    let mut unique = ports.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 3, "replicas share a port: {status}");
    let table = run(&ws, &["status"]);
    assert!(
        text(&table.stdout).contains("RESTARTS"),
        "{}",
        text(&table.stdout)
    );
    let logs = run(&ws, &["logs", "app"]);
    assert!(logs.status.success(), "{}", text(&logs.stderr));
    let logs = text(&logs.stdout);
    assert!(logs.contains("app  | app reached 2 db replicas"), "{logs}");
    assert!(!logs.contains("db.1 |"), "{logs}");
    let json_logs = run(&ws, &["logs", "--format", "json", "-n", "0"]);
    let first: serde_json::Value = serde_json::from_str(
        text(&json_logs.stdout)
            .lines()
            .find(|l| l.contains("db up on"))
            .expect("a db line"),
    )
    .expect("one JSON object per line");
    assert_eq!(first["service"], "db");

    // SIGTERM: stopped in reverse dependency order, exit code 0, nothing left.
    let pids = pids_of_up(&status);
    up.signal(Signal::SIGTERM);
    let code = up.wait_exit(Duration::from_secs(20));
    assert_eq!(code.code(), Some(0), "{}", up.both());
    let err = up.err();
    let stopped_app = err.find("Stopped app").expect("app stopped");
    let stopped_db = err.find("Stopped db.1").expect("db stopped");
    assert!(stopped_app < stopped_db, "db stopped before app:\n{err}");
    wait_until_gone(&pids, Duration::from_secs(5));
    let after = run(&ws, &["status"]);
    assert_eq!(after.status.code(), Some(2));
    assert!(
        text(&after.stderr).contains("no `msvc up` is running"),
        "{}",
        text(&after.stderr)
    );
}

#[test]
fn up_restarts_a_crashing_service_with_backoff_then_gives_up() {
    let (_s, ws) = process_workspace(&format!(
        r#"[services.crashy]
kind = "process"
port = {crashy}
command = "echo crash number $$; exit 3"

[services.steady]
kind = "process"
port = {steady}
command = "{SERVE}"
"#,
        crashy = free_port(),
        steady = free_port(),
    ));
    let mut up = Up::start(&ws, &["--format", "json"]);
    up.wait_for(
        "msvc to give up on crashy",
        Duration::from_secs(40),
        |out, _| out.contains("\"event\":\"gave_up\""),
    );
    let out = up.out();
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    // Delays grow: 0.5 s, 1 s, 2 s, 4 s, with jitter.
    let delays: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == "crashed")
        .map(|e| {
            let m = e["message"].as_str().unwrap();
            let after = m.split("restarting in ").nth(1).unwrap();
            after.split('s').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(delays.len(), 4, "{out}");
    for pair in delays.windows(2) {
        assert!(pair[1] > pair[0] * 1.3, "no backoff: {delays:?}");
    }
    let gave_up = events.iter().find(|e| e["event"] == "gave_up").unwrap();
    let message = gave_up["message"].as_str().unwrap();
    assert_eq!(message.matches("| crash number").count(), 5, "{message}");
    let crash_lines = events
        .iter()
        .filter(|e| e["service"] == "crashy" && e["stream"] == "stdout")
        .count();
    assert_eq!(crash_lines, 5, "{out}");

    let status = status_json(&ws);
    let state = |name: &str| {
        status["up"]["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["service"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(state("crashy")["state"], "failed", "{status}");
    assert_eq!(state("crashy")["restarts"], 4, "{status}");
    assert_eq!(state("steady")["state"], "running", "{status}");

    // A service failed: the exit code says so.
    up.signal(Signal::SIGINT);
    assert_eq!(up.wait_exit(Duration::from_secs(20)).code(), Some(1));
}

#[test]
fn up_leaves_nothing_running_when_killed() {
    // One service ignores SIGTERM, one leaves a grandchild in a session of its own.
    let marker = format!("{}", 4_000_000 + std::process::id());
    let (_s, ws) = process_workspace(&format!(
        r#"[services.stubborn]
kind = "process"
port = {stubborn}
shutdown_grace = "1s"
command = "trap '' TERM; {SERVE}"

[services.forker]
kind = "process"
port = {forker}
command = "setsid sleep {marker} & {SERVE}"
"#,
        stubborn = free_port(),
        forker = free_port(),
    ));
    for signal in [Signal::SIGKILL, Signal::SIGINT] {
        let mut up = Up::start(&ws, &[]);
        up.wait_for("every instance ready", Duration::from_secs(30), |_, err| {
            err.contains("Ready all 2 service instances")
        });
        let mut grandchild = Vec::new();
        let start = Instant::now();
        while grandchild.is_empty() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
            grandchild = pids_running(&["sleep", &marker]);
        }
        assert_eq!(grandchild.len(), 1, "the setsid grandchild is running");
        let mut pids = pids_of_up(&status_json(&ws));
        pids.extend(&grandchild);
        up.signal(signal);
        let status = up.wait_exit(Duration::from_secs(20));
        if signal == Signal::SIGINT {
            assert_eq!(status.code(), Some(0), "{}", up.both());
            assert!(
                up.err()
                    .contains("Stopped stubborn (was killed by SIGKILL)"),
                "{}",
                up.both()
            );
            // The closing line says how long the stop took (stubborn's grace, 1 s), not
            // how long msvc ran.
            let err = up.err();
            let took: f64 = err
                .split("Stopped all services in ")
                .nth(1)
                .and_then(|rest| rest.split('s').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no closing line\n{}", up.both()));
            assert!((1.0..5.0).contains(&took), "{err}");
        }
        // The grace of `stubborn` is 1 s; everything is gone well within 5.
        wait_until_gone(&pids, Duration::from_secs(5));
        assert!(pids_running(&["sleep", &marker]).is_empty());
    }
}

#[test]
fn up_runs_a_process_that_listens_on_nothing() {
    // A job runner or log shipper has no port: it is ready once started, and what
    // depends on it starts after it without a peer URL.
    let (_s, ws) = process_workspace(&format!(
        r#"[services.ticker]
kind = "process"
command = "echo ticker running; exec sleep 60"

[services.app]
kind = "process"
port = {app}
depends_on = ["ticker"]
command = "echo app has TICKER_URL=${{TICKER_URL:-none}}; {SERVE}"
"#,
        app = free_port(),
    ));
    let mut up = Up::start(&ws, &[]);
    up.wait_for("both ready", Duration::from_secs(30), |_, err| {
        err.contains("Ready all 2 service instances")
    });
    up.wait_for("both lines", Duration::from_secs(10), |out, _| {
        out.contains("ticker running") && out.contains("app has TICKER_URL=none")
    });
    let err = up.err();
    assert!(
        err.find("Ready ticker").unwrap() < err.find("Started app").unwrap(),
        "app started before ticker:\n{err}"
    );
    up.signal(Signal::SIGTERM);
    assert!(
        up.wait_exit(Duration::from_secs(15)).success(),
        "{}",
        up.both()
    );
}

#[test]
fn up_reports_a_taken_port_before_starting_anything() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let (_s, ws) = process_workspace(&format!(
        r#"[services.a]
kind = "process"
port = {free}
command = "{SERVE}"

[services.b]
kind = "process"
port = {taken}
command = "{SERVE}"
"#,
        free = free_port(),
    ));
    let manifest = fs_err::read_to_string(ws.join("services.toml")).unwrap();
    let line = 1 + manifest
        .lines()
        .position(|l| l == format!("port = {taken}"))
        .unwrap();
    let out = run(&ws, &["up"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // The line of services.toml that asks for the port, and who holds it.
    assert!(
        err.contains(&format!(
            "port {taken} (b port, services.toml:{line}) is taken by pid {}",
            std::process::id()
        )),
        "{err}"
    );
    assert!(err.contains(&format!("services.toml:{line}:")), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!err.contains("Started"), "{err}");
}

#[test]
fn status_logs_and_restart_say_when_no_up_runs() {
    let (_s, ws) =
        process_workspace("[services.a]\nkind = \"process\"\nport = 1\ncommand = \"true\"\n");
    for args in [&["status"][..], &["restart", "a"], &["logs", "-f"]] {
        let out = run(&ws, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("no `msvc up` is running"), "{args:?}: {err}");
        assert!(
            err.contains("hint: start the services with `msvc up`"),
            "{err}"
        );
    }
    let out = run(&ws, &["logs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no logs"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn up_runs_the_example_system() {
    if !broker_or_skip("up_runs_the_example_system") {
        return;
    }
    let s = example();
    let ws = s.ws();
    // Ports of this run only, so the test never meets another user of 5000 or 50051.
    let manifest = fs_err::read_to_string(ws.join("services.toml")).unwrap();
    let (grpc, grpc_admin, rest, worker_admin) =
        (free_port(), free_port(), free_port(), free_port());
    let manifest = manifest
        .replace("port = 50051", &format!("port = {grpc}"))
        .replace("admin_port = 9100", &format!("admin_port = {grpc_admin}"))
        .replace("port = 5000", &format!("port = {rest}"))
        .replace("admin_port = 9101", &format!("admin_port = {worker_admin}"));
    fs_err::write(ws.join("services.toml"), manifest).unwrap();

    // With Prometheus installed, the run also proves every instance is scraped.
    let prometheus = tool(
        "prometheus",
        &[vec!["prometheus".to_string()]],
        "--version",
        "prometheus",
    )
    .is_some();
    let mut up = Up::start(&ws, if prometheus { &["--prometheus"] } else { &[] });
    let ready = if prometheus {
        "Ready all 4 service instances"
    } else {
        "Ready all 3 service instances"
    };
    // The first build of the example on a cold cache takes minutes.
    up.wait_for(
        "the example system ready",
        Duration::from_secs(900),
        |_, err| err.contains(ready),
    );
    let err = up.err();
    assert!(
        err.contains("Broker amqp://guest:guest@127.0.0.1:5672/%2f answers"),
        "{err}"
    );
    assert!(
        err.find("Ready user-service").unwrap() < err.find("Started user-api").unwrap(),
        "user-api started before user-service was ready:\n{err}"
    );

    // REST -> gRPC, then REST -> queue -> worker.
    let (status, body) = http(rest, "GET", "/user/1", None).expect("user-api answers");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"name\":\"Alice\""), "{body}");
    let marker = format!("hello through msvc up {}", std::process::id());
    let post = serde_json::json!({ "message": marker }).to_string();
    let (status, body) = http(rest, "POST", "/user/1/messages", Some(&post)).unwrap();
    assert_eq!(status, 202, "{body}");
    up.wait_for(
        "the worker's line with the message",
        Duration::from_secs(30),
        |out, _| {
            out.lines()
                .any(|l| l.starts_with("email-worker | ") && l.contains(&marker))
        },
    );

    if prometheus {
        every_target_up(&up.err(), &[rest, grpc_admin, worker_admin]);
    }

    // From other processes: status, logs, restart.
    let before = status_json(&ws);
    let pid_of = |status: &serde_json::Value, name: &str| {
        status["up"]["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["service"] == name)
            .and_then(|i| i["pid"].as_i64())
            .unwrap()
    };
    let logs = run(&ws, &["logs", "email-worker", "-n", "0"]);
    assert!(
        text(&logs.stdout).contains(&marker),
        "{}",
        text(&logs.stdout)
    );
    let restart = run(&ws, &["restart", "user-service"]);
    assert!(restart.status.success(), "{}", text(&restart.stderr));
    let after = status_json(&ws);
    assert_ne!(
        pid_of(&before, "user-service"),
        pid_of(&after, "user-service")
    );
    assert_eq!(pid_of(&before, "user-api"), pid_of(&after, "user-api"));
    let (status, body) = http(rest, "GET", "/user/1", None).expect("user-api answers");
    assert_eq!(status, 200, "after the restart: {body}");

    let pids = pids_of_up(&after);
    up.signal(Signal::SIGTERM);
    assert_eq!(
        up.wait_exit(Duration::from_secs(60)).code(),
        Some(0),
        "{}",
        up.both()
    );
    wait_until_gone(&pids, Duration::from_secs(5));
}

/// Asks the Prometheus of `msvc up` (its address read from up's output) for its targets
/// until it has scraped each of `ports` successfully.
fn every_target_up(err: &str, ports: &[u16]) {
    let address = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("Prometheus http://127.0.0.1:"))
        .expect("up prints where Prometheus listens");
    let port: u16 = address.split(' ').next().unwrap().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some((200, body)) = http(port, "GET", "/api/v1/targets", None) {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let targets = v["data"]["activeTargets"].as_array().unwrap();
            let up: Vec<String> = targets
                .iter()
                .filter(|t| t["health"] == "up")
                .filter_map(|t| t["labels"]["instance"].as_str().map(String::from))
                .collect();
            if targets.len() == ports.len()
                && ports.iter().all(|p| up.contains(&format!("127.0.0.1:{p}")))
            {
                eprintln!("Prometheus on port {port} reports every target up: {up:?}");
                return;
            }
            last = body;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("Prometheus did not see every instance up ({ports:?}):\n{last}");
}

#[test]
fn up_prometheus_without_the_binary_starts_nothing() {
    let (_s, ws) = process_workspace(&format!(
        "[services.a]\nkind = \"process\"\nport = {}\ncommand = \"{SERVE}\"\n",
        free_port()
    ));
    let out = msvc()
        .args(["up", "--prometheus"])
        .current_dir(&ws)
        .env("PATH", ws.join("no-such-dir"))
        .output()
        .expect("msvc runs");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`prometheus` is not installed"), "{err}");
    assert!(err.contains("hint: install it"), "{err}");
    assert!(!err.contains("Started"), "{err}");
}

#[test]
fn up_prints_compile_errors_and_starts_nothing() {
    let (s, ws) = process_workspace(&format!(
        "[services.broken]\nkind = \"rest\"\nport = {}\n\n[services.other]\nkind = \"process\"\nport = {}\ncommand = \"{SERVE}\"\n",
        free_port(),
        free_port()
    ));
    one_crate_workspace(
        &ws,
        "broken",
        "fn main() {\n    let x: u32 = \"text\";\n}\n",
    );
    let out = msvc()
        .arg("up")
        .current_dir(&ws)
        .env("CARGO_TARGET_DIR", s.path().join("target"))
        .output()
        .expect("msvc runs");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error[E0308]: mismatched types"), "{err}");
    assert!(err.contains("services/broken/src/main.rs:2"), "{err}");
    assert!(
        err.contains("the build failed, so nothing was started"),
        "{err}"
    );
    assert!(!err.contains("Started"), "{err}");
}

#[test]
fn up_starts_a_private_rabbitmq_node_and_leaves_the_shared_one_alone() {
    if !Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").is_file()
        && !Path::new("/usr/sbin/rabbitmq-server").is_file()
    {
        assert!(!in_ci(), "rabbitmq-server is required under CI");
        eprintln!(
            "\n!!! SKIPPING up_starts_a_private_rabbitmq_node_and_leaves_the_shared_one_alone: rabbitmq-server is not installed !!!\n"
        );
        return;
    }
    // The shared broker (when there is one) must come out of this untouched.
    let shared_answers = broker_reachable();
    let shared_nodes = pids_with("cmdline", "beam.smp");
    // Nothing answers at the manifest's broker URL, so msvc starts a node of its own.
    let unused = free_port();
    let (_s, ws) = process_workspace(&format!(
        r#"[broker]
kind = "rabbitmq"
url = "amqp://guest:guest@127.0.0.1:{unused}/%2f"

[services.client]
kind = "process"
port = {client}
consumes = ["jobs"]
command = """python3 -c '
import os, socket
url = os.environ["AMQP_URL"]
port = int(url.rsplit(":", 1)[1].split("/")[0])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"AMQP\\x00\\x00\\x09\\x01")
print("client got frame type", s.recv(1)[0], "from", url, flush=True)
'; {SERVE}"""
"#,
        client = free_port(),
    ));
    let mut up = Up::start_with(&ws, &[], |cmd| {
        cmd.env_remove("AMQP_URL");
    });
    up.wait_for(
        "the private node and the client ready",
        Duration::from_secs(180),
        |_, err| err.contains("Ready all 1 service instance"),
    );
    let err = up.err();
    let port: u16 = err
        .split("starting a private RabbitMQ node on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no private node announced\n{}", up.both()));
    assert_ne!(port, 5672);
    assert_ne!(port, unused);
    assert!(
        err.find("Ready broker").unwrap() < err.find("Started client").unwrap(),
        "the client started before the broker was ready:\n{err}"
    );
    up.wait_for("the client's line", Duration::from_secs(10), |out, _| {
        out.contains("client | client got frame type")
    });
    assert!(
        up.out().contains(&format!(
            "client | client got frame type 1 from amqp://guest:guest@127.0.0.1:{port}/%2f"
        )),
        "{}",
        up.both()
    );
    // Once ready, msvc keeps watching the node without AMQP handshakes, each of which
    // the node would log: over 5 s (two or three probes), only msvc's first handshake
    // and the client's are in its log.
    std::thread::sleep(Duration::from_secs(5));
    let handshakes = up
        .out()
        .lines()
        .filter(|l| l.starts_with("broker | ") && l.contains("accepting AMQP connection"))
        .count();
    assert_eq!(handshakes, 2, "{}", up.both());
    // Its own node name and data directory.
    let node = pids_with(
        "environ",
        &format!("RABBITMQ_NODENAME=msvc-{port}@localhost"),
    );
    assert!(!node.is_empty(), "no process of node msvc-{port}@localhost");
    assert!(ws.join(".msvc/rabbitmq/mnesia").is_dir());

    up.signal(Signal::SIGTERM);
    assert_eq!(
        up.wait_exit(Duration::from_secs(60)).code(),
        Some(0),
        "{}",
        up.both()
    );
    wait_until_gone(&node, Duration::from_secs(10));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    for pid in &shared_nodes {
        assert!(alive(*pid), "the shared broker's process {pid} is gone");
    }
    if shared_answers {
        assert!(
            broker_reachable(),
            "the shared broker at 5672 stopped answering"
        );
    }
}

#[test]
fn up_release_builds_and_restarts_in_release() {
    // A crate without dependencies, so that the two builds take seconds.
    let (s, ws) = process_workspace(&format!(
        "[services.tiny]\nkind = \"rest\"\nport = {}\n",
        free_port()
    ));
    one_crate_workspace(
        &ws,
        "tiny",
        r#"use std::io::{Read, Write};

fn main() {
    let port = std::env::var("PORT").expect("PORT");
    let listener = std::net::TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("tiny on {port}, {profile} build");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{profile}",
            profile.len()
        );
    }
}
"#,
    );
    let target = s.path().join("target");
    let mut up = Up::start_with(&ws, &["--release"], |cmd| {
        cmd.env("CARGO_TARGET_DIR", &target);
    });
    up.wait_for("tiny ready", Duration::from_secs(300), |_, err| {
        err.contains("Ready all 1 service instance")
    });
    assert!(
        up.err().contains("Building tiny (release)"),
        "{}",
        up.both()
    );
    let exe_of = |status: &serde_json::Value| {
        let pid = status["up"]["instances"][0]["pid"].as_i64().unwrap();
        fs_err::read_link(format!("/proc/{pid}/exe")).unwrap()
    };
    let port = u16::try_from(
        status_json(&ws)["up"]["instances"][0]["port"]
            .as_i64()
            .unwrap(),
    )
    .unwrap();
    let before = status_json(&ws);
    assert_eq!(exe_of(&before), target.join("release/tiny"));
    assert_eq!(
        http(port, "GET", "/", None).map(|(_, body)| body),
        Some("release".to_string())
    );
    assert!(up.out().contains("tiny | tiny on"), "{}", up.both());

    // `msvc restart` rebuilds with the profile `up` was started with.
    let restart = msvc()
        .args(["restart", "tiny"])
        .current_dir(&ws)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(restart.status.success(), "{}", text(&restart.stderr));
    let after = status_json(&ws);
    assert_ne!(
        before["up"]["instances"][0]["pid"],
        after["up"]["instances"][0]["pid"]
    );
    assert_eq!(exe_of(&after), target.join("release/tiny"));
    assert_eq!(
        http(port, "GET", "/", None).map(|(_, body)| body),
        Some("release".to_string())
    );
    assert!(
        !target.join("debug/tiny").exists(),
        "a debug build was made"
    );

    up.signal(Signal::SIGINT);
    assert_eq!(up.wait_exit(Duration::from_secs(20)).code(), Some(0));
}

/// Makes `ws` a cargo workspace of one dependency-free binary crate,
/// `services/NAME`, whose `main.rs` is `main_rs`.
fn one_crate_workspace(ws: &std::path::Path, name: &str, main_rs: &str) {
    fs_err::write(
        ws.join("Cargo.toml"),
        format!("[workspace]\nmembers = [\"services/{name}\"]\nresolver = \"3\"\n"),
    )
    .unwrap();
    let krate = ws.join("services").join(name);
    fs_err::create_dir_all(krate.join("src")).unwrap();
    fs_err::write(
        krate.join("Cargo.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n"),
    )
    .unwrap();
    fs_err::write(krate.join("src/main.rs"), main_rs).unwrap();
}

/// A connection to the shared `PostgreSQL` server as its superuser, or `None` (after a
/// loud SKIP) when it is absent outside CI.
fn postgres_admin() -> Option<(tokio::runtime::Runtime, tokio_postgres::Client)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let connected = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(
            "postgres://postgres@127.0.0.1:5432/postgres",
            tokio_postgres::NoTls,
        )
        .await?;
        tokio::spawn(connection);
        Ok::<_, tokio_postgres::Error>(client)
    });
    match connected {
        Ok(client) => Some((runtime, client)),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL at 127.0.0.1:5432 is required when CI is set: {e}"
            );
            eprintln!(
                "\n==================== SKIP ====================\n\
                 PostgreSQL is not reachable at 127.0.0.1:5432 ({e}).\n\
                 This test did NOT run. Start a server, or set CI=1 to make this fail.\n\
                 ==============================================\n"
            );
            None
        }
    }
}

#[test]
fn up_creates_each_services_database_and_passes_its_url() {
    let Some((runtime, admin)) = postgres_admin() else {
        return;
    };
    // A service name of this run's own, so its database is too.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let service = format!("store-{}-{nanos}", std::process::id());
    let database = format!("shop_{}", service.replace('-', "_"));
    let (_s, ws) = process_workspace(&format!(
        r#"[database]
url = "postgres://postgres@127.0.0.1:5432/postgres"

[services.{service}]
kind = "process"
database = "postgres"
command = "echo DATABASE_URL=$DATABASE_URL; exec sleep 600"
"#
    ));
    let mut up = Up::start(&ws, &[]);
    up.wait_for("the service's line", Duration::from_secs(30), |out, _| {
        out.contains("DATABASE_URL=")
    });
    let expected = format!("DATABASE_URL=postgres://postgres@127.0.0.1:5432/{database}\n");
    assert!(up.out().contains(&expected), "{}", up.both());
    assert!(
        up.err().contains(&format!(
            "PostgreSQL at 127.0.0.1:5432 answers; created {database}"
        )),
        "{}",
        up.both()
    );
    let exists = runtime
        .block_on(admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database]))
        .unwrap()
        .is_some();
    assert!(exists, "{database} was not created");
    up.signal(Signal::SIGTERM);
    assert!(
        up.wait_exit(Duration::from_secs(15)).success(),
        "{}",
        up.both()
    );

    // A second run finds it and creates nothing.
    let mut up = Up::start(&ws, &[]);
    up.wait_for("the service's line", Duration::from_secs(30), |out, _| {
        out.contains("DATABASE_URL=")
    });
    assert!(
        up.err().contains("every service's database exists"),
        "{}",
        up.both()
    );
    up.signal(Signal::SIGTERM);
    assert!(
        up.wait_exit(Duration::from_secs(15)).success(),
        "{}",
        up.both()
    );

    runtime
        .block_on(admin.batch_execute(&format!(r#"DROP DATABASE "{database}" WITH (FORCE)"#)))
        .unwrap();
}

#[test]
fn up_stops_before_starting_anything_when_no_database_answers_and_none_can_start() {
    let closed = free_port();
    let (s, ws) = process_workspace(&format!(
        r#"[database]
url = "postgres://postgres@127.0.0.1:{closed}/postgres"

[services.store]
kind = "process"
database = "postgres"
command = "exec sleep 600"
"#
    ));
    let out = msvc()
        .arg("up")
        .env_remove("DATABASE_URL")
        .env("MSVC_POSTGRES_BINDIR", s.path().join("no-postgres-here"))
        .current_dir(&ws)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("MSVC_POSTGRES_BINDIR is ")
            && err.contains("which has no initdb and postgres"),
        "{err}"
    );
    assert!(
        err.contains("hint: point it at PostgreSQL's bin directory"),
        "{err}"
    );
    assert!(!err.contains("Started"), "{err}");
    assert!(!ws.join(".msvc/postgres").exists());
}

/// With no server where `[database] url` points, `msvc up` makes a private cluster
/// in `.msvc/postgres` with the machine's `PostgreSQL` (as the `postgres` user when msvc
/// runs as root), creates the services' databases in it, runs it on a free port before
/// the services and stops it after them; a second run finds the cluster and its
/// databases.
#[test]
fn up_starts_a_private_postgres_cluster_when_no_server_answers() {
    let closed = free_port();
    let (s, ws) = process_workspace(&format!(
        r#"[database]
url = "postgres://postgres@127.0.0.1:{closed}/postgres"

[services.store]
kind = "process"
database = "postgres"
command = "psql \"$DATABASE_URL\" -Atc 'SELECT current_database()' && exec sleep 600"
"#
    ));
    // The cluster's user must reach the workspace (a scratch directory is the owner's
    // alone).
    std::fs::set_permissions(
        s.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for run in ["first", "second"] {
        let mut up = Up::start_with(&ws, &[], |cmd| {
            cmd.env_remove("DATABASE_URL");
        });
        up.wait_for("the store's database", Duration::from_secs(60), |out, _| {
            out.contains("store    | shop_store")
        });
        let err = up.err();
        let expected = if run == "first" {
            "created shop_store"
        } else {
            "every service's database exists"
        };
        assert!(
            err.contains(&format!(
                "nothing answers at 127.0.0.1:{closed}; starting a private PostgreSQL on 127.0.0.1:"
            )) && err.contains(expected),
            "{run} run:\n{}",
            up.both()
        );
        let port: u16 = err
            .split("Started database (pid ")
            .nth(1)
            .and_then(|rest| rest.split("port ").nth(1))
            .and_then(|rest| rest.split(')').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the database's port in:\n{err}"));
        up.signal(Signal::SIGTERM);
        assert!(
            up.wait_exit(Duration::from_secs(30)).success(),
            "{}",
            up.both()
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the cluster stopped with up"
        );
    }
    assert!(ws.join(".msvc/postgres/PG_VERSION").is_file());
}

/// Services made with `--db postgres` under `msvc up`: their databases are created and
/// migrated, a REST service's POST goes through its outbox to the broker, and the worker
/// records the message in its own database with the outbox row's id, once. The
/// workspace, and so each database, and the queue have names of this run's own; the
/// databases and the queues are removed at the end.
#[test]
fn up_runs_services_with_a_database_from_post_to_the_workers_table() {
    if !broker_or_skip("up_runs_services_with_a_database_from_post_to_the_workers_table") {
        return;
    }
    let Some((runtime, admin)) = postgres_admin() else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    let workspace = format!("db{}x{nanos}", std::process::id());
    let queue = format!("{workspace}_orders");
    let s = Scratch::new();
    let ok = |cwd: &Path, args: &[&str]| {
        let out = msvc().args(args).current_dir(cwd).output().unwrap();
        assert!(out.status.success(), "msvc {args:?}: {}", text(&out.stderr));
    };
    ok(s.path(), &["init", &workspace]);
    let ws = s.path().join(&workspace);
    let (rest, worker_admin) = (free_port(), free_port());
    let db = ["--db", "postgres"];
    let port = rest.to_string();
    ok(
        &ws,
        &[
            &[
                "new",
                "orders",
                "--rest",
                "--port",
                &port,
                "--publishes",
                &queue,
            ][..],
            &db,
        ]
        .concat(),
    );
    ok(
        &ws,
        &[
            &["new", "mailer", "--worker", "--consumes", &queue][..],
            &db,
        ]
        .concat(),
    );
    let manifest = fs_err::read_to_string(ws.join("services.toml")).unwrap();
    fs_err::write(
        ws.join("services.toml"),
        manifest.replace("admin_port = 9100", &format!("admin_port = {worker_admin}")),
    )
    .unwrap();

    let mut up = Up::start(&ws, &[]);
    up.wait_for("both services ready", Duration::from_secs(900), |_, err| {
        err.contains("Ready all 2 service instances")
    });
    let databases = [format!("{workspace}_orders"), format!("{workspace}_mailer")];
    for database in &databases {
        assert!(
            up.err().contains(database.as_str()),
            "{database} created:\n{}",
            up.both()
        );
    }
    let (status, body) = http(rest, "GET", "/orders/2", None).expect("orders answers");
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"id":2,"name":"orders 2"}"#)
    );
    let marker = format!("through the outbox {}", std::process::id());
    let message = serde_json::json!({ "user_id": 1, "message": marker }).to_string();
    let path = format!("/messages/{queue}");
    let (status, body) = http(rest, "POST", &path, Some(&message)).unwrap();
    assert_eq!(status, 202, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = reply["id"].as_str().expect("the message's id").to_owned();
    up.wait_for("the worker's line", Duration::from_secs(30), |out, _| {
        out.lines()
            .any(|l| l.starts_with("mailer | ") && l.contains(&marker))
    });

    let mailer = format!("postgres://postgres@127.0.0.1:5432/{}", databases[1]);
    let rows = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&mailer, tokio_postgres::NoTls)
            .await
            .unwrap();
        let connection = tokio::spawn(connection);
        let rows = client
            .query("SELECT message_id FROM received_messages", &[])
            .await
            .unwrap();
        drop(client);
        let _ = connection.await;
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
    });
    assert_eq!(rows, [id], "recorded once, with the outbox row's id");

    up.signal(Signal::SIGTERM);
    assert_eq!(
        up.wait_exit(Duration::from_secs(60)).code(),
        Some(0),
        "{}",
        up.both()
    );
    for database in &databases {
        runtime
            .block_on(admin.batch_execute(&format!(r#"DROP DATABASE "{database}" WITH (FORCE)"#)))
            .unwrap();
    }
    runtime.block_on(async {
        let properties = lapin::ConnectionProperties::default();
        let broker = "amqp://guest:guest@127.0.0.1:5672/%2f";
        let conn = lapin::Connection::connect(broker, properties)
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        for name in [queue.clone(), format!("{queue}.dlq")] {
            let options = lapin::options::QueueDeleteOptions::default();
            channel
                .queue_delete(name.as_str().into(), options)
                .await
                .unwrap();
        }
        let _ = conn.close(200, "OK".into()).await;
    });
}
