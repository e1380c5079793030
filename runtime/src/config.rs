//! Configuration from environment variables: every service's common settings
//! ([`ServiceConfig`]) and the reader a service uses for its own ([`Env`]).
//!
//! Unset and empty variables both mean "use the default"; a malformed one is a
//! [`ConfigError`] naming the variable, reported at start instead of being ignored.

use std::{env::VarError, fmt, net::IpAddr, sync::Arc, time::Duration};

use crate::{shutdown, telemetry};

/// A malformed environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for ConfigError {}

type Lookup = dyn Fn(&str) -> Result<String, VarError> + Send + Sync;

/// Where variables are read from: the process environment, or a map in tests.
#[derive(Clone)]
pub struct Env {
    lookup: Arc<Lookup>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env")
    }
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self::from_lookup(|name| std::env::var(name))
    }

    /// Variables read through `lookup`, so tests need no real environment.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Result<String, VarError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            lookup: Arc::new(lookup),
        }
    }

    /// Exactly these variables, as `(name, value)` pairs.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let vars: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::from_lookup(move |name| vars.get(name).cloned().ok_or(VarError::NotPresent))
    }

    /// The raw value of `variable`, `None` when unset or empty.
    pub fn get(&self, variable: &'static str) -> Result<Option<String>, ConfigError> {
        match (self.lookup)(variable) {
            Ok(value) if value.is_empty() => Ok(None),
            Ok(value) => Ok(Some(value)),
            Err(VarError::NotPresent) => Ok(None),
            Err(VarError::NotUnicode(_)) => Err(ConfigError {
                variable,
                reason: "not valid UTF-8".to_owned(),
            }),
        }
    }

    /// `variable` parsed by `parse`, or `default` when unset or empty.
    pub fn parse_or<T>(
        &self,
        variable: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.get(variable)? {
            None => Ok(default),
            Some(value) => parse(&value).map_err(|reason| ConfigError { variable, reason }),
        }
    }

    /// A port number.
    pub fn port(&self, variable: &'static str, default: u16) -> Result<u16, ConfigError> {
        self.parse_or(variable, default, parse_port)
    }

    /// A duration like `500ms`, `10s` or `2m`.
    pub fn duration(
        &self,
        variable: &'static str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        self.parse_or(variable, default, shutdown::parse_duration)
    }

    /// A number above zero.
    pub fn positive<T>(&self, variable: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + Default,
    {
        self.parse_or(variable, default, parse_positive)
    }

    /// A string, taken as it is.
    pub fn string(&self, variable: &'static str, default: &str) -> Result<String, ConfigError> {
        Ok(self.get(variable)?.unwrap_or_else(|| default.to_owned()))
    }
}

/// `url` without its password, for messages: `amqp://guest@host/%2f`.
#[cfg(feature = "amqp")]
pub(crate) fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Parses a port number (0-65535).
pub fn parse_port(value: &str) -> Result<u16, String> {
    value
        .parse()
        .map_err(|_| format!("expected a port number (0-65535), got `{value}`"))
}

/// Parses a number above zero.
pub fn parse_positive<T>(value: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + Default,
{
    match value.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(format!("expected a positive whole number, got `{value}`")),
    }
}

/// What services.toml gives a service, used where its variables are unset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    /// The main port (HTTP for REST, gRPC); `None` for a worker.
    pub port: Option<u16>,
    /// The admin HTTP port (`/healthz`, `/readyz`, `/metrics`) of gRPC services and workers.
    pub admin_port: Option<u16>,
    /// How long in-flight work may take once shutdown starts.
    pub shutdown_grace: Duration,
}

/// The settings every service has: where it listens, its shutdown grace, its logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// `HOST`.
    pub host: IpAddr,
    /// `PORT`; `None` for a worker.
    pub port: Option<u16>,
    /// `ADMIN_PORT`; `None` when the main port serves the admin endpoints.
    pub admin_port: Option<u16>,
    /// `SHUTDOWN_GRACE`.
    pub shutdown_grace: Duration,
    /// `LOG_FORMAT`: `text` or `json`.
    pub log_format: telemetry::LogFormat,
    /// `RUST_LOG`.
    pub log_filter: String,
}

