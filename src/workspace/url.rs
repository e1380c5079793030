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
