//! The entry point of a service: `--healthcheck`, configuration, logs, signals, exit code.

use std::{future::Future, process::ExitCode};

use crate::{
    Error, config::ConfigError, config::Env, config::ServiceConfig, healthcheck, shutdown,
    shutdown::Shutdown, telemetry,
};

/// A service's whole configuration: what it reads from the environment, including the
/// [`ServiceConfig`] every service has.
pub trait Settings: Sized {
    fn from_env(env: &Env) -> Result<Self, ConfigError>;
    fn service(&self) -> &ServiceConfig;
}

/// Runs a service as its `main` does: with `--healthcheck`, probes the running instance's
/// `/readyz` (the container HEALTHCHECK, which has no curl); otherwise reads the
/// configuration (exit code 2 when malformed), sets up logs and runs `run` until SIGTERM
/// or SIGINT, exiting 1 if it fails.
pub async fn main<C, F, Fut>(run: F) -> ExitCode
where
    C: Settings,
    F: FnOnce(C, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let mut args = std::env::args();
    let program = args
        .next()
        .and_then(|p| {
            std::path::Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "service".to_owned());
    let healthcheck = match args.collect::<Vec<_>>().as_slice() {
        [] => false,
        [flag] if flag == "--healthcheck" => true,
        _ => {
            eprintln!("usage: {program} [--healthcheck]");
            return ExitCode::from(2);
        }
    };

    let config = match C::from_env(&Env::process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            // Docker reserves exit code 2 for health checks, so report plain failure there.
            return ExitCode::from(if healthcheck { 1 } else { 2 });
        }
    };
    if healthcheck {
        return healthcheck::run(config.service().readiness_port()).await;
    }

    let service = config.service();
    telemetry::init(service.log_format, &service.log_filter);
    match run(config, shutdown::on_signals()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "service failed");
            ExitCode::FAILURE
        }
    }
}