impl ServiceConfig {
    /// The defaults alone, as if no variable were set.
    pub fn new(defaults: Defaults) -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: defaults.port,
            admin_port: defaults.admin_port,
            shutdown_grace: defaults.shutdown_grace,
            log_format: telemetry::LogFormat::Text,
            log_filter: "info".to_owned(),
        }
    }

    pub fn from_env(env: &Env, defaults: Defaults) -> Result<Self, ConfigError> {
        let default = Self::new(defaults);
        Ok(Self {
            host: env.parse_or("HOST", default.host, |v| {
                v.parse()
                    .map_err(|_| format!("expected an IP address, got `{v}`"))
            })?,
            port: match default.port {
                Some(port) => Some(env.port("PORT", port)?),
                None => None,
            },
            admin_port: match default.admin_port {
                Some(port) => Some(env.port("ADMIN_PORT", port)?),
                None => None,
            },
            shutdown_grace: env.duration("SHUTDOWN_GRACE", default.shutdown_grace)?,
            log_format: env.parse_or("LOG_FORMAT", default.log_format, str::parse)?,
            log_filter: env.parse_or("RUST_LOG", default.log_filter, telemetry::parse_filter)?,
        })
    }

    /// The port `--healthcheck` probes for `/readyz`: the admin port, else the main one.
    pub fn readiness_port(&self) -> u16 {
        self.admin_port.or(self.port).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "amqp")]
    fn urls_in_messages_hide_the_password() {
        assert_eq!(
            without_password("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest@host:5672/%2f"
        );
        assert_eq!(without_password("amqp://host"), "amqp://host");
    }

    const DEFAULTS: Defaults = Defaults {
        port: Some(50051),
        admin_port: Some(9100),
        shutdown_grace: Duration::from_secs(10),
    };

    #[test]
    fn defaults() {
        let config = ServiceConfig::from_env(&Env::from_pairs(&[]), DEFAULTS).unwrap();
        assert_eq!(config.port, Some(50051));
        assert_eq!(config.admin_port, Some(9100));
        assert_eq!(config.host.to_string(), "127.0.0.1");
        assert_eq!(config.shutdown_grace, Duration::from_secs(10));
        assert_eq!(config.log_format, telemetry::LogFormat::Text);
        assert_eq!(config.readiness_port(), 9100);
    }

    #[test]
    fn overrides() {
        let env = Env::from_pairs(&[
            ("HOST", "0.0.0.0"),
            ("PORT", "6000"),
            ("ADMIN_PORT", "6001"),
            ("SHUTDOWN_GRACE", "500ms"),
            ("LOG_FORMAT", "json"),
        ]);
        let config = ServiceConfig::from_env(&env, DEFAULTS).unwrap();
        assert_eq!(config.host.to_string(), "0.0.0.0");
        assert_eq!(config.port, Some(6000));
        assert_eq!(config.admin_port, Some(6001));
        assert_eq!(config.shutdown_grace, Duration::from_millis(500));
        assert_eq!(config.log_format, telemetry::LogFormat::Json);
    }

    #[test]
    fn empty_means_default_and_a_service_without_a_port_reads_none() {
        let env = Env::from_pairs(&[("PORT", ""), ("ADMIN_PORT", "x")]);
        let worker = Defaults {
            port: None,
            ..DEFAULTS
        };
        let config = ServiceConfig::from_env(&env, worker).expect_err("ADMIN_PORT=x");
        assert_eq!(config.variable, "ADMIN_PORT");
        let env = Env::from_pairs(&[("PORT", "")]);
        let config = ServiceConfig::from_env(&env, DEFAULTS).unwrap();
        assert_eq!(config.port, Some(50051));
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (variable, value) in [
            ("HOST", "nowhere"),
            ("PORT", "70000"),
            ("ADMIN_PORT", "x"),
            ("SHUTDOWN_GRACE", "10"),
            ("LOG_FORMAT", "xml"),
            ("RUST_LOG", "info,[["),
        ] {
            let error = ServiceConfig::from_env(&Env::from_pairs(&[(variable, value)]), DEFAULTS)
                .expect_err(value);
            assert_eq!(error.variable, variable);
            assert!(error.to_string().contains(variable));
        }
    }

    #[test]
    fn positive_numbers_only() {
        let env = Env::from_pairs(&[("N", "0"), ("M", "7")]);
        assert!(env.positive::<u16>("N", 1).is_err());
        assert_eq!(env.positive::<u16>("M", 1), Ok(7));
        assert_eq!(env.positive::<u16>("UNSET", 3), Ok(3));
    }
}
