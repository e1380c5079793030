//! `msvc deploy k8s|prometheus`: the files a cluster and Prometheus accept, checked with
//! the real tools (kubectl kustomize, kubernetes-validate --strict, promtool), kept in
//! step by `new`, `rm` and `sync`, and snapshots of what is generated.

use std::path::Path;
use std::process::Command;

use crate::generated::tool;
use crate::support::{Scratch, dump_tree, example, snapshot_tree, stderr, stdout};

/// The Kubernetes version the manifests are validated against (a schema
/// kubernetes-validate ships, so it works offline).
const KUBERNETES_VERSION: &str = "1.34.0";

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

/// The example with a registry and tag, replicas, autoscale, resources and a
/// `process` service.
fn scaled() -> Scratch {
    let s = example();
    let text = s
        .read("services.toml")
        .replace(
            "publishes = [\"user_message\"]\n",
            "publishes = [\"user_message\"]\nreplicas = 3\nresources = { cpu = \"250m\", memory = \"128Mi\", cpu_limit = \"1\", memory_limit = \"512Mi\" }\nshutdown_grace = \"2500ms\"\n",
        )
        .replace(
            "consumes = [\"user_message\"]\n",
            "consumes = [\"user_message\"]\nautoscale = { min = 2, max = 6, cpu = 70 }\n",
        );
    s.write(
        "services.toml",
        &format!(
            "{text}\n[services.legacy-flask]\nkind = \"process\"\ncommand = \"python3 app.py\"\nport = 5001\n\n[deploy]\nregistry = \"ghcr.io/acme\"\ntag = \"1.4.2\"\n"
        ),
    );
    s
}

fn kubectl() -> Option<Vec<String>> {
    // `kubectl version` alone asks a cluster for its version too, and fails without one.
    tool(
        "kubectl",
        &[vec!["kubectl".to_string(), "version".to_string()]],
        "--client",
        "Kustomize Version",
    )
    .map(|_| vec!["kubectl".to_string(), "kustomize".to_string()])
}

fn kubernetes_validate() -> Option<Vec<String>> {
    tool(
        "kubernetes-validate",
        &[vec!["kubernetes-validate".to_string()]],
        "--version",
        ".",
    )
}

fn promtool() -> Option<Vec<String>> {
    tool(
        "promtool",
        &[vec!["promtool".to_string()]],
        "--version",
        "promtool",
    )
}

fn output(program: &[String], args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(&program[0])
        .args(&program[1..])
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", program[0]))
}

/// `kubectl kustomize` of an overlay, then `kubernetes-validate --strict` of its output.
/// Returns the built manifests (empty when the tools are missing outside CI).
fn build_and_validate(s: &Scratch, overlay: &str) -> String {
    let Some(kubectl) = kubectl() else {
        return String::new();
    };
    let dir = format!("deploy/k8s/overlays/{overlay}");
    let built = output(&kubectl, &[&dir], &s.ws());
    assert!(
        built.status.success(),
        "kubectl kustomize {dir} failed:\n{}",
        stderr(&built)
    );
    let yaml = stdout(&built);
    if let Some(validate) = kubernetes_validate() {
        let file = s.path().join(format!("{overlay}.yaml"));
        fs_err::write(&file, &yaml).unwrap();
        let out = output(
            &validate,
            &["--strict", "-k", KUBERNETES_VERSION, file.to_str().unwrap()],
            s.path(),
        );
        let report = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            out.status.success() && !report.contains("ERROR") && !report.contains("WARN"),
            "kubernetes-validate --strict rejected overlay {overlay}:\n{report}"
        );
        // Every resource was checked, none skipped for want of a schema.
        let checked = report.matches("passed for resource").count();
        let resources = yaml.matches("\nkind: ").count() + usize::from(yaml.starts_with("kind: "));
        assert_eq!(checked, resources, "{report}");
    }
    yaml
}

/// The `kind: NAME` pairs of a multi-document YAML stream, in order.
fn kinds(yaml: &str) -> Vec<String> {
    yaml.split("\n---\n")
        .filter_map(|doc| {
            let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(doc).ok()?;
            Some(format!(
                "{}/{}",
                v["kind"].as_str()?,
                v["metadata"]["name"].as_str()?
            ))
        })
        .collect()
}

