//! The HTTP client of the contract tests, on ureq: one request to a service on
//! 127.0.0.1, its status and body, whatever the status.

use std::io;
use std::time::Duration;

/// The longest a request may take, from connecting to the end of the body.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP/1.1 exchange with `127.0.0.1:port`: status and body (chunked bodies joined).
/// `body` is sent as JSON; without one, the request has an empty body.
pub fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> io::Result<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        // A 4xx or 5xx is an answer the contract judges, not a transport error.
        .http_status_as_error(false)
        // A redirect is the route answering; following it would test another route.
        .max_redirects(0)
        .user_agent("msvc-test")
        // A case in contracts.toml may use any method the service serves.
        .allow_non_standard_methods(true)
        .build()
        .into();
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .body(body.unwrap_or(""))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut response = agent.run(request).map_err(ureq::Error::into_io)?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_vec()
        .map_err(ureq::Error::into_io)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The start of a response body, for a report line.
pub fn excerpt(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return "(empty body)".to_string();
    }
    let mut end = body.len().min(200);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    if end < body.len() {
        format!("{}...", &body[..end])
    } else {
        body.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A server on a free port that answers one request with `response` and hands back
    /// the request it read.
    fn answer_once(response: &'static str) -> (u16, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                head.push_str(&line);
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|n| n.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            reader.get_mut().write_all(response.as_bytes()).unwrap();
            head + &String::from_utf8(body).unwrap()
        });
        (port, server)
    }

    #[test]
    fn dechunks() {
        let (port, server) = answer_once(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        );
        assert_eq!(
            http(port, "GET", "/a", None).unwrap(),
            (200, "hello world".to_string())
        );
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /a HTTP/1.1\r\n"), "{request}");
    }

    #[test]
    fn sends_json_and_reads_any_status() {
        let (port, server) = answer_once(
            "HTTP/1.1 404 Not Found\r\nContent-Length: 26\r\nConnection: close\r\n\r\n{\"error\":\"user not found\"}",
        );
        assert_eq!(
            http(
                port,
                "POST",
                "/user/1/messages",
                Some(r#"{"message":"hi"}"#)
            )
            .unwrap(),
            (404, r#"{"error":"user not found"}"#.to_string())
        );
        let request = server.join().unwrap().to_ascii_lowercase();
        assert!(
            request.contains("content-type: application/json\r\n"),
            "{request}"
        );
        assert!(request.contains("user-agent: msvc-test\r\n"), "{request}");
        assert!(
            request.ends_with("\r\n\r\n{\"message\":\"hi\"}"),
            "{request}"
        );
    }

    #[test]
    fn a_redirect_is_an_answer() {
        let (port, _server) = answer_once(
            "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(http(port, "GET", "/", None).unwrap().0, 302);
    }

    #[test]
    fn nothing_listening_is_an_error() {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        assert!(http(port, "GET", "/", None).is_err());
    }
}
