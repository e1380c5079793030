//! The reaper: a small process (`msvc __reaper`) between `msvc up` and the services.
//!
//! It is the services' parent and, through `PR_SET_CHILD_SUBREAPER`, the parent every
//! orphaned descendant is re-attached to, even one that called `setsid`. It spawns what
//! msvc asks for over its stdin (JSON lines), forwards the services' output and exits
//! over its stdout (binary frames), and when its stdin closes (msvc exited, however it
//! exited, SIGKILL included), it sends SIGTERM to every descendant, waits for the
//! longest grace period of its services, then SIGKILLs descendants until none is left.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::logs::{LogSink, Stream};
use crate::error::{Error, Result};

/// The hidden subcommand that runs the reaper.
pub const SUBCOMMAND: &str = "__reaper";

/// What msvc asks of the reaper, one JSON object per line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    Spawn(SpawnRequest),
    /// Stop every descendant left (after `grace_ms` of SIGTERM) and exit.
    Shutdown {
        grace_ms: u64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpawnRequest {
    /// Chosen by msvc; names the process in every frame about it.
    pub id: u64,
    pub program: String,
    pub args: Vec<String>,
    /// The whole environment (nothing is inherited).
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    /// How long the process gets between SIGTERM and SIGKILL when msvc is gone.
    pub grace_ms: u64,
}

/// What the reaper reports about a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaperEvent {
    /// Started; `pid` is also its process group.
    Spawned {
        id: u64,
        pid: i32,
    },
    SpawnFailed {
        id: u64,
        error: String,
    },
    /// Exited (after its output was forwarded); a code or the signal that killed it.
    Exited {
        id: u64,
        code: Option<i32>,
        signal: Option<i32>,
    },
}

const FRAME_OUTPUT: u8 = b'O';
const FRAME_CLOSED: u8 = b'C';
const FRAME_EVENT: u8 = b'E';

// ---------------------------------------------------------------------------------
// The reaper process.

type Output = Arc<Mutex<BufWriter<std::io::Stdout>>>;

struct Live {
    id: u64,
    grace_ms: u64,
    /// Streams of the process still open, to report its exit after its last line.
    open: Arc<(Mutex<u8>, Condvar)>,
}

struct Reaper {
    children: Mutex<HashMap<i32, Live>>,
    out: Output,
}

/// The body of `msvc __reaper`.
pub fn run() -> Result<i32> {
    // Linux only: elsewhere orphans go to init, and only process groups are stopped.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::new(format!("cannot become a subreaper: {e}")))?;
    let reaper = Arc::new(Reaper {
        children: Mutex::new(HashMap::new()),
        out: Arc::new(Mutex::new(BufWriter::with_capacity(
            256 * 1024,
            crate::printer::Printer::raw_stdout(),
        ))),
    });

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])?;
    let on_signal = Arc::clone(&reaper);
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            on_signal.clean_up_and_exit(None);
        }
    });
    let reaping = Arc::clone(&reaper);
    std::thread::spawn(move || reaping.reap_forever());

    let stdin = std::io::stdin().lock();
    for line in stdin.lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<Request>(&line) {
            Ok(Request::Spawn(req)) => reaper.spawn(&req),
            Ok(Request::Shutdown { grace_ms }) => reaper.clean_up_and_exit(Some(grace_ms)),
            Err(e) => crate::printer::Printer::warning(&format!("msvc reaper: bad request: {e}")),
        }
    }
    // msvc is gone: nothing may outlive it.
    reaper.clean_up_and_exit(None)
}

impl Reaper {
    fn send(&self, event: &ReaperEvent) {
        let json = serde_json::to_vec(event).expect("plain data serialises");
        let mut out = self.out.lock().expect("output lock");
        let _ = out.write_all(&[FRAME_EVENT]);
        let _ = out.write_all(&(json.len() as u32).to_le_bytes());
        let _ = out.write_all(&json);
        let _ = out.flush();
    }

