//! Just enough AMQP 0-9-1 for `msvc test`'s queue probe: connect with PLAIN, declare
//! queues, publish a message with headers and `reply_to`, and poll a queue with
//! `basic.get`. Blocking, one channel, no heartbeats; anything unexpected is an error.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::workspace::url::AmqpUrl;

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;
const CHANNEL: u16 = 1;

/// A connection with one open channel.
pub struct AmqpClient {
    stream: TcpStream,
    frame_max: u32,
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn short(buf: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(255)];
    buf.push(bytes.len() as u8);
    buf.extend_from_slice(bytes);
}

fn long(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

/// A field table of string values.
fn table(buf: &mut Vec<u8>, entries: &[(&str, &str)]) {
    let mut t = Vec::new();
    for (k, v) in entries {
        short(&mut t, k);
        t.push(b'S');
        long(&mut t, v.as_bytes());
    }
    long(buf, &t);
}

/// Reads what a method's arguments hold, in order.
struct Args<'a>(&'a [u8]);

impl Args<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(bad("short AMQP frame"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u16(&mut self) -> io::Result<u16> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn short(&mut self) -> io::Result<String> {
        let n = usize::from(self.take(1)?[0]);
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

impl AmqpClient {
    /// Connects, logs in and opens channel 1.
    pub fn connect(url: &AmqpUrl, timeout: Duration) -> io::Result<Self> {
        let addr = (url.host.as_str(), url.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| bad(format!("cannot resolve {}", url.host)))?;
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut c = Self {
            stream,
            frame_max: 131_072,
        };
        c.stream.write_all(b"AMQP\x00\x00\x09\x01")?;
        c.expect(0, 10, 10)?;
        let mut args = Vec::new();
        table(&mut args, &[("product", "msvc test")]);
        short(&mut args, "PLAIN");
        long(
            &mut args,
            format!("\0{}\0{}", url.user, url.password).as_bytes(),
        );
        short(&mut args, "en_US");
        c.method(0, 10, 11, &args)?;
        let tune = c.expect(0, 10, 30)?;
        let mut t = Args(&tune);
        let channel_max = t.u16()?;
        let frame_max = t.u32()?;
        if frame_max != 0 {
            c.frame_max = c.frame_max.min(frame_max);
        }
        let mut args = Vec::new();
        args.extend_from_slice(&channel_max.to_be_bytes());
        args.extend_from_slice(&c.frame_max.to_be_bytes());
        args.extend_from_slice(&0u16.to_be_bytes());
        c.method(0, 10, 31, &args)?;
        let mut args = Vec::new();
        short(&mut args, &url.vhost);
        short(&mut args, "");
        args.push(0);
        c.method(0, 10, 40, &args)?;
        c.expect(0, 10, 41)?;
        c.method(CHANNEL, 20, 10, &[0])?;
        c.expect(CHANNEL, 20, 11)?;
        Ok(c)
    }

    /// Declares `queue` durable with no arguments, as the services declare it; an empty
    /// name asks the broker for an exclusive, auto-deleted queue and returns its name.
    pub fn declare(&mut self, queue: &str) -> io::Result<String> {
        let mut args = vec![0, 0];
        short(&mut args, queue);
        // durable = 2; exclusive = 4; auto-delete = 8
        args.push(if queue.is_empty() { 4 | 8 } else { 2 });
        table(&mut args, &[]);
        self.method(CHANNEL, 50, 10, &args)?;
        let ok = self.expect(CHANNEL, 50, 11)?;
        Args(&ok).short()
    }

    /// Deletes `queue`, whatever it holds.
    pub fn delete(&mut self, queue: &str) -> io::Result<()> {
        let mut args = vec![0, 0];
        short(&mut args, queue);
        args.push(0);
        self.method(CHANNEL, 50, 40, &args)?;
        self.expect(CHANNEL, 50, 41).map(|_| ())
    }

    /// Publishes `body` to `queue` through the default exchange, with string `headers`,
    /// `reply_to`, a `correlation_id` and an expiration in milliseconds.
    pub fn publish(
        &mut self,
        queue: &str,
        body: &[u8],
        headers: &[(&str, &str)],
        reply_to: &str,
        correlation_id: &str,
        expiration_ms: u64,
    ) -> io::Result<()> {
        let mut args = vec![0, 0];
        short(&mut args, "");
        short(&mut args, queue);
        args.push(0);
        self.method(CHANNEL, 60, 40, &args)?;
        let mut header = Vec::new();
        header.extend_from_slice(&60u16.to_be_bytes());
        header.extend_from_slice(&0u16.to_be_bytes());
        header.extend_from_slice(&(body.len() as u64).to_be_bytes());
        // content-type, headers, correlation-id, reply-to, expiration
        let flags: u16 = (1 << 15) | (1 << 13) | (1 << 10) | (1 << 9) | (1 << 8);
        header.extend_from_slice(&flags.to_be_bytes());
        short(&mut header, "application/json");
        table(&mut header, headers);
        short(&mut header, correlation_id);
        short(&mut header, reply_to);
        short(&mut header, &expiration_ms.to_string());
        self.frame(FRAME_HEADER, CHANNEL, &header)?;
        let chunk = (self.frame_max as usize).saturating_sub(8).max(1);
        for part in body.chunks(chunk) {
            self.frame(FRAME_BODY, CHANNEL, part)?;
        }
        Ok(())
    }

    /// Takes one message from `queue` (acknowledged at once), or none when it is empty.
    pub fn get(&mut self, queue: &str) -> io::Result<Option<Vec<u8>>> {
        let mut args = vec![0, 0];
        short(&mut args, queue);
        args.push(1); // no-ack
        self.method(CHANNEL, 60, 70, &args)?;
        loop {
            let (kind, _, payload) = self.read_frame()?;
            if kind != FRAME_METHOD {
                continue;
            }
            let mut a = Args(&payload);
            match (a.u16()?, a.u16()?) {
                (60, 72) => return Ok(None),
                (60, 71) => break,
                (class, method) => return Err(Self::unexpected(class, method, &payload)),
            }
        }
        let (kind, _, header) = self.read_frame()?;
        if kind != FRAME_HEADER {
            return Err(bad("expected a content header"));
        }
        let mut h = Args(&header);
        h.take(4)?;
        let size = usize::try_from(h.u64()?).map_err(|_| bad("message too large"))?;
        let mut body = Vec::with_capacity(size);
        while body.len() < size {
            let (kind, _, part) = self.read_frame()?;
            if kind != FRAME_BODY {
                return Err(bad("expected a content body"));
            }
            body.extend_from_slice(&part);
        }
        Ok(Some(body))
    }

    /// Closes the connection politely (the broker then drops the exclusive queues).
    pub fn close(mut self) {
        let mut args = Vec::new();
        args.extend_from_slice(&200u16.to_be_bytes());
        short(&mut args, "OK");
        args.extend_from_slice(&[0, 0, 0, 0]);
        if self.method(0, 10, 50, &args).is_ok() {
            let _ = self.expect(0, 10, 51);
        }
    }

    fn method(&mut self, channel: u16, class: u16, method: u16, args: &[u8]) -> io::Result<()> {
        let mut payload = Vec::with_capacity(4 + args.len());
        payload.extend_from_slice(&class.to_be_bytes());
        payload.extend_from_slice(&method.to_be_bytes());
        payload.extend_from_slice(args);
        self.frame(FRAME_METHOD, channel, &payload)
    }

    fn frame(&mut self, kind: u8, channel: u16, payload: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(8 + payload.len());
        frame.push(kind);
        frame.extend_from_slice(&channel.to_be_bytes());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        frame.push(FRAME_END);
        self.stream.write_all(&frame)
    }

    fn read_frame(&mut self) -> io::Result<(u8, u16, Vec<u8>)> {
        loop {
            let mut head = [0u8; 7];
            self.stream.read_exact(&mut head)?;
            let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
            let mut payload = vec![0u8; size + 1];
            self.stream.read_exact(&mut payload)?;
            if payload.pop() != Some(FRAME_END) {
                return Err(bad("bad AMQP frame end"));
            }
            if head[0] == FRAME_HEARTBEAT {
                continue;
            }
            return Ok((head[0], u16::from_be_bytes([head[1], head[2]]), payload));
        }
    }

    /// Reads the next method frame, which must be `class.method`.
    fn expect(&mut self, channel: u16, class: u16, method: u16) -> io::Result<Vec<u8>> {
        loop {
            let (kind, ch, payload) = self.read_frame()?;
            if kind != FRAME_METHOD || ch != channel && ch != 0 {
                continue;
            }
            let mut a = Args(&payload);
            let (c, m) = (a.u16()?, a.u16()?);
            if (c, m) == (class, method) {
                return Ok(a.0.to_vec());
            }
            return Err(Self::unexpected(c, m, &payload));
        }
    }

    fn unexpected(class: u16, method: u16, payload: &[u8]) -> io::Error {
        // connection.close or channel.close: the broker says why.
        if (class, method) == (10, 50) || (class, method) == (20, 40) {
            let mut a = Args(&payload[4..]);
            let code = a.u16().unwrap_or(0);
            let text = a.short().unwrap_or_default();
            return bad(format!("the broker closed the connection: {code} {text}"));
        }
        bad(format!("unexpected AMQP method {class}.{method}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the real broker at 127.0.0.1:5672 (skipped when there is none, outside CI).
    #[test]
    fn publishes_and_gets_from_the_real_broker() {
        let url = AmqpUrl::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        let Ok(mut client) = AmqpClient::connect(&url, Duration::from_secs(2)) else {
            assert!(
                std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false"),
                "RabbitMQ at 127.0.0.1:5672 is required under CI"
            );
            eprintln!(
                "\n!!! SKIPPING publishes_and_gets_from_the_real_broker: no RabbitMQ at 127.0.0.1:5672 !!!\n"
            );
            return;
        };
        let queue = client.declare("").unwrap();
        assert!(queue.starts_with("amq.gen-"), "{queue}");
        assert_eq!(client.get(&queue).unwrap(), None);
        let body = vec![b'x'; 300_000];
        client
            .publish(
                &queue,
                &body,
                &[("x-msvc-probe", "1")],
                &queue,
                "id-1",
                10_000,
            )
            .unwrap();
        let mut got = None;
        for _ in 0..50 {
            got = client.get(&queue).unwrap();
            if got.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(got.as_deref(), Some(&body[..]));
        let durable = format!("msvc-amqp-test-{}", std::process::id());
        assert_eq!(client.declare(&durable).unwrap(), durable);
        client.delete(&durable).unwrap();
        // A queue declared with other arguments is refused, and the broker says why.
        let err = client.declare(&queue).unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
        client.close();
    }
}
