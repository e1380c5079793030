//! `--healthcheck`: GET `/readyz` on localhost for the container HEALTHCHECK (no curl in distroless).

use std::{io, net::Ipv4Addr, process::ExitCode, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

const TIMEOUT: Duration = Duration::from_secs(3);

/// Exit code 0 when `/readyz` on `port` answers 200, 1 otherwise.
pub async fn run(port: u16) -> ExitCode {
    match check(port).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("healthcheck failed: {error}");
            ExitCode::FAILURE
        }
    }
}

pub async fn check(port: u16) -> io::Result<()> {
    let status = tokio::time::timeout(TIMEOUT, readyz_status(port))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer within 3s"))??;
    if status == 200 {
        Ok(())
    } else {
        Err(io::Error::other(format!("/readyz answered {status}")))
    }
}

async fn readyz_status(port: u16) -> io::Result<u16> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
    stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut line = String::new();
    // Bounded so a misbehaving peer cannot make us buffer forever.
    BufReader::new(stream.take(1024))
        .read_line(&mut line)
        .await?;
    // "HTTP/1.1 200 OK"
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status))) if version.starts_with("HTTP/") => Ok(status),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected status line {:?}", line.trim_end()),
        )),
    }
}