    fn spawn(&self, req: &SpawnRequest) {
        // Held across spawn and insert, so the reaping thread never sees an unknown pid.
        let mut children = self.children.lock().expect("children lock");
        let spawned = Command::new(&req.program)
            .args(&req.args)
            .env_clear()
            .envs(&req.env)
            .current_dir(&req.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn();
        let mut child: Child = match spawned {
            Ok(c) => c,
            Err(e) => {
                drop(children);
                self.send(&ReaperEvent::SpawnFailed {
                    id: req.id,
                    error: format!("cannot start `{}`: {e}", req.program),
                });
                return;
            }
        };
        let pid = i32::try_from(child.id()).expect("pids fit i32");
        let open = Arc::new((Mutex::new(2u8), Condvar::new()));
        let pipes: [(Stream, Option<Box<dyn Read + Send>>); 2] = [
            (
                Stream::Stdout,
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
            (
                Stream::Stderr,
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
        ];
        for (stream, pipe) in pipes {
            let out = Arc::clone(&self.out);
            let open = Arc::clone(&open);
            let id = req.id;
            std::thread::spawn(move || {
                if let Some(pipe) = pipe {
                    forward(id, stream, pipe, &out);
                }
                let (count, cv) = &*open;
                *count.lock().expect("open lock") -= 1;
                cv.notify_all();
            });
        }
        children.insert(
            pid,
            Live {
                id: req.id,
                grace_ms: req.grace_ms,
                open,
            },
        );
        self.send(&ReaperEvent::Spawned { id: req.id, pid });
        // The child is reaped by `reap_forever`, never through `Child::wait`.
        drop(child);
    }

    /// Reaps every child: the services, and the orphans re-attached to this subreaper.
    fn reap_forever(self: &Arc<Self>) {
        loop {
            let (pid, code, signal) = match waitpid(None::<Pid>, None) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Some(code), None),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, None, Some(sig as i32)),
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(_) => {
                    // No child at the moment.
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let live = self
                .children
                .lock()
                .expect("children lock")
                .remove(&pid.as_raw());
            if let Some(live) = live {
                let me = Arc::clone(self);
                std::thread::spawn(move || {
                    // Report the exit after the last output, unless a grandchild keeps
                    // the pipes open.
                    let (count, cv) = &*live.open;
                    let guard = count.lock().expect("open lock");
                    let _ = cv.wait_timeout_while(guard, Duration::from_millis(300), |n| *n > 0);
                    me.send(&ReaperEvent::Exited {
                        id: live.id,
                        code,
                        signal,
                    });
                });
            }
        }
    }

    /// SIGTERM to every descendant, `grace` (the services' longest unless given), then
    /// SIGKILL until no descendant is left; then exit.
    fn clean_up_and_exit(&self, grace_ms: Option<u64>) -> ! {
        static ONCE: Mutex<()> = Mutex::new(());
        let _once = ONCE.lock();
        let me = nix::unistd::getpid().as_raw();
        let (groups, longest) = {
            let children = self.children.lock().expect("children lock");
            let groups: Vec<i32> = children.keys().copied().collect();
            let longest = children.values().map(|l| l.grace_ms).max().unwrap_or(0);
            (groups, longest)
        };
        let grace = Duration::from_millis(grace_ms.unwrap_or(longest));
        for pgid in &groups {
            let _ = killpg(Pid::from_raw(*pgid), Signal::SIGTERM);
        }
        for pid in descendants(me) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !descendants(me).is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            let left = descendants(me);
            if left.is_empty() || Instant::now() > give_up {
                break;
            }
            for pgid in &groups {
                let _ = killpg(Pid::from_raw(*pgid), Signal::SIGKILL);
            }
            for pid in left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
        std::process::exit(0)
    }
}

fn forward(id: u64, stream: Stream, mut pipe: Box<dyn Read + Send>, out: &Output) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let mut out = out.lock().expect("output lock");
        let _ = out.write_all(&[FRAME_OUTPUT]);
        let _ = out.write_all(&id.to_le_bytes());
        let _ = out.write_all(&[stream.as_byte()]);
        let _ = out.write_all(&(n as u32).to_le_bytes());
        let _ = out.write_all(&buf[..n]);
        let _ = out.flush();
    }
    let mut out = out.lock().expect("output lock");
    let _ = out.write_all(&[FRAME_CLOSED]);
    let _ = out.write_all(&id.to_le_bytes());
    let _ = out.write_all(&[stream.as_byte()]);
    let _ = out.flush();
}

