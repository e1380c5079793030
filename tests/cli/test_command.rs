//! `msvc test` on the example system against the real `RabbitMQ`: it passes, then each
//! break of the system is reported against the right service, with nothing left running.
//!
//! The example builds once (into the shared `target/generated`); the breaks need at
//! most an incremental rebuild of one crate: a route the service does not serve added
//! to its openapi.yaml, a worker consuming another queue, a `calls` entry naming an RPC
//! the peer lacks and an RPC answering UNIMPLEMENTED, an environment that makes a
//! service exit at start, and contract cases.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use crate::generated::shared_target_dir;
use crate::support::{Scratch, broker_or_skip, example, free_port};

fn msvc_test(ws: &Path, args: &[&str]) -> Output {
    msvc_test_with(ws, args, &[])
}

fn msvc_test_with(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_msvc"))
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .env("CARGO_TARGET_DIR", shared_target_dir())
        // The generated workspace is its own: no flags leak in from msvc's build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .arg("test")
        .args(args)
        .current_dir(ws)
        .output()
        .expect("msvc test runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn both(out: &Output) -> String {
    format!(
        "--- stdout:\n{}\n--- stderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Deletes a queue the test made the worker declare on the shared broker.
fn drop_queue(queue: &str) {
    use msvc::testing::amqp::AmqpClient;
    use msvc::workspace::url::AmqpUrl;
    let url = AmqpUrl::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
    let mut client = AmqpClient::connect(&url, std::time::Duration::from_secs(5)).unwrap();
    client.delete(queue).unwrap();
    client.close();
}

/// Nothing of the system is left: every port it used can be bound again.
fn assert_ports_free(ports: &[u16]) {
    for port in ports {
        assert!(
            TcpListener::bind(("127.0.0.1", *port)).is_ok(),
            "port {port} is still in use after msvc test"
        );
    }
}

#[test]
fn test_command_passes_on_the_example_and_reports_each_break() {
    if !broker_or_skip("test_command_passes_on_the_example_and_reports_each_break") {
        return;
    }
    let s = example();
    let ws = s.ws();
    // Ports of this run only, so the test never meets another user of 5000 or 50051.
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let manifest = s
        .read("services.toml")
        .replace("port = 50051", &format!("port = {}", ports[0]))
        .replace("admin_port = 9100", &format!("admin_port = {}", ports[1]))
        .replace("port = 5000", &format!("port = {}", ports[2]))
        .replace("admin_port = 9101", &format!("admin_port = {}", ports[3]));
    s.write("services.toml", &manifest);

    // 1. The example passes: own tests and contracts, as JUnit for CI.
    let out = msvc_test(&ws, &["--format", "junit"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let xml = text(&out.stdout);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("failures"), Some("0"), "{xml}");
    let suite = |name: &str| {
        root.children()
            .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some(name))
            .unwrap_or_else(|| panic!("no test suite {name}:\n{xml}"))
    };
    for service in ["user-service", "user-api", "email-worker"] {
        let cases: Vec<_> = suite(service)
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        // Its own tests (the example's crates have some) and the contract tests.
        assert!(
            cases
                .iter()
                .any(|c| c.attribute("classname") == Some(&format!("{service}.unit"))),
            "{service} has no unit test in:\n{xml}"
        );
        assert!(
            cases.iter().any(
                |c| c.attribute("name") == Some("starts and passes its health check")
                    && c.children().all(|n| !n.has_tag_name("failure"))
            ),
            "{service} did not pass its health check in:\n{xml}"
        );
    }
    for case in [
        "name=\"route GET /user/{id}\" classname=\"user-api.contract\"",
        "name=\"takes a probe message from queue `user_message`\" classname=\"email-worker.contract\"",
        "name=\"calls user-service/UserService.GetUser\" classname=\"user-api.contract\"",
    ] {
        assert!(
            xml.contains(case) && !xml.contains("<failure"),
            "{case}:\n{xml}"
        );
    }
    assert_ports_free(&ports);

    // 2. The user's own cases: one holds, one does not.
    s.write(
        "contracts.toml",
        "[[case]]\nservice = \"user-api\"\nrequest = \"GET /user/1\"\nstatus = 200\njson = { id = 1, name = \"Alice\" }\n\n[[case]]\nservice = \"user-api\"\nrequest = \"GET /user/2\"\njson = { name = \"Alice\" }\n",
    );
    let out = msvc_test(&ws, &["--no-unit"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let report = text(&out.stdout);
    assert!(
        report.contains("FAILED user-api contract `GET /user/2 (contracts.toml:7)`\n  GET /user/2: expected JSON with {\"name\":\"Alice\"}, got {"),
        "{}",
        both(&out)
    );
    assert!(!report.contains("contracts.toml:1)`"), "{report}");
    // A case msvc cannot read stops everything, with its place in the file.
    s.write(
        "contracts.toml",
        "[[case]]\nservice = \"user-apj\"\nrequest = \"GET /user/1\"\nstatus = 200\n",
    );
    let out = msvc_test(&ws, &["--no-unit"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = text(&out.stderr);
    assert!(err.contains("contracts.toml:2:11"), "{err}");
    assert!(err.contains("hint: did you mean `user-api`?"), "{err}");
    fs_err::remove_file(ws.join("contracts.toml")).unwrap();

    // 3. openapi.yaml promises a route user-api does not serve.
    let original_api = s.read("services/user-api/openapi.yaml");
    let api = original_api.replacen(
        "paths:\n",
        "paths:\n  /users/{id}/profile:\n    get:\n      operationId: getProfile\n      responses:\n        \"200\":\n          description: The profile.\n",
        1,
    );
    s.write("services/user-api/openapi.yaml", &api);
    let out = msvc_test(&ws, &["--no-unit"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let report = text(&out.stdout);
    assert!(
        report.contains("FAILED user-api contract `route GET /users/{id}/profile`\n  GET /users/1/profile answered 404 like an unknown route"),
        "{}",
        both(&out)
    );
    assert!(report.contains("last lines of user-api:"), "{report}");
    s.write("services/user-api/openapi.yaml", &original_api);
    assert_ports_free(&ports);

    // 4. email-worker consumes another queue than the manifest's: the probe published to
    // `user_message` finds no consumer of it, and the report says so against email-worker.
    let elsewhere = format!("user_message_elsewhere_{}", std::process::id());
    let config = s.read("services/email-worker/src/config.rs");
    let from_env =
        "worker: WorkerConfig::from_env(env, wiring::NAME, contracts::amqp::DEFAULT_AMQP_URL)?,";
    assert!(config.contains(from_env), "{config}");
    s.write(
        "services/email-worker/src/config.rs",
        &config.replace(
            from_env,
            &format!(
                "worker: WorkerConfig {{ queues: vec![msvc_runtime::worker::QueueConfig {{ name: {elsewhere:?}.to_owned(), route: Route::UserMessage }}], ..WorkerConfig::from_env(env, wiring::NAME, contracts::amqp::DEFAULT_AMQP_URL)? }},"
            ),
        ),
    );
    let out = msvc_test(&ws, &["--no-unit"]);
    drop_queue(&elsewhere);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let report = text(&out.stdout);
    assert!(
        report.contains("FAILED email-worker contract `takes a probe message from queue `user_message``\n  email-worker (pid "),
        "{}",
        both(&out)
    );
    assert!(
        report.contains("probe messages msvc published to `user_message` within 15s: it does not consume the queue"),
        "{report}"
    );
    assert!(!report.contains("FAILED user-api"), "{report}");
    s.write("services/email-worker/src/config.rs", &config);
    assert_ports_free(&ports);

    // 5. The manifest names an RPC user-service lacks, and user-service's GetUser answers
    // UNIMPLEMENTED: both are reported against user-api, the caller.
    let manifest = s.read("services.toml");
    let calls = "calls = [\"user-service/UserService.GetUser\"]";
    assert!(manifest.contains(calls), "{manifest}");
    s.write(
        "services.toml",
        &manifest.replace(
            calls,
            "calls = [\"user-service/UserService.GetUser\", \"user-service/UserService.DeleteUser\", \"user-service/user_service.v1.UserService.GetUser\"]",
        ),
    );
    let service = s.read("services/user-service/src/service.rs");
    let lookup = "match self.store.get(id) {";
    assert!(service.contains(lookup), "{service}");
    s.write(
        "services/user-service/src/service.rs",
        &service.replace(
            lookup,
            &format!(
                "if id >= 0 {{ return Err(Status::unimplemented(\"GetUser is switched off\")); }}\n        {lookup}"
            ),
        ),
    );
    let out = msvc_test(&ws, &["--no-unit"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let report = text(&out.stdout);
    let grpc = ports[0];
    assert!(
        report.contains(&format!(
            "FAILED user-api contract `calls user-service/UserService.DeleteUser`\n  user-api calls `user-service/UserService.DeleteUser`, but user-service (port {grpc}) has no method `DeleteUser` on `user_service.v1.UserService`: its methods are `GetUser`"
        )),
        "{}",
        both(&out)
    );
    assert!(
        report.contains(&format!(
            "FAILED user-api contract `calls user-service/UserService.GetUser`\n  user-api calls `user-service/UserService.GetUser`, but user-service (port {grpc}) answers /user_service.v1.UserService/GetUser with UNIMPLEMENTED (\"GetUser is switched off\")"
        )),
        "{}",
        both(&out)
    );
    // The package-qualified name of the same RPC is the same call, as link and check read it.
    assert!(
        report.contains(&format!(
            "FAILED user-api contract `calls user-service/user_service.v1.UserService.GetUser`\n  user-api calls `user-service/user_service.v1.UserService.GetUser`, but user-service (port {grpc}) answers /user_service.v1.UserService/GetUser with UNIMPLEMENTED"
        )),
        "{}",
        both(&out)
    );
    assert!(!report.contains("FAILED user-service contract"), "{report}");
    // The peer's own lines are shown beside the caller's.
    assert!(report.contains("last lines of user-service:"), "{report}");
    s.write("services.toml", &manifest);
    s.write("services/user-service/src/service.rs", &service);
    assert_ports_free(&ports);

    // 6. user-service exits at start: reported against it, and user-api is not started.
    // (The header comment of services.toml names the table too, indented.)
    let manifest = s.read("services.toml").replace(
        "\n[services.user-service]\n",
        "\n[services.user-service]\nenv = { ADMIN_PORT = \"not-a-port\" }\n",
    );
    s.write("services.toml", &manifest);
    let out = msvc_test(&ws, &["--no-unit"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let report = text(&out.stdout);
    assert!(
        report.contains("FAILED user-service contract `starts and passes its health check`\n  user-service did not start: it exited with code 2 before passing its health check"),
        "{}",
        both(&out)
    );
    assert!(
        report.contains("last lines of user-service:\n  | error: ")
            && report.contains("ADMIN_PORT"),
        "{report}"
    );
    assert!(!report.contains("FAILED user-api"), "{report}");
    let table = report.lines().find(|l| l.starts_with("user-api ")).unwrap();
    assert!(
        table.split_whitespace().nth(3) != Some("0"),
        "user-api skips: {report}"
    );
    assert_ports_free(&ports);

    s.write(
        "services.toml",
        &s.read("services.toml")
            .replace("env = { ADMIN_PORT = \"not-a-port\" }\n", ""),
    );

    // 7. An RPC renamed in the proto: the services built from it no longer compile, and
    // the report names the crate and the error.
    let proto = "proto/user_service/v1/user_service.proto";
    let contract = s.read(proto);
    assert!(contract.contains("rpc GetUser("), "{contract}");
    s.write(proto, &contract.replace("rpc GetUser(", "rpc FetchUser("));
    // With `cargo test` (step 1 used cargo-nextest where it is installed).
    let out = msvc_test_with(&ws, &[], &[("MSVC_TEST_RUNNER", "cargo")]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let report = text(&out.stdout);
    assert!(
        report.contains("FAILED user-service unit `builds`\n  error")
            || report.contains("FAILED user-api unit `builds`\n  error"),
        "{}",
        both(&out)
    );
    assert!(
        report.contains("get_user") || report.contains("fetch_user"),
        "{report}"
    );
    assert_ports_free(&ports);
}

/// Living processes whose command line contains `marker`.
fn pids_with(marker: &str) -> Vec<i32> {
    fs_err::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs_err::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .filter(|pid| {
            fs_err::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rfind(')')
                    .and_then(|i| stat[i + 1..].split_whitespace().next())
                    .is_some_and(|state| state != "Z" && state != "X")
            })
        })
        .collect()
}

/// `process` services need no build: a crash at start, the JSON report, and Ctrl-C
/// while a service is still starting, which stops everything.
#[test]
fn test_command_reports_json_and_stops_everything_on_ctrl_c() {
    let s = Scratch::new();
    let ws = s.path().join("shop");
    let (web, bad, slow) = (free_port(), free_port(), free_port());
    // A marker in the command lines, to find the processes afterwards.
    let marker = format!("msvc-test-marker-{}", std::process::id());
    let manifest = format!(
        "[workspace]\nname = \"shop\"\nshutdown_grace = \"2s\"\n\n\
         [services.web]\nkind = \"process\"\nport = {web}\ncommand = \"exec python3 -m http.server --bind 127.0.0.1 {web} # {marker}\"\n\n\
         [services.bad]\nkind = \"process\"\nport = {bad}\ncommand = \"echo starting; echo 'config missing' >&2; exit 3\"\n"
    );
    fs_err::create_dir_all(&ws).unwrap();
    fs_err::write(ws.join("services.toml"), &manifest).unwrap();

    let out = msvc_test(&ws, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let case = |service: &str| {
        report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["service"] == service)
            .unwrap_or_else(|| panic!("no case of {service}: {report}"))
            .clone()
    };
    assert_eq!(case("web")["outcome"], "passed", "{report}");
    assert_eq!(case("bad")["outcome"], "failed", "{report}");
    assert_eq!(
        case("bad")["message"],
        "bad did not start: it exited with code 3 before passing its health check"
    );
    // Its stdout and stderr lines; the two pipes are read apart, so in either order.
    let mut logs: Vec<&str> = report["logs"]["bad"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    logs.sort_unstable();
    assert_eq!(logs, ["config missing", "starting"], "{report}");
    assert!(pids_with(&marker).is_empty(), "web is still running");

    // A service that takes long to start; Ctrl-C meanwhile stops everything.
    let manifest = format!(
        "{manifest}\n[services.slow]\nkind = \"process\"\nport = {slow}\ncommand = \"sleep 60; echo {marker}\"\n"
    )
    .replace(
        "command = \"echo starting; echo 'config missing' >&2; exit 3\"",
        "command = \"exec python3 -m http.server --bind 127.0.0.1 BAD\"",
    )
    .replace("BAD", &bad.to_string());
    fs_err::write(ws.join("services.toml"), &manifest).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_msvc"))
        .env("NO_COLOR", "1")
        .args(["test"])
        .current_dir(&ws)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("msvc test starts");
    let start = std::time::Instant::now();
    while pids_with(&format!("sleep 60; echo {marker}")).is_empty() {
        assert!(start.elapsed().as_secs() < 20, "slow never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        text(&out.stdout)
            .contains("the system stopped before the contract tests ran (interrupted)"),
        "{}",
        both(&out)
    );
    assert!(
        start.elapsed().as_secs() < 20,
        "msvc test took too long to stop"
    );
    assert!(pids_with(&marker).is_empty(), "a service is still running");
    assert_ports_free(&[web, bad, slow]);
}

/// `msvc test` runs the system on databases of its own, made empty for the run and
/// dropped after it: the services' own databases are not created, nor touched.
#[test]
fn test_command_gives_the_run_fresh_databases_and_drops_them() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let connected = runtime.block_on(tokio_postgres::connect(
        "postgres://postgres@127.0.0.1:5432/postgres",
        tokio_postgres::NoTls,
    ));
    let Ok((admin, connection)) = connected else {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL at 127.0.0.1:5432 is required when CI is set"
        );
        eprintln!(
            "\n=== SKIP: PostgreSQL is not reachable at 127.0.0.1:5432; this test did NOT run ===\n"
        );
        return;
    };
    runtime.spawn(connection);
    let s = Scratch::new();
    // A workspace name of this run's own, so its databases are too.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("tdb{}x{nanos}", std::process::id());
    let ws = s.path().join(&name);
    let port = free_port();
    // It answers on its port only once it has seen its database.
    let manifest = format!(
        "[workspace]\nname = \"{name}\"\nshutdown_grace = \"2s\"\n\n\
         [database]\nurl = \"postgres://postgres@127.0.0.1:5432/postgres\"\n\n\
         [services.store]\nkind = \"process\"\nport = {port}\ndatabase = \"postgres\"\n\
         command = \"psql \\\"$DATABASE_URL\\\" -Atc 'SELECT current_database()' > seen.txt && exec python3 -m http.server --bind 127.0.0.1 {port}\"\n"
    );
    fs_err::create_dir_all(&ws).unwrap();
    fs_err::write(ws.join("services.toml"), &manifest).unwrap();

    let out = msvc_test(&ws, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let seen = fs_err::read_to_string(ws.join("seen.txt")).unwrap();
    let own = format!("{name}_store");
    assert!(
        seen.trim().starts_with(&format!("{own}_t")),
        "the service ran on {seen}"
    );
    let query = "SELECT datname FROM pg_database WHERE datname LIKE $1";
    let left: Vec<String> = runtime
        .block_on(admin.query(query, &[&format!("{name}%")]))
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{}", both(&out));
    assert!(
        text(&out.stderr).contains("(dropped after it)"),
        "{}",
        both(&out)
    );
}
