//! `msvc test`: each service's own tests, then contract tests against the running
//! system, gathered into one report.

pub mod amqp;
pub mod cases;
pub mod contract;
pub mod grpc;
pub mod own;
pub mod report;
