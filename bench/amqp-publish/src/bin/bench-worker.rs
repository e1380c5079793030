//! bench-worker: the example's email-worker, run the way its `main.rs` runs it, except
//! that it consumes the queue named by `BENCH_QUEUE` with the `user_message` route.
//!
//! `user_message` is shared with whoever else uses the broker (tests of the example
//! system publish and consume there), so the bench gives the worker a queue of its own.
//! Everything else (config from the environment, logging, metrics, health, the
//! consumer) is the generated worker's library code.

use std::process::ExitCode;

use email_worker::{
    config::{Config, QueueConfig},
    routes::Route,
    shutdown, telemetry,
};

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(queue) = std::env::var("BENCH_QUEUE") else {
        eprintln!("usage: BENCH_QUEUE=QUEUE bench-worker");
        return ExitCode::from(2);
    };
    let mut config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    config.queues = vec![QueueConfig {
        name: queue,
        route: Route::UserMessage,
    }];
    telemetry::init(config.log_format, &config.log_filter);
    match email_worker::run(config, shutdown::on_signals()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: service failed: {error}");
            ExitCode::FAILURE
        }
    }
}
