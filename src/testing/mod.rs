//! `msvc test`: each service's own tests, then contract tests against the running
//! system, gathered into one report.

pub mod amqp;
pub mod cases;
pub mod contract;
pub mod grpc;
pub mod grpc_call;
pub mod health;
pub mod http;
pub mod own;
pub mod queue_probe;
pub mod report;
pub mod suite;
