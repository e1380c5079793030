//! Service and queue names: validation once, up front, and every form derived from one name.

use heck::{ToKebabCase, ToPascalCase, ToShoutySnakeCase, ToSnakeCase};
use serde::Serialize;

/// Longest DNS-1123 label, which compose and Kubernetes names must be.
pub const MAX_NAME_LEN: usize = 63;

/// Rust keywords (strict, reserved and weak ones that cannot name a crate or module).
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe",
    "use", "where", "while", "abstract", "become", "box", "do", "final", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield", "union",
];

/// Names that would collide with the generated workspace's own crates or std.
/// (`messages`, `peers`, `amqp` and `rest` are modules of the generated contracts crate,
/// which a service's proto package would collide with.)
const RESERVED: &[&str] = &[
    "contracts",
    "std",
    "core",
    "alloc",
    "proc-macro",
    "test",
    "messages",
    "peers",
    "amqp",
    "rest",
];

/// Why a name was refused, with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    pub reason: String,
    pub hint: String,
}

/// Checks a service name: a lowercase DNS-1123 label that is also a valid crate name.
pub fn validate_service_name(name: &str) -> Result<(), NameError> {
    let suggestion = name.to_kebab_case();
    let suggest = |reason: &str| NameError {
        reason: reason.to_string(),
        hint: if suggestion.is_empty() || suggestion == name || validate_plain(&suggestion) {
            "use lowercase letters, digits and single hyphens, starting with a letter, e.g. `user-service`".to_string()
        } else {
            format!("try `{suggestion}`")
        },
    };
    if name.is_empty() {
        return Err(suggest("a service name cannot be empty"));
    }
    if name.contains('/') || name.contains('\\') || name.contains("..") {
        return Err(NameError {
            reason: "a service name cannot contain path separators or `..`".into(),
            hint: "give only the name; the service is created under services/".into(),
        });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError {
            reason: format!(
                "a service name can have at most {MAX_NAME_LEN} characters (DNS label), this one has {}",
                name.len()
            ),
            hint: "choose a shorter name".into(),
        });
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(suggest("a service name must be lowercase"));
    }
    if name.contains('_') {
        return Err(suggest(
            "a service name cannot contain `_` (it must be a DNS label; the crate name gets the underscores)",
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(suggest("a service name must start with a lowercase letter"));
    }
    if name.ends_with('-') {
        return Err(suggest("a service name cannot end with `-`"));
    }
    if name.contains("--") {
        return Err(suggest("a service name cannot contain `--`"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(suggest(&format!(
            "a service name can only hold lowercase letters, digits and `-`, not `{c}`"
        )));
    }
    let snake = name.to_snake_case();
    if RUST_KEYWORDS.contains(&snake.as_str()) {
        return Err(NameError {
            reason: format!("`{name}` is a Rust keyword and cannot name a crate"),
            hint: format!("try `{name}-service`"),
        });
    }
    if RESERVED.contains(&name) {
        return Err(NameError {
            reason: format!("`{name}` is reserved for msvc's generated crates"),
            hint: format!("try `{name}-service`"),
        });
    }
    Ok(())
}

/// Checks a workspace name: a DNS label (it names the compose project), which unlike a
/// service name never becomes a crate, so Rust keywords are fine.
pub fn validate_workspace_name(name: &str) -> Result<(), NameError> {
    if name.contains('/') || name.contains('\\') || name.contains("..") {
        return Err(NameError {
            reason: "a workspace name cannot contain path separators or `..`".into(),
            hint: "give only the name, and run msvc init in the directory that should hold the workspace (`cd .. && msvc init shop`)".into(),
        });
    }
    match validate_service_name(name) {
        Err(e) if e.reason.contains("Rust keyword") || e.reason.contains("reserved") => Ok(()),
        Err(e) => Err(NameError {
            reason: e.reason.replace("a service name", "a workspace name"),
            hint: e.hint,
        }),
        Ok(()) => Ok(()),
    }
}

fn validate_plain(name: &str) -> bool {
    validate_service_name(name).is_err()
}

/// Checks a queue name: what AMQP allows, restricted to what maps to a Rust identifier.
pub fn validate_queue_name(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'));
    if !ok {
        return Err(NameError {
            reason: format!(
                "`{name}` is not a valid queue name: use lowercase letters, digits, `_`, `-` and `.`, starting with a letter"
            ),
            hint: "e.g. `user_message`".into(),
        });
    }
    if std::path::Path::new(name)
        .extension()
        .is_some_and(|ext| ext == "dlq")
    {
        return Err(NameError {
            reason: format!("`{name}` ends with `.dlq`, which msvc uses for dead-letter queues"),
            hint: format!("try `{}`", name.trim_end_matches(".dlq")),
        });
    }
    let snake = name.replace(['-', '.'], "_");
    if RUST_KEYWORDS.contains(&snake.as_str()) {
        return Err(NameError {
            reason: format!("`{name}` is a Rust keyword and cannot name the message module"),
            hint: format!("try `{name}_message`"),
        });
    }
    Ok(())
}

/// Every form of a service name, as templates use them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NameForms {
    /// `user-service`: DNS label, package, compose and k8s name.
    pub name: String,
    /// `user_service`: crate and module name, proto package root.
    pub snake: String,
    /// `UserService`: type names.
    pub pascal: String,
    /// `USER_SERVICE`: environment variable stem.
    pub shouty: String,
    /// `USER_SERVICE_URL`: the variable a peer reads this service's address from.
    pub env_url: String,
    /// gRPC service name: Pascal case with a `Service` suffix when the name lacks one.
    pub grpc_service: String,
}

impl NameForms {
    pub fn new(name: &str) -> Self {
        let pascal = name.to_pascal_case();
        let grpc_service = if pascal.ends_with("Service") {
            pascal.clone()
        } else {
            format!("{pascal}Service")
        };
        Self {
            name: name.to_string(),
            snake: name.to_snake_case(),
            shouty: name.to_shouty_snake_case(),
            env_url: format!("{}_URL", name.to_shouty_snake_case()),
            pascal,
            grpc_service,
        }
    }
}

/// The sample resource of a REST service: its name without a `-service` / `-api` suffix.
pub fn default_resource(name: &str) -> String {
    let trimmed = name
        .strip_suffix("-service")
        .or_else(|| name.strip_suffix("-api"))
        .unwrap_or(name);
    trimmed.to_string()
}

/// Checks a `--resource` value: it becomes a URL segment and a Rust type name.
pub fn validate_resource(resource: &str) -> Result<(), NameError> {
    let ok = resource.starts_with(|c: char| c.is_ascii_lowercase())
        && resource
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !resource.ends_with('-');
    if ok && !RUST_KEYWORDS.contains(&resource.to_snake_case().as_str()) {
        Ok(())
    } else {
        Err(NameError {
            reason: format!("`{resource}` is not a valid resource name"),
            hint: "use lowercase letters, digits and `-`, e.g. `order`".into(),
        })
    }
}

/// Every form of a queue name.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QueueForms {
    /// `user_message`: the queue name in the broker.
    pub queue: String,
    /// `user_message`: the message module.
    pub module: String,
    /// `UserMessage`: the message type.
    pub type_name: String,
    /// `USER_MESSAGE`: the constant holding the queue name.
    pub constant: String,
}

impl QueueForms {
    pub fn new(queue: &str) -> Self {
        let module = queue.replace(['-', '.'], "_").to_snake_case();
        Self {
            queue: queue.to_string(),
            type_name: module.to_pascal_case(),
            constant: module.to_shouty_snake_case(),
            module,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_a_name() {
        let f = NameForms::new("user-service");
        assert_eq!(f.snake, "user_service");
        assert_eq!(f.pascal, "UserService");
        assert_eq!(f.grpc_service, "UserService");
        assert_eq!(f.env_url, "USER_SERVICE_URL");
        assert_eq!(NameForms::new("orders").grpc_service, "OrdersService");
    }

    #[test]
    fn resource_drops_suffix() {
        assert_eq!(default_resource("user-api"), "user");
        assert_eq!(default_resource("user-service"), "user");
        assert_eq!(default_resource("orders"), "orders");
    }

    #[test]
    fn names_refused() {
        for bad in [
            "User",
            "user_service",
            "1user",
            "-user",
            "user-",
            "a/b",
            "..",
            "type",
            "self",
            "contracts",
            "",
            "us--er",
            "ümlaut",
        ] {
            assert!(validate_service_name(bad).is_err(), "{bad} accepted");
        }
        assert!(validate_service_name(&"a".repeat(64)).is_err());
        assert!(validate_service_name(&"a".repeat(63)).is_ok());
        assert!(validate_service_name("user-service2").is_ok());
    }

    #[test]
    fn uppercase_name_gets_a_suggestion() {
        let err = validate_service_name("UserService").unwrap_err();
        assert_eq!(err.hint, "try `user-service`");
    }
}
