//! One module per subcommand, each gluing manifest, render and printer together.

pub mod doctor;
pub mod init;
pub mod link;
pub mod new;
pub mod rm;
pub mod sync;
pub mod templates;
