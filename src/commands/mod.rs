//! One module per subcommand, each gluing manifest, render and printer together.

pub mod check;
pub mod deploy;
pub mod doctor;
pub mod graph;
pub mod init;
pub mod link;
pub mod logs;
pub mod new;
pub mod restart;
pub mod rm;
pub mod status;
pub mod sync;
pub mod templates;
pub mod test;
pub mod up;
pub mod upgrade;
