//! What the supervisor runs: an instance of the plan (or the private broker, or
//! Prometheus) with the command line that starts it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::plan::Instance;

/// How a slot is started: resolved once, before anything starts.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
}

/// One thing to supervise: a service instance, or a private server (broker, database).
#[derive(Debug, Clone)]
pub struct Unit {
    pub instance: Instance,
    pub launch: Launch,
    /// A private server msvc started for the services (`broker`, `database`): it starts
    /// before every service and stops after them.
    pub is_infrastructure: bool,
}
