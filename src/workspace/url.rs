//! What msvc reads from URLs: the parts of an AMQP URL (`amqp://user:pass@host:port/vhost`)
//! (where the broker is, for `up` and `doctor`; how to log in, for `msvc test`'s probes),
//! and percent-decoding.

/// An `amqp://` or `amqps://` URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpUrl {
    pub tls: bool,
    /// Without the brackets of an IPv6 address; empty when the URL names no host.
    pub host: String,
    /// The URL's port, or the scheme's: 5672, or 5671 for `amqps`.
    pub port: u16,
    pub user: String,
    pub password: String,
    /// `/` when the URL has none.
    pub vhost: String,
}

impl AmqpUrl {
    pub fn parse(url: &str) -> Option<Self> {
        let (tls, rest) = match url.strip_prefix("amqp://") {
            Some(rest) => (false, rest),
            None => (true, url.strip_prefix("amqps://")?),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (auth, host_port) = authority
            .rsplit_once('@')
            .unwrap_or(("guest:guest", authority));
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let default_port = if tls { 5671 } else { 5672 };
        let (host, port) = if let Some(inner) = host_port.strip_prefix('[') {
            let (host, after) = inner.split_once(']')?;
            match after.strip_prefix(':') {
                Some(port) => (host, port.parse().ok()?),
                None if after.is_empty() => (host, default_port),
                None => return None,
            }
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().ok()?),
                None => (host_port, default_port),
            }
        };
        let vhost = path.split('?').next().unwrap_or_default();
        Some(Self {
            tls,
            host: host.to_string(),
            port,
            user: percent_decode(user.as_bytes()),
            password: percent_decode(password.as_bytes()),
            vhost: if vhost.is_empty() {
                "/".to_string()
            } else {
                percent_decode(vhost.as_bytes())
            },
        })
    }

    /// `host:port`, with an IPv6 host in brackets.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A `postgres://` (or `postgresql://`) URL, taken apart: where the services' database
/// server is (`[database] url`), and which database to connect to first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrl {
    /// Without the brackets of an IPv6 address; `127.0.0.1` when the URL names no host.
    pub host: String,
    /// The URL's port, or 5432.
    pub port: u16,
    /// `postgres` when the URL names none.
    pub user: String,
    pub password: String,
    /// `postgres` when the URL names none.
    pub database: String,
    /// What follows `?`, kept for the services' URLs (`sslmode=require`).
    pub query: String,
}

impl PgUrl {
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (auth, host_port) = authority.rsplit_once('@').unwrap_or(("", authority));
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let (host, port) = if let Some(inner) = host_port.strip_prefix('[') {
            let (host, after) = inner.split_once(']')?;
            match after.strip_prefix(':') {
                Some(port) => (host, port.parse().ok()?),
                None if after.is_empty() => (host, 5432),
                None => return None,
            }
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().ok()?),
                None => (host_port, 5432),
            }
        };
        if host.contains(['/', ' ']) || path.contains('/') {
            return None;
        }
        let or = |value: String, default: &str| {
            if value.is_empty() {
                default.to_owned()
            } else {
                value
            }
        };
        Some(Self {
            host: or(host.to_owned(), "127.0.0.1"),
            port,
            user: or(percent_decode(user.as_bytes()), "postgres"),
            password: percent_decode(password.as_bytes()),
            database: or(percent_decode(path.as_bytes()), "postgres"),
            query: query.to_owned(),
        })
    }

    /// `host:port`, with an IPv6 host in brackets.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The same server and login, for database `database`.
    pub fn with_database(&self, database: &str) -> String {
        let auth = match (self.user.as_str(), self.password.as_str()) {
            (user, "") => format!("{}@", percent_encode(user)),
            (user, password) => format!("{}:{}@", percent_encode(user), percent_encode(password)),
        };
        let query = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        };
        format!("postgres://{auth}{}/{database}{query}", self.address())
    }
}

/// Percent-encodes what a URL's user or password may not hold as it is.
fn percent_encode(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Percent-decoding, as URLs and gRPC's `grpc-message` use it; a `%` not followed by two
/// hex digits stays as it is.
pub fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Some(b) = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls() {
        let u = PgUrl::parse("postgres://postgres@127.0.0.1:5432/postgres").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 5432));
        assert_eq!(
            (u.user.as_str(), u.database.as_str()),
            ("postgres", "postgres")
        );
        assert_eq!(
            u.with_database("shop_user_api"),
            "postgres://postgres@127.0.0.1:5432/shop_user_api"
        );
        let u = PgUrl::parse("postgresql://app:p%40ss@db.internal/main?sslmode=require").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("db.internal", 5432));
        assert_eq!(u.password, "p@ss");
        assert_eq!(
            u.with_database("shop_orders"),
            "postgres://app:p%40ss@db.internal:5432/shop_orders?sslmode=require"
        );
        let u = PgUrl::parse("postgres://[::1]:6000").unwrap();
        assert_eq!(
            (u.address().as_str(), u.database.as_str()),
            ("[::1]:6000", "postgres")
        );
        for bad in [
            "mysql://h/d",
            "postgres://h:port/d",
            "postgres://h/a/b",
            "nonsense",
        ] {
            assert!(PgUrl::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn parses_urls() {
        let u = AmqpUrl::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(
            u,
            AmqpUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 5672,
                user: "guest".into(),
                password: "guest".into(),
                vhost: "/".into()
            }
        );
        let u = AmqpUrl::parse("amqp://me:p%40ss@broker/shop").unwrap();
        assert_eq!(
            (u.port, u.password.as_str(), u.vhost.as_str()),
            (5672, "p@ss", "shop")
        );
        assert_eq!(AmqpUrl::parse("amqp://broker").unwrap().vhost, "/");
        let u = AmqpUrl::parse("amqps://h/v").unwrap();
        assert_eq!((u.tls, u.address()), (true, "h:5671".to_string()));
        let u = AmqpUrl::parse("amqp://u:p@[::1]:5673/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.address()),
            ("::1", "[::1]:5673".to_string())
        );
        assert_eq!(AmqpUrl::parse("amqp://[::1]").unwrap().port, 5672);
        assert!(AmqpUrl::parse("http://x").is_none());
        assert!(AmqpUrl::parse("nonsense").is_none());
        assert!(AmqpUrl::parse("amqp://h:port/").is_none());
    }

    #[test]
    fn percent_decodes() {
        assert_eq!(percent_decode(b"%zz%41"), "%zzA");
    }
}
