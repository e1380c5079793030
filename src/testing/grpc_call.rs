//! One `calls` entry against one instance of the gRPC peer: server reflection shows the
//! method on the peer's service, and a call of it with an empty request answers
//! anything but `UNIMPLEMENTED`.

use std::fmt::Write as _;

use crate::workspace::validate::did_you_mean;

use super::grpc;

/// One `calls` entry against one instance of the peer.
pub struct GrpcCall<'a> {
    pub caller: &'a str,
    pub call: &'a str,
    pub label: &'a str,
    pub port: u16,
    /// `user_service.v1.UserService`
    pub symbol: &'a str,
    pub method: &'a str,
}

impl GrpcCall<'_> {
    /// What the instance answered, or why the call does not hold.
    pub fn check(&self, client: &grpc::Client) -> std::result::Result<String, String> {
        use grpc::reflection::MessageRequest;
        use grpc::{Reflection, describe_status};
        let Self {
            caller,
            call,
            label,
            port,
            symbol,
            method,
        } = *self;
        let broken =
            |why: String| format!("{caller} calls `{call}`, but {label} (port {port}) {why}");
        let reflected = client
            .reflect(
                port,
                MessageRequest::FileContainingSymbol(symbol.to_string()),
            )
            .map_err(|e| broken(format!("did not answer server reflection: {e}")))?;
        let mut note = String::new();
        match reflected {
            Reflection::Unavailable => {
                note = " (it serves no reflection, so only the call was checked)".to_string();
            }
            Reflection::Files(files) => {
                let methods = files.iter().find_map(|f| {
                    f.service
                        .iter()
                        .find(|s| qualified(f.package(), s.name()) == symbol)
                        .map(|s| {
                            s.method
                                .iter()
                                .map(|m| m.name().to_string())
                                .collect::<Vec<_>>()
                        })
                });
                match methods {
                    Some(methods) if methods.iter().any(|m| m == method) => {}
                    Some(methods) => {
                        let mut why = format!("has no method `{method}` on `{symbol}`: ");
                        if methods.is_empty() {
                            why.push_str("the service has no methods");
                        } else {
                            let _ = write!(why, "its methods are {}", backticked(&methods));
                        }
                        if let Some(hint) = did_you_mean(method, &methods) {
                            let _ = write!(why, "; {hint}");
                        }
                        return Err(broken(why));
                    }
                    None => {
                        return Err(broken(
                            self.no_service(client, "its reflection files declare it not"),
                        ));
                    }
                }
            }
            Reflection::Error { code, message } => {
                return Err(broken(self.no_service(
                    client,
                    &format!("reflection: {}", describe_status(code, &message)),
                )));
            }
            Reflection::Services(_) => {
                return Err(broken(
                    "answered reflection with a list of services, not files".to_string(),
                ));
            }
        }
        let path = format!("/{symbol}/{method}");
        let answer = client
            .call(port, &path, &[Vec::new()])
            .map_err(|e| broken(format!("did not answer {path}: {e}")))?;
        if answer.status == grpc::UNIMPLEMENTED {
            return Err(broken(format!(
                "answers {path} with {}: the method is declared but not implemented",
                describe_status(answer.status, &answer.message)
            )));
        }
        Ok(format!(
            "{label} answered an empty {method} request with {}{note}",
            describe_status(answer.status, &answer.message)
        ))
    }

    /// Why the instance does not serve the service, and the services it does serve.
    fn no_service(&self, client: &grpc::Client, why: &str) -> String {
        let symbol = self.symbol;
        let mut out = format!("does not serve `{symbol}` ({why})");
        if let Ok(grpc::Reflection::Services(services)) = client.reflect(
            self.port,
            grpc::reflection::MessageRequest::ListServices(String::new()),
        ) {
            let services: Vec<String> = services
                .into_iter()
                .filter(|s| !s.starts_with("grpc."))
                .collect();
            if !services.is_empty() {
                let _ = write!(out, "; it serves {}", backticked(&services));
            }
            if let Some(hint) = did_you_mean(symbol, &services) {
                let _ = write!(out, "; {hint}");
            }
        }
        out
    }
}

