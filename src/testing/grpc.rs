//! Just enough of a gRPC client for the contract tests: unary calls with raw protobuf
//! messages over HTTP/2 with prior knowledge (h2c), and the server reflection requests
//! that say which services and methods a server has.
//!
//! msvc is synchronous; a [`Client`] owns a current-thread tokio runtime that exists
//! only for these calls, and every call is bounded by [`TIMEOUT`].
//!
//! This stays on h2 rather than tonic: a contract call sends one empty message and
//! reads only the status, and reflection needs the few messages declared below. tonic
//! would bring hyper, tower and tonic-reflection for that, plus a bytes codec, and
//! would fold a refused connection, a port without h2c and a plain HTTP answer into
//! generic statuses, where this client words each for the report. The in-process
//! server of the tests must send trailers-only answers, which it does on h2 either way.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use prost_types::FileDescriptorProto;

use crate::workspace::url::percent_decode;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// `grpc-status` of a method the server does not serve.
pub const UNIMPLEMENTED: i32 = 12;

/// The messages of `grpc/reflection/v1/reflection.proto` that msvc sends and reads
/// (v1alpha has the same ones, field for field).
pub mod reflection {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ServerReflectionRequest {
        #[prost(string, tag = "1")]
        pub host: String,
        #[prost(oneof = "MessageRequest", tags = "3, 4, 7")]
        pub message_request: Option<MessageRequest>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum MessageRequest {
        #[prost(string, tag = "3")]
        FileByFilename(String),
        #[prost(string, tag = "4")]
        FileContainingSymbol(String),
        #[prost(string, tag = "7")]
        ListServices(String),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ServerReflectionResponse {
        #[prost(string, tag = "1")]
        pub valid_host: String,
        #[prost(message, optional, tag = "2")]
        pub original_request: Option<ServerReflectionRequest>,
        #[prost(oneof = "MessageResponse", tags = "4, 6, 7")]
        pub message_response: Option<MessageResponse>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum MessageResponse {
        #[prost(message, tag = "4")]
        FileDescriptorResponse(FileDescriptorResponse),
        #[prost(message, tag = "6")]
        ListServicesResponse(ListServiceResponse),
        #[prost(message, tag = "7")]
        ErrorResponse(ErrorResponse),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FileDescriptorResponse {
        /// Serialized `google.protobuf.FileDescriptorProto` messages.
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub file_descriptor_proto: Vec<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListServiceResponse {
        #[prost(message, repeated, tag = "1")]
        pub service: Vec<ServiceResponse>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ServiceResponse {
        /// Full name of a service, `user_service.v1.UserService`.
        #[prost(string, tag = "1")]
        pub name: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ErrorResponse {
        #[prost(int32, tag = "1")]
        pub error_code: i32,
        #[prost(string, tag = "2")]
        pub error_message: String,
    }
}

use reflection::{MessageRequest, MessageResponse, ServerReflectionRequest};

/// What a server answered to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `grpc-status`, from the trailers or, for a trailers-only answer, the headers.
    pub status: i32,
    /// `grpc-message`, percent-decoded.
    pub message: String,
    /// The response messages, unframed.
    pub messages: Vec<Bytes>,
}

/// What server reflection answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Reflection {
    Files(Vec<FileDescriptorProto>),
    Services(Vec<String>),
    /// The server's `ErrorResponse`, e.g. `NOT_FOUND` for an unknown symbol.
    Error {
        code: i32,
        message: String,
    },
    /// The server serves neither `grpc.reflection.v1` nor `v1alpha`.
    Unavailable,
}

pub struct Client {
    runtime: tokio::runtime::Runtime,
}

impl Client {
    pub fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Self { runtime })
    }

    /// One call of `path` (`/package.Service/Method`) on `127.0.0.1:port`, sending
    /// `messages` (encoded protobuf) and half-closing.
    pub fn call(&self, port: u16, path: &str, messages: &[Vec<u8>]) -> Result<Answer, String> {
        self.runtime.block_on(async {
            match tokio::time::timeout(TIMEOUT, exchange(port, path, messages)).await {
                Ok(answer) => answer,
                Err(_) => Err(format!("no answer within {}s", TIMEOUT.as_secs())),
            }
        })
    }

    /// One reflection request; `grpc.reflection.v1` first, then `v1alpha` when the
    /// server does not serve v1.
    pub fn reflect(&self, port: u16, request: MessageRequest) -> Result<Reflection, String> {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        }
        .encode_to_vec();
        for version in ["v1", "v1alpha"] {
            let path = format!("/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo");
            let answer = self.call(port, &path, std::slice::from_ref(&request))?;
            if answer.status == UNIMPLEMENTED {
                continue;
            }
            if answer.status != 0 {
                return Err(format!(
                    "reflection answered {}",
                    describe_status(answer.status, &answer.message)
                ));
            }
            let first = answer
                .messages
                .first()
                .ok_or_else(|| "reflection answered no message".to_string())?;
            return decode_reflection(first);
        }
        Ok(Reflection::Unavailable)
    }
}

fn decode_reflection(bytes: &[u8]) -> Result<Reflection, String> {
    let response = reflection::ServerReflectionResponse::decode(bytes)
        .map_err(|e| format!("cannot decode the reflection answer: {e}"))?;
    match response.message_response {
        Some(MessageResponse::FileDescriptorResponse(files)) => files
            .file_descriptor_proto
            .iter()
            .map(|f| {
                FileDescriptorProto::decode(f.as_slice())
                    .map_err(|e| format!("cannot decode a file descriptor from reflection: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Reflection::Files),
        Some(MessageResponse::ListServicesResponse(list)) => Ok(Reflection::Services(
            list.service.into_iter().map(|s| s.name).collect(),
        )),
        Some(MessageResponse::ErrorResponse(e)) => Ok(Reflection::Error {
            code: e.error_code,
            message: e.error_message,
        }),
        None => Err("reflection answered an empty message".to_string()),
    }
}

async fn exchange(port: u16, path: &str, messages: &[Vec<u8>]) -> Result<Answer, String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot connect to port {port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (client, connection) = h2::client::handshake(tcp)
        .await
        .map_err(|e| format!("no HTTP/2 (h2c) on port {port}: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let answer = async {
        let mut client = client.ready().await.map_err(h2_error)?;
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri(format!("http://127.0.0.1:{port}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("user-agent", "msvc-test")
            .body(())
            .map_err(|e| e.to_string())?;
        let (response, mut send) = client.send_request(request, false).map_err(h2_error)?;
        let mut body = BytesMut::new();
        for m in messages {
            frame(&mut body, m);
        }
        send.send_data(body.freeze(), true).map_err(h2_error)?;
        let response = response.await.map_err(h2_error)?;
        let (head, mut recv) = response.into_parts();
        if head.status != http::StatusCode::OK {
            return Err(format!("answered HTTP {} instead of gRPC", head.status));
        }
        let mut data = BytesMut::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.map_err(h2_error)?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = recv.trailers().await.map_err(h2_error)?;
        let (status, message) = trailers
            .as_ref()
            .and_then(grpc_status)
            .or_else(|| grpc_status(&head.headers))
            .ok_or_else(|| "the answer has no grpc-status".to_string())?;
        Ok(Answer {
            status,
            message,
            messages: unframe(data.freeze())?,
        })
    }
    .await;
    driver.abort();
    answer
}

#[allow(clippy::needless_pass_by_value)] // the signature map_err wants
fn h2_error(e: h2::Error) -> String {
    e.to_string()
}

fn grpc_status(headers: &http::HeaderMap) -> Option<(i32, String)> {
    let status = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some((status, message))
}

/// gRPC's length-prefixed message: uncompressed flag, big-endian length, message.
fn frame(out: &mut BytesMut, message: &[u8]) {
    out.put_u8(0);
    out.put_u32(u32::try_from(message.len()).expect("a message under 4 GiB"));
    out.put_slice(message);
}

fn unframe(mut data: Bytes) -> Result<Vec<Bytes>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 5 {
            return Err("the answer ends in the middle of a message header".to_string());
        }
        if data[0] != 0 {
            return Err("the answer is compressed, though msvc asked for none".to_string());
        }
        let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        if data.len() < 5 + len {
            return Err("the answer ends in the middle of a message".to_string());
        }
        let _ = data.split_to(5);
        out.push(data.split_to(len));
    }
    Ok(out)
}

/// `NOT_FOUND`, the name of a gRPC status code.
pub fn code_name(code: i32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|c| NAMES.get(c))
        .map_or_else(|| format!("status {code}"), |n| (*n).to_string())
}

/// `NOT_FOUND ("user 0 not found")`.
pub fn describe_status(code: i32, message: &str) -> String {
    if message.is_empty() {
        code_name(code)
    } else {
        format!("{} ({message:?})", code_name(code))
    }
}

/// A gRPC server for tests: h2c on a free port of 127.0.0.1, answering every call with
/// what `handler` makes of its path and first request message.
#[cfg(test)]
pub(crate) mod fake {
    use bytes::{Bytes, BytesMut};

    pub enum Reply {
        /// Headers only, with `grpc-status` and `grpc-message`.
        TrailersOnly(i32, &'static str),
        /// Response messages, then trailers with `grpc-status`.
        Messages(Vec<Vec<u8>>, i32),
    }

    pub fn serve(handler: fn(&str, &[u8]) -> Reply) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let Ok(mut connection) = h2::server::handshake(socket).await else {
                            return;
                        };
                        while let Some(Ok((request, respond))) = connection.accept().await {
                            tokio::spawn(answer(handler, request, respond));
                        }
                    });
                }
            });
        });
        port
    }

    async fn answer(
        handler: fn(&str, &[u8]) -> Reply,
        request: http::Request<h2::RecvStream>,
        mut respond: h2::server::SendResponse<Bytes>,
    ) {
        let path = request.uri().path().to_string();
        let mut body = request.into_body();
        let mut data = BytesMut::new();
        while let Some(Ok(chunk)) = body.data().await {
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let messages = super::unframe(data.freeze()).unwrap();
        let first = messages.first().cloned().unwrap_or_default();
        let head = http::Response::builder()
            .status(200)
            .header("content-type", "application/grpc");
        match handler(&path, &first) {
            Reply::TrailersOnly(status, message) => {
                let head = head
                    .header("grpc-status", status.to_string())
                    .header("grpc-message", message.replace(' ', "%20"))
                    .body(())
                    .unwrap();
                let _ = respond.send_response(head, true);
            }
            Reply::Messages(messages, status) => {
                let Ok(mut send) = respond.send_response(head.body(()).unwrap(), false) else {
                    return;
                };
                let mut body = BytesMut::new();
                for m in &messages {
                    super::frame(&mut body, m);
                }
                let _ = send.send_data(body.freeze(), false);
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", status.to_string().parse().unwrap());
                let _ = send.send_trailers(trailers);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_unframes_messages() {
        let mut body = BytesMut::new();
        frame(&mut body, b"");
        frame(&mut body, b"abc");
        assert_eq!(&body[..], b"\0\0\0\0\0\0\0\0\0\x03abc");
        let messages = unframe(body.freeze()).unwrap();
        assert_eq!(messages, [Bytes::new(), Bytes::from_static(b"abc")]);
        assert!(unframe(Bytes::from_static(b"\0\0\0\0\x05ab")).is_err());
        assert!(unframe(Bytes::from_static(b"\x01\0\0\0\0")).is_err());
    }

    #[test]
    fn decodes_percent_encoded_messages() {
        assert_eq!(
            percent_decode(b"user 0 not%20found%2C sorry"),
            "user 0 not found, sorry"
        );
        assert_eq!(percent_decode(b"100%"), "100%");
    }

    #[test]
    fn names_status_codes() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(5), "NOT_FOUND");
        assert_eq!(code_name(12), "UNIMPLEMENTED");
        assert_eq!(code_name(99), "status 99");
        assert_eq!(describe_status(12, "no"), "UNIMPLEMENTED (\"no\")");
    }

    #[test]
    fn calls_a_server_and_falls_back_to_v1alpha_reflection() {
        use fake::Reply;
        fn handler(path: &str, request: &[u8]) -> Reply {
            match path {
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo" => {
                    Reply::TrailersOnly(UNIMPLEMENTED, "")
                }
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" => {
                    let request = ServerReflectionRequest::decode(request).unwrap();
                    assert_eq!(
                        request.message_request,
                        Some(MessageRequest::ListServices(String::new()))
                    );
                    let response = reflection::ServerReflectionResponse {
                        message_response: Some(MessageResponse::ListServicesResponse(
                            reflection::ListServiceResponse {
                                service: vec![reflection::ServiceResponse {
                                    name: "a.v1.Svc".into(),
                                }],
                            },
                        )),
                        ..Default::default()
                    };
                    Reply::Messages(vec![response.encode_to_vec()], 0)
                }
                "/a.v1.Svc/Get" => {
                    assert!(request.is_empty());
                    Reply::Messages(vec![b"\x08\x01".to_vec()], 0)
                }
                _ => Reply::TrailersOnly(5, "no such thing"),
            }
        }
        let port = fake::serve(handler);
        let client = Client::new().unwrap();
        assert_eq!(
            client
                .reflect(port, MessageRequest::ListServices(String::new()))
                .unwrap(),
            Reflection::Services(vec!["a.v1.Svc".into()])
        );
        let answer = client.call(port, "/a.v1.Svc/Get", &[Vec::new()]).unwrap();
        assert_eq!(answer.status, 0);
        assert_eq!(answer.messages, [Bytes::from_static(b"\x08\x01")]);
        // Trailers-only: the status is in the headers.
        let answer = client.call(port, "/a.v1.Svc/Other", &[Vec::new()]).unwrap();
        assert_eq!(
            (answer.status, answer.message.as_str()),
            (5, "no such thing")
        );
        assert!(answer.messages.is_empty());
        // Nothing listens: an error, not a hang.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let e = client.call(closed_port, "/a.v1.Svc/Get", &[]).unwrap_err();
        assert!(e.starts_with("cannot connect to port"), "{e}");
    }

    #[test]
    fn reflection_messages_have_the_spec_field_numbers() {
        // file_containing_symbol is field 4: tag (4 << 3 | 2) = 0x22.
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol("a.B".into())),
        }
        .encode_to_vec();
        assert_eq!(request, b"\x22\x03a.B");
        // list_services is field 7: 0x3a.
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }
        .encode_to_vec();
        assert_eq!(request, b"\x3a\x00");

        let file = FileDescriptorProto {
            name: Some("a.proto".into()),
            package: Some("a".into()),
            ..Default::default()
        };
        let response = reflection::ServerReflectionResponse {
            valid_host: String::new(),
            original_request: None,
            message_response: Some(MessageResponse::FileDescriptorResponse(
                reflection::FileDescriptorResponse {
                    file_descriptor_proto: vec![file.encode_to_vec()],
                },
            )),
        }
        .encode_to_vec();
        // file_descriptor_response is field 4 of the response.
        assert_eq!(response[0], 0x22);
        assert_eq!(
            decode_reflection(&response).unwrap(),
            Reflection::Files(vec![file])
        );
        let error = reflection::ServerReflectionResponse {
            message_response: Some(MessageResponse::ErrorResponse(reflection::ErrorResponse {
                error_code: 5,
                error_message: "not found".into(),
            })),
            ..Default::default()
        }
        .encode_to_vec();
        // error_response is field 7.
        assert_eq!(error[0], 0x3a);
        assert_eq!(
            decode_reflection(&error).unwrap(),
            Reflection::Error {
                code: 5,
                message: "not found".into()
            }
        );
    }
}
