//! Logging setup: human-readable text by default, one JSON object per line with `LOG_FORMAT=json`.

use std::{fmt, io::IsTerminal, str::FromStr};

use tracing_subscriber::EnvFilter;

/// Output format of the logs, chosen with `LOG_FORMAT`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("expected `text` or `json`, got `{s}`")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// Checks a `RUST_LOG`-style filter so a typo is reported at startup instead of being ignored.
pub fn parse_filter(filter: &str) -> Result<String, String> {
    EnvFilter::try_new(filter)
        .map(|_| filter.to_owned())
        .map_err(|e| e.to_string())
}

/// Installs the global subscriber; `filter` must have passed [`parse_filter`].
pub fn init(format: LogFormat, filter: &str) {
    let builder = tracing_subscriber::fmt().with_env_filter(EnvFilter::new(filter));
    // A second init (e.g. several tests in one process) keeps the first subscriber, which is fine.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_formats_read_in_any_case_and_print_back() {
        assert_eq!("JSON".parse(), Ok(LogFormat::Json));
        assert_eq!("text".parse(), Ok(LogFormat::Text));
        let error = "xml".parse::<LogFormat>().expect_err("no such format");
        assert!(error.contains("`xml`"), "{error}");
        for format in [LogFormat::Text, LogFormat::Json] {
            assert_eq!(format.to_string().parse(), Ok(format));
        }
    }

    #[test]
    fn filters_are_checked() {
        assert_eq!(
            parse_filter("info,msvc_runtime=debug").as_deref(),
            Ok("info,msvc_runtime=debug")
        );
        assert!(parse_filter("info,[[").is_err());
    }
}