/// Every living (not zombie) descendant of `root`, from /proc.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let Ok(entries) = fs_err::read_dir("/proc") else {
        return Vec::new();
    };
    let mut zombies = std::collections::HashSet::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs_err::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next().unwrap_or("");
        let Some(parent) = fields.next().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if state == "Z" || state == "X" {
            zombies.insert(pid);
        }
        children.entry(parent).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).map_or(&[][..], Vec::as_slice) {
            if !zombies.contains(&c) {
                found.push(c);
            }
            stack.push(c);
        }
    }
    found
}

// ---------------------------------------------------------------------------------
// msvc's side.

/// The running reaper, as `msvc up` holds it.
pub struct ReaperHandle {
    child: Child,
    stdin: Option<ChildStdin>,
    pub pid: u32,
}

impl ReaperHandle {
    /// Starts `msvc __reaper`; its output goes to `sink` (the instance of a frame is
    /// `id >> 32`), its events to `on_event` (`None` once the reaper is gone).
    pub fn start(
        sink: Arc<Mutex<LogSink>>,
        mut on_event: impl FnMut(Option<ReaperEvent>) + Send + 'static,
    ) -> Result<Self> {
        // /proc/self/exe runs this very binary even when a rebuild replaced the file.
        let exe = if Path::new("/proc/self/exe").exists() {
            PathBuf::from("/proc/self/exe")
        } else {
            std::env::current_exe()
                .map_err(|e| Error::new(format!("cannot find msvc's own executable: {e}")))?
        };
        let mut child = Command::new(exe)
            .arg(SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own group: a Ctrl-C in the terminal reaches msvc only, which stops the
            // services in order; the reaper and the services are signalled by msvc.
            .process_group(0)
            .spawn()
            .map_err(|e| Error::new(format!("cannot start msvc's reaper process: {e}")))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        std::thread::spawn(move || {
            let mut r = BufReader::with_capacity(256 * 1024, stdout);
            let mut data = Vec::new();
            while let Ok(()) = read_frame(&mut r, &sink, &mut on_event, &mut data) {
                if r.buffer().is_empty() {
                    sink.lock().expect("sink lock").flush();
                }
            }
            sink.lock().expect("sink lock").flush();
            on_event(None);
        });
        Ok(Self {
            pid: child.id(),
            child,
            stdin,
        })
    }

    pub fn request(&mut self, req: &Request) -> std::io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the reaper is stopped"))?;
        let mut line = serde_json::to_vec(req).map_err(std::io::Error::other)?;
        line.push(b'\n');
        stdin.write_all(&line)?;
        stdin.flush()
    }

    /// Asks the reaper to stop what is left (after `grace_ms`) and waits for it.
    pub fn shutdown(&mut self, grace_ms: u64) {
        let _ = self.request(&Request::Shutdown { grace_ms });
        self.stdin = None;
        let _ = self.child.wait();
    }
}

fn read_frame(
    r: &mut impl Read,
    sink: &Mutex<LogSink>,
    on_event: &mut impl FnMut(Option<ReaperEvent>),
    data: &mut Vec<u8>,
) -> std::io::Result<()> {
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag)?;
    match tag[0] {
        FRAME_OUTPUT | FRAME_CLOSED => {
            let mut head = [0u8; 9];
            r.read_exact(&mut head)?;
            let id = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
            let index = usize::try_from(id >> 32).unwrap_or(usize::MAX);
            let stream = Stream::from_byte(head[8]);
            if tag[0] == FRAME_CLOSED {
                sink.lock().expect("sink lock").end(index, stream);
                return Ok(());
            }
            let len = read_len(r)?;
            data.resize(len, 0);
            r.read_exact(data)?;
            sink.lock().expect("sink lock").chunk(index, stream, data);
        }
        FRAME_EVENT => {
            let len = read_len(r)?;
            data.resize(len, 0);
            r.read_exact(data)?;
            if let Ok(event) = serde_json::from_slice(data) {
                on_event(Some(event));
            }
        }
        other => {
            return Err(std::io::Error::other(format!(
                "unknown frame {other} from the reaper"
            )));
        }
    }
    Ok(())
}

fn read_len(r: &mut impl Read) -> std::io::Result<usize> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    Ok(u32::from_le_bytes(len) as usize)
}
