//! The example system end to end: `msvc init --example`, built, its three services
//! started as plain processes against the real `RabbitMQ`, and the whole chain checked
//! over the network: REST -> gRPC, REST -> queue -> worker.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::generated::{cargo, compose_binary, fmt_and_clippy, shared_target_dir, tool};
use crate::support::{broker_or_skip, example, free_port, http, run_tool};

/// Children killed when the test ends, however it ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

fn spawn(bin: &Path, env: &[(&str, String)], lines: Option<Arc<Mutex<Vec<String>>>>) -> Child {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(lines) = &lines {
                lines.lock().unwrap().push(line);
            }
        }
    });
    child
}

fn ready(port: u16) -> bool {
    http(port, "GET", "/readyz", None).is_some_and(|(s, _)| s == 200)
}

#[test]
fn example_system_runs_end_to_end() {
    if !broker_or_skip("example_system_runs_end_to_end") {
        return;
    }
    let s = example();
    let ws = s.ws();

    fmt_and_clippy(&ws);
    cargo(&ws, &["build", "--workspace"]);
    if let Some(compose) = compose_binary() {
        run_tool(&compose, &["config", "--quiet"], &ws);
    }
    if let Some(buf) = tool("buf", &[vec!["buf".to_string()]], "--version", ".") {
        run_tool(&buf, &["lint"], &ws);
    }
    let bin = |name: &str| -> PathBuf { shared_target_dir().join("debug").join(name) };

    let (grpc, grpc_admin, rest, worker_admin) =
        (free_port(), free_port(), free_port(), free_port());
    let mut procs = Processes(Vec::new());
    procs.0.push(spawn(
        &bin("user-service"),
        &[
            ("PORT", grpc.to_string()),
            ("ADMIN_PORT", grpc_admin.to_string()),
        ],
        None,
    ));
    wait_until("user-service ready", Duration::from_secs(30), || {
        ready(grpc_admin)
    });
    procs.0.push(spawn(
        &bin("user-api"),
        &[
            ("PORT", rest.to_string()),
            ("USER_SERVICE_URL", format!("http://127.0.0.1:{grpc}")),
        ],
        None,
    ));
    wait_until("user-api ready", Duration::from_secs(30), || ready(rest));

    // REST -> gRPC.
    let (status, body) = http(rest, "GET", "/user/1", None).expect("user-api answers");
    assert_eq!(status, 200, "{body}");
    let user: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        user,
        serde_json::json!({"id": 1, "name": "Alice", "email": "alice@example.com"})
    );
    let (status, body) = http(rest, "GET", "/user/999", None).unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].is_string());

    // REST -> queue, with the worker not running yet: the message must wait for it.
    let marker = format!("hello from the example test {}", std::process::id());
    let post = serde_json::json!({ "message": marker }).to_string();
    let (status, body) = http(rest, "POST", "/user/1/messages", Some(&post)).unwrap();
    assert_eq!(status, 202, "{body}");

    let lines = Arc::new(Mutex::new(Vec::new()));
    procs.0.push(spawn(
        &bin("email-worker"),
        &[("ADMIN_PORT", worker_admin.to_string())],
        Some(lines.clone()),
    ));
    wait_until(
        "the worker to handle the message posted before it started",
        Duration::from_secs(30),
        || lines.lock().unwrap().iter().any(|l| l.contains(&marker)),
    );
    let (status, metrics) = http(worker_admin, "GET", "/metrics", None).unwrap();
    assert_eq!(status, 200);
    let processed: f64 = metrics
        .lines()
        .find(|l| l.starts_with("worker_messages_processed_total{queue=\"user_message\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no processed counter in:\n{metrics}"));
    assert!(processed >= 1.0, "{metrics}");

    // The REST service honours its own openapi.yaml.
    let schemathesis = tool(
        "schemathesis",
        &[vec!["schemathesis".to_string()]],
        "--version",
        "chemathesis",
    );
    if let Some(st) = schemathesis {
        let out = Command::new(&st[0])
            .args(["run", "services/user-api/openapi.yaml", "--url"])
            .arg(format!("http://127.0.0.1:{rest}"))
            .args(["--max-examples", "30"])
            .current_dir(&ws)
            .output()
            .expect("schemathesis runs");
        assert!(
            out.status.success(),
            "schemathesis found failures:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // user-service gone: user-api answers 503, not a hang or a 500.
    let mut grpc_child = procs.0.remove(0);
    let _ = grpc_child.kill();
    let _ = grpc_child.wait();
    let (status, body) = http(rest, "GET", "/user/1", None).unwrap();
    assert_eq!(status, 503, "{body}");
}
