//! The control socket of a running `msvc up` (`.msvc/control.sock`): one JSON request
//! per connection, answered with JSON lines until the last (`msvc restart`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use super::state::{ControlReply, ControlRequest};

/// Reads one request from each connection and hands it, with the connection to answer
/// on, to `on_request`; returns when `on_request` says no one listens any more.
pub fn serve(
    listener: &UnixListener,
    mut on_request: impl FnMut(ControlRequest, UnixStream) -> bool,
) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        let Ok(reader) = stream.try_clone() else {
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        if BufReader::new(reader).read_line(&mut line).is_err() {
            continue;
        }
        match serde_json::from_str::<ControlRequest>(&line) {
            Ok(request) => {
                if !on_request(request, stream) {
                    break;
                }
            }
            Err(e) => reply(&stream, "error", &format!("bad request: {e}")),
        }
    }
}

/// Writes one answer line; a client that went away is no error of the run.
pub fn reply(stream: &UnixStream, status: &str, message: &str) {
    let reply = ControlReply {
        status: status.to_string(),
        message: message.to_string(),
    };
    let mut line = serde_json::to_vec(&reply).expect("plain data serialises");
    line.push(b'\n');
    let mut stream = stream;
    let _ = stream.write_all(&line);
}
