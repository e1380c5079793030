//! `.msvc/` in the workspace: the lock held by the running `msvc up`, its state (read
//! by `msvc status`), its log (read by `msvc logs`) and its control socket (used by
//! `msvc restart`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const STATE_DIR: &str = ".msvc";

/// Paths of the run state of one workspace.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
}

/// Held by `msvc up` while it runs; the kernel drops it when msvc dies.
pub struct UpLock {
    _lock: Flock<std::fs::File>,
}

/// What `msvc status` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpState {
    pub pid: u32,
    pub reaper_pid: u32,
    pub started_ms: u64,
    pub workspace: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    pub instances: Vec<InstanceState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceState {
    pub service: String,
    pub instance: String,
    pub replica: u32,
    pub kind: String,
    /// waiting, starting, running, backoff, stopping, stopped, exited, failed.
    pub state: String,
    pub pid: Option<i32>,
    pub port: Option<u16>,
    pub admin_port: Option<u16>,
    pub restarts: u32,
    /// healthy, unhealthy or unknown.
    pub health: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
    /// Since when the instance is in its state, ms since the epoch.
    pub since_ms: u64,
}

/// A request to the running `msvc up`, and its answers (JSON lines).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlRequest {
    Restart { service: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlReply {
    /// `progress`, `ok` or `error`.
    pub status: String,
    pub message: String,
}

impl StateDir {
    pub fn new(root: &Path) -> Self {
        Self {
            dir: root.join(STATE_DIR),
        }
    }

    /// `.msvc/` itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("up.lock")
    }
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("up.json")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("up.log")
    }
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// Creates `.msvc/` (ignored by git whatever the workspace's .gitignore says).
    pub fn create(&self) -> Result<()> {
        fs_err::create_dir_all(&self.dir)?;
        let ignore = self.dir.join(".gitignore");
        if !ignore.exists() {
            fs_err::write(&ignore, "# run state of `msvc up`\n*\n")?;
        }
        Ok(())
    }

    /// Takes the lock of the running `up`, or says which `up` holds it.
    pub fn lock(&self) -> Result<UpLock> {
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock_path())?
            .into_file();
        if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            return Ok(UpLock { _lock: lock });
        }
        let pid = self.read().ok().map(|s| s.pid);
        Err(Error::new(format!(
            "`msvc up` is already running in this workspace{}",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        ))
        .hint("stop it with Ctrl-C first, or use `msvc status`, `msvc logs` and `msvc restart` to work with it"))
    }

    /// Whether an `msvc up` holds the lock now.
    pub fn is_running(&self) -> bool {
        let Ok(file) = fs_err::OpenOptions::new()
            .write(true)
            .open(self.lock_path())
        else {
            return false;
        };
        Flock::lock(file.into_file(), FlockArg::LockExclusiveNonblock).is_err()
    }

    /// The error for commands that need a running `up`.
    pub fn not_running(&self) -> Error {
        Error::new(format!(
            "no `msvc up` is running in `{}`",
            self.dir.parent().unwrap_or(&self.dir).display()
        ))
        .hint("start the services with `msvc up` (in another terminal), then try again")
    }

    pub fn write(&self, state: &UpState) -> Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        serde_json::to_writer_pretty(&mut tmp, state).map_err(std::io::Error::other)?;
        tmp.write_all(b"\n")?;
        tmp.persist(self.state_path()).map_err(|e| {
            Error::new(format!("cannot write `{}`", self.state_path().display())).source(e.error)
        })?;
        Ok(())
    }

    pub fn read(&self) -> Result<UpState> {
        let text = fs_err::read_to_string(self.state_path())?;
        serde_json::from_str(&text).map_err(|e| {
            Error::new(format!("cannot read `{}`", self.state_path().display())).source(e)
        })
    }

    /// Sends a request to the running `up`; `on_reply` sees every answer until the last.
    pub fn control(
        &self,
        request: &ControlRequest,
        mut on_reply: impl FnMut(&ControlReply),
    ) -> Result<ControlReply> {
        let mut stream = UnixStream::connect(self.socket_path()).map_err(|e| {
            if self.is_running() {
                Error::new(format!(
                    "cannot reach the running `msvc up` at `{}`: {e}",
                    self.socket_path().display()
                ))
            } else {
                self.not_running()
            }
        })?;
        let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
        line.push(b'\n');
        stream.write_all(&line)?;
        let mut last = None;
        for line in BufReader::new(stream).lines() {
            let line = line?;
            let Ok(reply) = serde_json::from_str::<ControlReply>(&line) else {
                continue;
            };
            on_reply(&reply);
            let done = reply.status != "progress";
            last = Some(reply);
            if done {
                break;
            }
        }
        last.ok_or_else(|| {
            Error::new("`msvc up` closed the connection without an answer").exit_code(1)
        })
    }
}
