//! End-to-end tests of the `msvc` binary, run as a user would run it.

mod bad_input;
mod check;
mod commands;
mod deploy;
mod example;
mod generated;
mod layers;
mod layout;
mod runtime_features;
mod snapshots;
mod support;
mod test_command;
mod up;
mod upgrade;