#[test]
fn example_overlays_build_and_pass_the_kubernetes_schemas() {
    let s = example();
    let out = s.ok(&["deploy", "k8s"]);
    assert!(stderr(&out).contains("deploy/k8s/base/user-api.yaml"));
    settings().bind(|| {
        insta::assert_snapshot!("deploy_k8s_example", dump_tree(&s.ws(), &["deploy/k8s/"]));
    });

    let dev = build_and_validate(&s, "dev");
    let prod = build_and_validate(&s, "prod");
    if dev.is_empty() {
        return;
    }
    let dev_kinds = kinds(&dev);
    for want in [
        "Deployment/user-api",
        "Service/user-api",
        "Deployment/user-service",
        "Service/user-service",
        "Deployment/email-worker",
        "Service/email-worker",
        "StatefulSet/rabbitmq",
    ] {
        assert!(
            dev_kinds.iter().any(|k| k == want),
            "{want} not in {dev_kinds:?}"
        );
    }
    // Development brings its broker; production expects one outside the cluster.
    assert!(!kinds(&prod).iter().any(|k| k.starts_with("StatefulSet/")));
    assert!(dev.contains("kind: Secret"));
    // Peers by their Services' DNS names; the broker URL only through the Secret.
    assert!(prod.contains("value: http://user-service:50051"), "{prod}");
    assert!(
        !prod.contains("amqp://"),
        "a broker URL in plain text:\n{prod}"
    );
    assert!(prod.contains("secretKeyRef"));
    // The example has no replicas: no disruption budgets, no autoscalers.
    assert!(!prod.contains("PodDisruptionBudget"));
    assert!(!prod.contains("HorizontalPodAutoscaler"));
}

#[test]
fn replicas_autoscale_and_registry_reach_the_manifests() {
    let s = scaled();
    let out = s.ok(&["deploy", "k8s"]);
    assert!(
        stderr(&out).contains("`legacy-flask` is a process service"),
        "{}",
        stderr(&out)
    );
    assert!(!s.ws().join("deploy/k8s/base/legacy-flask.yaml").exists());
    settings().bind(|| {
        insta::assert_snapshot!(
            "deploy_k8s_scaled",
            dump_tree(
                &s.ws(),
                &[
                    "deploy/k8s/base/user-api.yaml",
                    "deploy/k8s/base/email-worker.yaml",
                    "deploy/k8s/overlays/prod/"
                ]
            )
        );
    });
    let base = s.read("deploy/k8s/base/user-api.yaml");
    assert!(
        base.contains("image: ghcr.io/acme/user-api:1.4.2"),
        "{base}"
    );
    assert!(base.contains("replicas: 3"));
    assert!(base.contains("terminationGracePeriodSeconds: 3"));

    let prod = build_and_validate(&s, "prod");
    build_and_validate(&s, "dev");
    if prod.is_empty() {
        return;
    }
    let prod_kinds = kinds(&prod);
    assert!(
        prod_kinds.contains(&"PodDisruptionBudget/user-api".to_string()),
        "{prod_kinds:?}"
    );
    assert!(prod_kinds.contains(&"HorizontalPodAutoscaler/email-worker".to_string()));
    // autoscale min = 2 keeps one replica through a drain too.
    assert!(prod_kinds.contains(&"PodDisruptionBudget/email-worker".to_string()));
    assert!(!prod_kinds.iter().any(|k| k.ends_with("/legacy-flask")));
    assert!(prod.contains("image: ghcr.io/acme/user-api:1.4.2"));
}

