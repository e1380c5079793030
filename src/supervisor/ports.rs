//! Ports: whether the ones the plan needs are free, who holds a taken one, free ones.

use std::collections::BTreeSet;
use std::net::TcpListener;

/// A process listening on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.command)
    }
}

/// Whether a service could bind `port` on the loopback interface.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Ports that the system picks and nothing in `avoid` uses.
#[derive(Debug, Default)]
pub struct FreePorts {
    taken: BTreeSet<u16>,
}

impl FreePorts {
    pub fn new(avoid: impl IntoIterator<Item = u16>) -> Self {
        Self {
            taken: avoid.into_iter().collect(),
        }
    }

    /// A port free now, never handed out before by this picker.
    pub fn pick(&mut self) -> std::io::Result<u16> {
        // The kernel hands out ports in order; a few tries skip the ones already used.
        for _ in 0..64 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            if self.taken.insert(port) {
                return Ok(port);
            }
        }
        Err(std::io::Error::other("no free port found"))
    }
}

/// The process listening on `port`, found through /proc (Linux), when it can be seen.
pub fn holder(port: u16) -> Option<Holder> {
    let inodes: BTreeSet<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| fs_err::read_to_string(p).ok())
        .flat_map(|text| listening_inodes(&text, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    for entry in fs_err::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs_err::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            let inode = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok());
            if inode.is_some_and(|i| inodes.contains(&i)) {
                return Some(Holder {
                    pid,
                    command: command_line(pid),
                });
            }
        }
    }
    None
}

/// A process's command line, spaces between arguments, or its name.
pub fn command_line(pid: u32) -> String {
    let raw = fs_err::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if text.is_empty() {
        fs_err::read_to_string(format!("/proc/{pid}/comm"))
            .map_or_else(|_| "?".to_string(), |s| s.trim().to_string())
    } else {
        text.join(" ")
    }
}

/// Inodes of the sockets listening on `port` in a /proc/net/tcp table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            let inode = fields.get(9)?.parse::<u64>().ok()?;
            let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (*state == "0A" && local_port == port && inode != 0).then_some(inode)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1388 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 5000), vec![12345]);
        assert!(listening_inodes(table, 5001).is_empty());
    }

    #[test]
    fn finds_our_own_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(!is_free(port));
        let holder = holder(port).expect("the test process holds it");
        assert_eq!(holder.pid, std::process::id());
    }
}
