//! A small builder for running msvc in a scratch directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;

/// `msvc new` of the article's REST service, calling user-service and publishing.
pub const USER_API: [&str; 9] = [
    "new",
    "user-api",
    "--rest",
    "--port",
    "5000",
    "--depends-on",
    "user-service",
    "--publishes",
    "user_message",
];

/// `msvc new` of the article's worker.
pub const EMAIL_WORKER: [&str; 5] = [
    "new",
    "email-worker",
    "--worker",
    "--consumes",
    "user_message",
];

/// Runs an external tool and asserts it succeeded, showing its output when not.
pub fn run_tool(tool: &[String], args: &[&str], cwd: &Path) {
    let out = std::process::Command::new(&tool[0])
        .args(&tool[1..])
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", tool[0]));
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}{}",
        tool.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A scratch directory to run msvc in.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A scratch directory with a workspace `shop` already initialised in `shop/`.
    pub fn with_workspace() -> Self {
        let s = Self::new();
        s.ok(&["init", "shop"]);
        s
    }

    /// A workspace with the article's three services, added one `msvc new` at a time.
    pub fn with_system() -> Self {
        let s = Self::with_workspace();
        s.ok(&["new", "user-service", "--grpc"]);
        s.ok(&USER_API);
        s.ok(&EMAIL_WORKER);
        s
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn ws(&self) -> PathBuf {
        self.path().join("shop")
    }

    /// Runs msvc in the workspace directory (or the scratch root when there is none).
    pub fn run(&self, args: &[&str]) -> Output {
        let cwd = if self.ws().is_dir() {
            self.ws()
        } else {
            self.path().to_path_buf()
        };
        self.run_in(&cwd, args)
    }

    #[allow(clippy::unused_self)] // reads as `s.run_in(..)` beside `s.run(..)`
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::cargo_bin("msvc")
            .expect("msvc binary")
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .expect("msvc runs")
    }

    /// Runs msvc and asserts success.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "msvc {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn read(&self, rel: &str) -> String {
        fs_err::read_to_string(self.ws().join(rel)).expect("file exists")
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.ws().join(rel);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file under `dir` with its bytes, to compare a tree before and after.
pub fn snapshot_tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs_err::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.insert(p.strip_prefix(dir).unwrap().join(""), Vec::new());
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    fs_err::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// Every file under `dir` as one text: a header per file, then its content. The runtime
/// crate is msvc's own source copied byte for byte (a test of its own checks that), so
/// only its file names are shown.
pub fn dump_tree(dir: &Path, under: &[&str]) -> String {
    let mut text = String::new();
    for (path, bytes) in snapshot_tree(dir) {
        let shown = path.to_string_lossy().replace('\\', "/");
        if shown.ends_with('/') || !under.iter().any(|u| shown.starts_with(u)) {
            continue;
        }
        if shown.starts_with("crates/msvc-runtime/") {
            let _ = writeln!(text, "=== {shown} (msvc's runtime, byte for byte)");
            continue;
        }
        let _ = writeln!(text, "=== {shown}");
        text.push_str(&String::from_utf8_lossy(&bytes));
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A minimal HTTP/1.1 exchange: status and body (chunked bodies joined), `None` when
/// nothing answers; the client `msvc test` uses.
pub fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
    msvc::testing::http::http(port, method, path, body).ok()
}

/// The example system, in `shop/` of a scratch directory.
pub fn example() -> Scratch {
    let s = Scratch::new();
    let out = s.run_in(s.path(), &["init", "shop", "--example", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    s
}

/// Whether the broker is there for `test`, which needs it: under CI its absence fails the
/// test; elsewhere the test is skipped, loudly.
pub fn broker_or_skip(test: &str) -> bool {
    if broker_reachable() {
        return true;
    }
    assert!(
        !crate::generated::in_ci(),
        "RabbitMQ at 127.0.0.1:5672 is required under CI"
    );
    eprintln!("\n!!! SKIPPING {test}: no RabbitMQ at 127.0.0.1:5672 !!!\n");
    false
}

/// Whether the broker the tests use (127.0.0.1:5672) answers.
pub fn broker_reachable() -> bool {
    TcpStream::connect_timeout(&"127.0.0.1:5672".parse().unwrap(), Duration::from_secs(2)).is_ok()
}
