//! The ports `msvc new` hands out: the one asked for when it is free, else the next one
//! the manifest does not use from the role's base, so output is deterministic.

use super::Workspace;
use crate::error::{Error, Result};

/// The first port of each role.
pub const REST_PORT_BASE: u16 = 8080;
pub const GRPC_PORT_BASE: u16 = 50051;
pub const ADMIN_PORT_BASE: u16 = 9100;

/// Hands out ports for one new service, none used twice.
pub struct PortPicker<'a> {
    ws: &'a Workspace,
    taken: Vec<u16>,
}

impl<'a> PortPicker<'a> {
    pub fn new(ws: &'a Workspace) -> Self {
        let taken = ws
            .manifest
            .used_ports()
            .iter()
            .map(|(p, _, _)| *p)
            .collect();
        Self { ws, taken }
    }

    /// `given` (from `flag`) when it is free, else the first free port from `base`.
    pub fn pick(&mut self, given: Option<u16>, base: u16, flag: &str) -> Result<u16> {
        let ws = self.ws;
        if let Some(port) = given {
            if port == 0 {
                return Err(Error::new(format!("{flag} 0 is not a fixed port"))
                    .hint("pick a port between 1024 and 65535"));
            }
            if let Some((_, owner, key)) = ws
                .manifest
                .used_ports()
                .into_iter()
                .find(|(p, _, _)| *p == port)
            {
                return Err(Error::new(format!(
                    "port {port} is already used by `{owner}` ({key})"
                ))
                .at(ws.locate(&["services", owner, key]))
                .hint(format!(
                    "choose another port, or leave {flag} out to get the next free one"
                )));
            }
            if self.taken.contains(&port) {
                return Err(
                    Error::new(format!("--port and --admin-port are both {port}"))
                        .hint("give them different ports"),
                );
            }
            self.taken.push(port);
            return Ok(port);
        }
        let port = (base..=u16::MAX)
            .find(|p| !self.taken.contains(p))
            .ok_or_else(|| Error::new(format!("no free port left above {base}")))?;
        self.taken.push(port);
        Ok(port)
    }
}
