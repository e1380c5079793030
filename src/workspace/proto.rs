//! What templates need to know about a proto file: package, services, RPCs and Rust paths.

use std::path::Path;

use heck::{ToPascalCase, ToSnakeCase};
use prost_types::FileDescriptorProto;
use serde::Serialize;

use crate::error::{Error, Location, Result};

/// A parsed proto file, reduced to what code generation needs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProtoInfo {
    /// Path relative to the workspace root, `/`-separated.
    pub path: String,
    /// Path relative to `proto/`, as build.rs hands it to the compiler.
    pub include_path: String,
    pub package: String,
    /// `["user_service", "v1"]`
    pub modules: Vec<String>,
    pub services: Vec<GrpcService>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GrpcService {
    /// `UserService`, the trait and client stem tonic generates.
    pub name: String,
    /// `user_service_server`
    pub server_module: String,
    /// `user_service_client`
    pub client_module: String,
    /// `user_service.v1.UserService`, what the health and reflection services report.
    pub full_name: String,
    pub rpcs: Vec<Rpc>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rpc {
    pub name: String,
    /// The Rust method name tonic generates.
    pub method: String,
    /// Rust path of the request message, from the service crate.
    pub input: String,
    pub output: String,
    /// The request type as service code names it, relative to `pb` (the package).
    pub input_pb: String,
    pub output_pb: String,
    pub client_streaming: bool,
    pub server_streaming: bool,
    /// The trait method's signature, formatted as rustfmt would at one indent.
    pub signature: String,
}

/// Parses proto `source` (stored at `path`, relative to the workspace root).
pub fn parse(root: &Path, path: &str, source: &str) -> Result<ProtoInfo> {
    let file = protox_parse::parse(path, source).map_err(|err| {
        let full = root.join(path);
        let mut e = Error::new(format!("cannot parse proto `{path}`"));
        e = match err.span() {
            Some(span) => e.at(Location::from_span(&full, source, span)),
            None => e.at(Location::file(&full)),
        };
        e.source(err)
            .hint("fix the proto; msvc reads it to generate the service's code")
    })?;
    Ok(describe(path, &file))
}

fn describe(path: &str, file: &FileDescriptorProto) -> ProtoInfo {
    let package = file.package().to_string();
    let modules: Vec<String> = if package.is_empty() {
        Vec::new()
    } else {
        package.split('.').map(ToSnakeCase::to_snake_case).collect()
    };
    let local: Vec<String> = local_messages(file);
    let services = file
        .service
        .iter()
        .map(|s| {
            let name = s.name().to_pascal_case();
            GrpcService {
                server_module: format!("{}_server", s.name().to_snake_case()),
                client_module: format!("{}_client", s.name().to_snake_case()),
                full_name: if package.is_empty() {
                    s.name().to_string()
                } else {
                    format!("{package}.{}", s.name())
                },
                name,
                rpcs: s
                    .method
                    .iter()
                    .map(|m| {
                        let input = rust_type(m.input_type(), &package, &local);
                        let output = rust_type(m.output_type(), &package, &local);
                        let input_pb = relative_to_package(&input, &modules);
                        let output_pb = relative_to_package(&output, &modules);
                        let method = rust_method_name(m.name());
                        let signature = signature(
                            &method,
                            &if m.client_streaming() {
                                format!("tonic::Streaming<{input_pb}>")
                            } else {
                                input_pb.clone()
                            },
                            &if m.server_streaming() {
                                format!("Self::{}Stream", m.name())
                            } else {
                                output_pb.clone()
                            },
                        );
                        Rpc {
                            name: m.name().to_string(),
                            method,
                            input,
                            output,
                            input_pb,
                            output_pb,
                            client_streaming: m.client_streaming(),
                            server_streaming: m.server_streaming(),
                            signature,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    ProtoInfo {
        path: path.to_string(),
        include_path: path.strip_prefix("proto/").unwrap_or(path).to_string(),
        package,
        modules,
        services,
    }
}

/// Full names (relative to the package) of every message declared in the file.
fn local_messages(file: &FileDescriptorProto) -> Vec<String> {
    fn walk(prefix: &str, msgs: &[prost_types::DescriptorProto], out: &mut Vec<String>) {
        for m in msgs {
            let name = if prefix.is_empty() {
                m.name().to_string()
            } else {
                format!("{prefix}.{}", m.name())
            };
            walk(&name, &m.nested_type, out);
            out.push(name);
        }
    }
    let mut out = Vec::new();
    walk("", &file.message_type, &mut out);
    out
}

/// The Rust path, from a crate that depends on `contracts`, of a proto message type.
fn rust_type(type_name: &str, package: &str, local: &[String]) -> String {
    let name = type_name.trim_start_matches('.');
    if let Some(wkt) = name.strip_prefix("google.protobuf.") {
        return if wkt == "Empty" {
            "()".to_string()
        } else {
            format!("::prost_types::{wkt}")
        };
    }
    let relative = name
        .strip_prefix(package)
        .and_then(|r| r.strip_prefix('.'))
        .filter(|_| !package.is_empty());
    let (modules, message): (Vec<String>, &str) =
        if let Some(rel) = relative.or(Some(name).filter(|n| local.iter().any(|l| l == n))) {
            let mut segments: Vec<String> = package
                .split('.')
                .filter(|s| !s.is_empty())
                .map(ToSnakeCase::to_snake_case)
                .collect();
            let parts: Vec<&str> = rel.split('.').collect();
            let (last, parents) = parts.split_last().expect("split yields one part");
            segments.extend(parents.iter().map(|p| p.to_snake_case()));
            (segments, last)
        } else {
            let parts: Vec<&str> = name.split('.').collect();
            let (last, parents) = parts.split_last().expect("split yields one part");
            (parents.iter().map(|p| p.to_snake_case()).collect(), last)
        };
    let mut path = String::from("contracts");
    for m in modules {
        path.push_str("::");
        path.push_str(&m);
    }
    path.push_str("::");
    path.push_str(&message.to_pascal_case());
    path
}

/// `contracts::a::v1::X` as `pb::X` when `pb` is `contracts::a::v1`.
fn relative_to_package(path: &str, modules: &[String]) -> String {
    let prefix = format!("contracts::{}::", modules.join("::"));
    match path.strip_prefix(&prefix) {
        Some(rest) if !modules.is_empty() => format!("pb::{rest}"),
        _ => path.to_string(),
    }
}

/// An RPC's trait method signature, laid out as rustfmt lays it out at one indent:
/// on one line when it fits in 100 columns, else one parameter per line.
fn signature(method: &str, input: &str, output: &str) -> String {
    let one_line = format!(
        "    async fn {method}(&self, _request: Request<{input}>) -> Result<Response<{output}>, Status> {{"
    );
    if one_line.len() <= 100 {
        one_line
    } else {
        format!(
            "    async fn {method}(\n        &self,\n        _request: Request<{input}>,\n    ) -> Result<Response<{output}>, Status> {{"
        )
    }
}

/// tonic's method name: snake case, raw identifier for keywords.
fn rust_method_name(rpc: &str) -> String {
    let snake = rpc.to_snake_case();
    match snake.as_str() {
        "type" | "match" | "loop" | "move" | "ref" | "use" | "where" | "mod" | "impl" | "fn"
        | "struct" | "enum" | "trait" | "async" | "await" | "dyn" | "return" | "static"
        | "const" => {
            format!("r#{snake}")
        }
        _ => snake,
    }
}

/// The proto a new gRPC service gets: the article's contract under the service's name.
pub fn default_proto_path(snake: &str) -> String {
    format!("proto/{snake}/v1/{snake}.proto")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_article_contract() {
        let src = r#"syntax = "proto3";
package user_service.v1;
import "google/protobuf/empty.proto";
service UserService {
  rpc GetUser(GetUserRequest) returns (User);
  rpc Watch(google.protobuf.Empty) returns (stream User.Event);
}
message GetUserRequest { int64 user_id = 1; }
message User { int64 id = 1; message Event { int64 id = 1; } }
"#;
        let info = parse(
            Path::new("/ws"),
            "proto/user_service/v1/user_service.proto",
            src,
        )
        .unwrap();
        assert_eq!(info.package, "user_service.v1");
        assert_eq!(info.include_path, "user_service/v1/user_service.proto");
        let svc = &info.services[0];
        assert_eq!(svc.server_module, "user_service_server");
        assert_eq!(svc.rpcs[0].method, "get_user");
        assert_eq!(
            svc.rpcs[0].input,
            "contracts::user_service::v1::GetUserRequest"
        );
        assert_eq!(svc.rpcs[1].input, "()");
        assert_eq!(
            svc.rpcs[1].output,
            "contracts::user_service::v1::user::Event"
        );
        assert!(svc.rpcs[1].server_streaming);
    }

    #[test]
    fn parse_error_points_at_the_line() {
        let err = parse(
            Path::new("/ws"),
            "proto/x.proto",
            "syntax = \"proto3\";\nmessage {",
        )
        .unwrap_err();
        assert_eq!(err.location.unwrap().line, 2);
    }
}