#[test]
fn new_rm_and_sync_keep_base_in_step_and_leave_overlays_alone() {
    let s = example();
    let dry = s.ok(&["deploy", "k8s", "--dry-run"]);
    assert!(stdout(&dry).contains("create"), "{}", stdout(&dry));
    // The long name is the same command.
    assert_eq!(
        stdout(&s.ok(&["deploy", "kubernetes", "--dry-run"])),
        stdout(&dry)
    );
    assert!(!s.ws().join("deploy").exists(), "--dry-run wrote files");
    let json = s.ok(&["deploy", "k8s", "--dry-run", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert!(
        plan["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "deploy/k8s/base/user-api.yaml" && f["action"] == "create")
    );

    s.ok(&["deploy", "k8s"]);
    s.ok(&["deploy", "prometheus"]);
    let overlays = snapshot_tree(&s.ws().join("deploy/k8s/overlays"));

    s.ok(&["new", "orders", "--rest", "--depends-on", "user-service"]);
    let orders = s.read("deploy/k8s/base/orders.yaml");
    assert!(
        orders.contains("value: \"http://user-service:50051\""),
        "{orders}"
    );
    assert!(
        s.read("deploy/k8s/base/kustomization.yaml")
            .contains("- orders.yaml")
    );
    assert!(
        s.read("deploy/prometheus/prometheus.yml")
            .contains("service: orders")
    );

    // A hand edit of services.toml is one `msvc sync` away.
    let text = s
        .read("services.toml")
        .replace("port = 5000", "port = 5005");
    s.write("services.toml", &text);
    s.ok(&["sync"]);
    assert!(
        s.read("deploy/k8s/base/user-api.yaml")
            .contains("containerPort: 5005")
    );
    assert!(
        s.read("deploy/prometheus/prometheus.yml")
            .contains("127.0.0.1:5005")
    );

    s.ok(&["rm", "orders"]);
    assert!(!s.ws().join("deploy/k8s/base/orders.yaml").exists());
    assert!(
        !s.read("deploy/k8s/base/kustomization.yaml")
            .contains("orders")
    );
    assert!(
        !s.read("deploy/prometheus/prometheus.yml")
            .contains("orders")
    );

    // A service the overlays were scaffolded with: they are the user's to fix, and rm says so.
    let dry = s.ok(&["rm", "email-worker", "--dry-run"]);
    let rm = s.ok(&["rm", "email-worker"]);
    let warnings = |out: &std::process::Output| -> Vec<String> {
        stderr(out)
            .lines()
            .filter(|l| l.starts_with("warning:"))
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(warnings(&dry), warnings(&rm), "--dry-run warns as rm does");
    assert_eq!(warnings(&rm).len(), 2, "{}", stderr(&rm));
    assert!(
        stderr(&rm)
            .contains("deploy/k8s/overlays/dev/kustomization.yaml still patches `email-worker`"),
        "{}",
        stderr(&rm)
    );
    assert!(!s.ws().join("deploy/k8s/base/email-worker.yaml").exists());
    let check = s.run(&["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", stdout(&check));
    assert!(
        stdout(&check).contains("overlay `dev` patches `email-worker`"),
        "{}",
        stdout(&check)
    );
    s.ok(&[
        "new",
        "email-worker",
        "--worker",
        "--consumes",
        "user_message",
    ]);

    // Running it again rewrites base/ only: the overlays are the user's.
    s.ok(&["deploy", "k8s"]);
    assert_eq!(overlays, snapshot_tree(&s.ws().join("deploy/k8s/overlays")));
    let check = s.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    if kubectl().is_some() {
        build_and_validate(&s, "prod");
    }
}

#[test]
fn prometheus_files_pass_promtool() {
    let s = example();
    s.ok(&["deploy", "prometheus"]);
    settings().bind(|| {
        insta::assert_snapshot!(
            "deploy_prometheus_example",
            dump_tree(&s.ws(), &["deploy/prometheus/"])
        );
    });
    let config = s.read("deploy/prometheus/prometheus.yml");
    for target in ["127.0.0.1:5000", "127.0.0.1:9100", "127.0.0.1:9101"] {
        assert!(config.contains(target), "{target} not scraped:\n{config}");
    }
    let rules = s.read("deploy/prometheus/alerts.yml");
    for alert in [
        "ServiceDown",
        "HighErrorRate",
        "GrpcHighErrorRate",
        "QueueBacklogGrowing",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "{alert}");
    }
    let Some(promtool) = promtool() else { return };
    let dir = s.ws().join("deploy/prometheus");
    for args in [
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
    ] {
        let out = output(&promtool, &args, &dir);
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    // Debian's Prometheus is built without Kubernetes service discovery; where promtool
    // has it, the cluster configuration is checked too.
    let out = output(
        &promtool,
        &["check", "config", "prometheus-kubernetes.yml"],
        &dir,
    );
    let report = format!("{}{}", stdout(&out), stderr(&out));
    if report.contains("field kubernetes_sd_configs not found") {
        // Everything but the discovery block is still checked: the same file with
        // each `kubernetes_sd_configs` swapped for a static target.
        let config = s.read("deploy/prometheus/prometheus-kubernetes.yml");
        let sd = "    kubernetes_sd_configs:\n      - role: endpoints\n";
        assert!(config.contains(sd), "{config}");
        let swapped = config.replace(
            sd,
            "    static_configs:\n      - targets: [\"in-cluster.invalid:80\"]\n",
        );
        fs_err::write(dir.join("kubernetes-static.yml"), swapped).unwrap();
        let out = output(
            &promtool,
            &["check", "config", "kubernetes-static.yml"],
            &dir,
        );
        assert!(
            out.status.success(),
            "promtool check config (prometheus-kubernetes.yml, discovery swapped out):\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        eprintln!(
            "\n!!! promtool here lacks Kubernetes service discovery: prometheus-kubernetes.yml was checked with its kubernetes_sd_configs swapped for static targets !!!\n"
        );
    } else {
        assert!(
            out.status.success(),
            "promtool check config prometheus-kubernetes.yml:\n{report}"
        );
    }
}

#[test]
fn check_names_the_port_image_and_service_that_drifted() {
    let s = example();
    s.ok(&["deploy", "k8s"]);
    let base = s.read("deploy/k8s/base/user-service.yaml");
    s.write(
        "deploy/k8s/base/user-service.yaml",
        &base.replacen("containerPort: 50051", "containerPort: 50052", 1),
    );
    let api = s.read("deploy/k8s/base/user-api.yaml");
    s.write(
        "deploy/k8s/base/user-api.yaml",
        &api.replace("image: user-api:latest", "image: user-api:dev"),
    );
    fs_err::remove_file(s.ws().join("deploy/k8s/base/email-worker.yaml")).unwrap();

    let out = s.run(&["check", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let messages: Vec<&str> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["id"] == "K8S_DRIFT")
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    for want in [
        "a port is `50052`, services.toml gives `50051`",
        "the image is `user-api:dev`, services.toml gives `user-api:latest`",
        "service `email-worker` has no Kubernetes manifests",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(want)),
            "{want:?} not in {messages:#?}"
        );
    }
    // The fix the diagnostics name works.
    s.ok(&["sync"]);
    let out = s.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// A service that publishes through its outbox gets an alert on an old backlog, and
/// promtool's rule tests show it firing on a backlog stuck for minutes and not on one
/// that drains.
#[test]
fn the_outbox_alert_fires_on_a_backlog_that_stays_old() {
    let s = Scratch::with_workspace();
    s.ok(&[
        "new",
        "orders",
        "--rest",
        "--db",
        "postgres",
        "--publishes",
        "order_created",
    ]);
    s.ok(&["deploy", "prometheus"]);
    let rules = s.read("deploy/prometheus/alerts.yml");
    assert!(rules.contains("alert: OutboxBacklogOld"), "{rules}");
    let Some(promtool) = promtool() else { return };
    let dir = s.ws().join("deploy/prometheus");
    let tests = r#"rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'outbox_oldest_age_seconds{job="shop-local", service="orders"}'
        values: '0 30 90 150 210 270 330 390 450 510 570'
      - series: 'outbox_oldest_age_seconds{job="shop-local", service="drains"}'
        values: '0 30 0 30 0 30 0 30 0 30 0'
    alert_rule_test:
      - eval_time: 3m
        alertname: OutboxBacklogOld
        exp_alerts: []
      - eval_time: 10m
        alertname: OutboxBacklogOld
        exp_alerts:
          - exp_labels: {job: shop-local, service: orders, severity: warning}
            exp_annotations:
              summary: orders has committed messages waiting in its outbox for over a minute
              description: "The oldest is 9m 30s old: the relay cannot publish (the broker is down or refuses them)."
"#;
    fs_err::write(dir.join("outbox-test.yml"), tests).unwrap();
    let out = output(&promtool, &["test", "rules", "outbox-test.yml"], &dir);
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// Services with a database read `DATABASE_URL` from a Secret of their own: the dev
/// overlay generates it for an in-cluster `PostgreSQL` (a `StatefulSet` with a volume, its
/// databases created at first start); the prod overlay names the Secrets to create.
/// Both build and pass the schemas; compose runs the same server.
#[test]
fn services_with_a_database_get_it_in_compose_and_kubernetes() {
    let s = Scratch::with_workspace();
    s.ok(&[
        "new",
        "orders",
        "--rest",
        "--db",
        "postgres",
        "--publishes",
        "order_created",
    ]);
    s.ok(&["new", "plain", "--rest"]);
    s.ok(&["deploy", "k8s"]);
    let base = s.read("deploy/k8s/base/orders.yaml");
    assert!(
        base.contains("- name: DATABASE_URL\n              valueFrom:\n                secretKeyRef:\n                  name: orders-database\n"),
        "{base}"
    );
    assert!(
        !s.read("deploy/k8s/base/plain.yaml")
            .contains("DATABASE_URL")
    );

    let dev = build_and_validate(&s, "dev");
    if !dev.is_empty() {
        let kinds = kinds(&dev);
        for kind in [
            "Secret/orders-database",
            "StatefulSet/postgres",
            "Service/postgres",
        ] {
            assert!(
                kinds.iter().any(|k| k.starts_with(kind)),
                "{kind} in {kinds:?}"
            );
        }
        assert!(dev.contains("CREATE DATABASE shop_orders;"), "{dev}");
    }
    let prod_kustomization = s.read("deploy/k8s/overlays/prod/kustomization.yaml");
    assert!(
        prod_kustomization.contains("kubectl create secret generic orders-database --from-literal=DATABASE_URL='postgres://USER:PASSWORD@HOST:5432/shop_orders'"),
        "{prod_kustomization}"
    );
    let prod = build_and_validate(&s, "prod");
    assert!(!prod.contains("StatefulSet"), "{prod}");

    let compose = s.read("docker-compose.yml");
    assert!(
        compose.contains("DATABASE_URL: postgres://postgres:postgres@postgres:5432/shop_orders"),
        "{compose}"
    );
    assert!(
        compose.contains("CREATE DATABASE shop_orders;"),
        "{compose}"
    );
    if let Some(docker_compose) = crate::generated::compose_binary() {
        let out = output(&docker_compose, &["config", "--quiet"], &s.ws());
        assert!(out.status.success(), "{}", stderr(&out));
    }
}