/// `` `a`, `b` ``
fn backticked(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn qualified(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_string()
    } else {
        format!("{package}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer serving `a.v1.Svc` with `Get` (answers `NOT_FOUND`) and `List`
    /// (answers `UNIMPLEMENTED`), and reflection v1.
    fn peer(path: &str, request: &[u8]) -> grpc::fake::Reply {
        use grpc::fake::Reply;
        use grpc::reflection::{
            ErrorResponse, FileDescriptorResponse, ListServiceResponse, MessageRequest,
            MessageResponse, ServerReflectionRequest, ServerReflectionResponse, ServiceResponse,
        };
        use prost::Message;
        use prost_types::{FileDescriptorProto, MethodDescriptorProto, ServiceDescriptorProto};
        let method = |name: &str| MethodDescriptorProto {
            name: Some(name.into()),
            ..Default::default()
        };
        match path {
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo" => {
                let request = ServerReflectionRequest::decode(request).unwrap();
                let response = match request.message_request.unwrap() {
                    MessageRequest::FileContainingSymbol(s) if s == "a.v1.Svc" => {
                        let file = FileDescriptorProto {
                            name: Some("a/v1/svc.proto".into()),
                            package: Some("a.v1".into()),
                            service: vec![ServiceDescriptorProto {
                                name: Some("Svc".into()),
                                method: vec![method("Get"), method("List")],
                                ..Default::default()
                            }],
                            ..Default::default()
                        };
                        MessageResponse::FileDescriptorResponse(FileDescriptorResponse {
                            file_descriptor_proto: vec![file.encode_to_vec()],
                        })
                    }
                    MessageRequest::ListServices(_) => {
                        MessageResponse::ListServicesResponse(ListServiceResponse {
                            service: ["a.v1.Svc", "grpc.reflection.v1.ServerReflection"]
                                .into_iter()
                                .map(|n| ServiceResponse { name: n.into() })
                                .collect(),
                        })
                    }
                    _ => MessageResponse::ErrorResponse(ErrorResponse {
                        error_code: 5,
                        error_message: "symbol not found".into(),
                    }),
                };
                let response = ServerReflectionResponse {
                    message_response: Some(response),
                    ..Default::default()
                };
                Reply::Messages(vec![response.encode_to_vec()], 0)
            }
            "/a.v1.Svc/Get" => Reply::TrailersOnly(5, "user 0 not found"),
            _ => Reply::TrailersOnly(12, "not implemented yet"),
        }
    }

    #[test]
    fn grpc_calls_need_the_method_in_reflection_and_an_implementation() {
        let port = grpc::fake::serve(peer);
        let client = grpc::Client::new().unwrap();
        let check = |symbol: &str, method: &str| {
            let call = format!("svc/{symbol}.{method}");
            GrpcCall {
                caller: "api",
                call: &call,
                label: "svc",
                port,
                symbol,
                method,
            }
            .check(&client)
        };
        assert_eq!(
            check("a.v1.Svc", "Get"),
            Ok("svc answered an empty Get request with NOT_FOUND (\"user 0 not found\")".into())
        );
        assert_eq!(
            check("a.v1.Svc", "Gett"),
            Err(format!(
                "api calls `svc/a.v1.Svc.Gett`, but svc (port {port}) has no method `Gett` on `a.v1.Svc`: its methods are `Get`, `List`; did you mean `Get`?"
            ))
        );
        assert_eq!(
            check("a.v1.Svc", "List"),
            Err(format!(
                "api calls `svc/a.v1.Svc.List`, but svc (port {port}) answers /a.v1.Svc/List with UNIMPLEMENTED (\"not implemented yet\"): the method is declared but not implemented"
            ))
        );
        assert_eq!(
            check("a.v1.Svcs", "Get"),
            Err(format!(
                "api calls `svc/a.v1.Svcs.Get`, but svc (port {port}) does not serve `a.v1.Svcs` (reflection: NOT_FOUND (\"symbol not found\")); it serves `a.v1.Svc`; did you mean `a.v1.Svc`?"
            ))
        );
    }

    #[test]
    fn a_grpc_peer_without_reflection_gets_the_call_alone() {
        fn peer(path: &str, _: &[u8]) -> grpc::fake::Reply {
            match path {
                "/a.v1.Svc/Get" => grpc::fake::Reply::Messages(vec![Vec::new()], 0),
                _ => grpc::fake::Reply::TrailersOnly(12, ""),
            }
        }
        let port = grpc::fake::serve(peer);
        let client = grpc::Client::new().unwrap();
        let call = |method: &'static str| GrpcCall {
            caller: "api",
            call: "svc/Svc.Get",
            label: "svc",
            port,
            symbol: "a.v1.Svc",
            method,
        };
        assert_eq!(
            call("Get").check(&client),
            Ok("svc answered an empty Get request with OK (it serves no reflection, so only the call was checked)".into())
        );
        let e = call("Gone").check(&client).unwrap_err();
        assert!(
            e.contains("answers /a.v1.Svc/Gone with UNIMPLEMENTED"),
            "{e}"
        );
    }
}
