//! Edits of services.toml that keep the user's comments, order and formatting.

use toml_edit::{Array, DocumentMut, Item, Table, value};

fn value_item(array: Array) -> Item {
    value(array)
}

use super::model::{DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, DatabaseKind, Service};
use crate::error::{Error, Result};

/// An editable manifest.
pub struct ManifestEdit {
    doc: DocumentMut,
}

impl ManifestEdit {
    pub fn parse(text: &str) -> Result<Self> {
        let doc = text
            .parse::<DocumentMut>()
            .map_err(|e| Error::new(format!("services.toml is not valid TOML: {e}")))?;
        Ok(Self { doc })
    }

    /// Appends `[services.NAME]` after the existing services.
    pub fn add_service(&mut self, name: &str, svc: &Service) {
        self.doc
            .entry("services")
            .or_insert_with(|| {
                let mut t = Table::new();
                t.set_implicit(true);
                Item::Table(t)
            })
            .as_table_mut()
            .expect("services is a table");
        let mut t = Table::new();
        t["kind"] = value(svc.kind.as_str());
        if let Some(p) = svc.port {
            t["port"] = value(i64::from(p));
        }
        if let Some(p) = svc.admin_port {
            t["admin_port"] = value(i64::from(p));
        }
        if let Some(p) = &svc.proto {
            t["proto"] = value(p.as_str());
        }
        if let Some(r) = &svc.resource {
            t["resource"] = value(r.as_str());
        }
        if let Some(d) = svc.database {
            t["database"] = value(d.as_str());
        }
        for (key, list) in [
            ("depends_on", &svc.depends_on),
            ("calls", &svc.calls),
            ("publishes", &svc.publishes),
            ("consumes", &svc.consumes),
        ] {
            if !list.is_empty() {
                t[key] = value(list.iter().map(String::as_str).collect::<Array>());
            }
        }
        if let Some(r) = svc.replicas {
            t["replicas"] = value(i64::from(r));
        }
        if let Some(c) = &svc.command {
            t["command"] = value(c.as_str());
        }
        // Placed explicitly after everything: a table without a position is written
        // with the one before it, so a table inserted later before the services could
        // land after this one.
        t.set_position(Some(last_position(self.doc.as_table()) + 1));
        let services = self
            .doc
            .get_mut("services")
            .and_then(Item::as_table_mut)
            .expect("services is a table");
        services.insert(name, Item::Table(t));
    }

    /// Removes `[services.NAME]` and every reference other services make to it.
    pub fn remove_service(&mut self, name: &str) {
        let Some(services) = self.doc.get_mut("services").and_then(Item::as_table_mut) else {
            return;
        };
        services.remove(name);
        for (_, item) in services.iter_mut() {
            let Some(t) = item.as_table_mut() else {
                continue;
            };
            if let Some(deps) = t.get_mut("depends_on").and_then(Item::as_array_mut) {
                deps.retain(|v| v.as_str() != Some(name));
                if deps.is_empty() {
                    t.remove("depends_on");
                }
            }
            if let Some(calls) = t.get_mut("calls").and_then(Item::as_array_mut) {
                let prefix = format!("{name}/");
                calls.retain(|v| !v.as_str().is_some_and(|c| c.starts_with(&prefix)));
                if calls.is_empty() {
                    t.remove("calls");
                }
            }
        }
    }

    /// Appends `value` to the list `key` of `[services.NAME]` unless it is there already;
    /// returns whether it was added.
    pub fn add_to_list(&mut self, name: &str, key: &str, value: &str) -> Result<bool> {
        let table = self.service_table(name)?;
        let item = table.entry(key).or_insert(value_item(Array::new()));
        let Some(array) = item.as_array_mut() else {
            return Err(
                Error::new(format!("`{key}` of service `{name}` is not a list"))
                    .hint(format!("write it as `{key} = [\"...\"]`")),
            );
        };
        if array.iter().any(|v| v.as_str() == Some(value)) {
            return Ok(false);
        }
        array.push(value);
        Ok(true)
    }

    /// Adds a `[broker]` table when there is none, before the services.
    pub fn ensure_broker(&mut self) -> bool {
        let mut t = Table::new();
        t["kind"] = value("rabbitmq");
        t["url"] = value(DEFAULT_AMQP_URL);
        self.ensure_table(
            "broker",
            t,
            "\n# The message broker services publish to and consume from.\n",
        )
    }

    /// Adds a `[database]` table when there is none, before the services.
    pub fn ensure_database(&mut self) -> bool {
        let mut t = Table::new();
        t["url"] = value(DEFAULT_DATABASE_URL);
        self.ensure_table(
            "database",
            t,
            "\n# The PostgreSQL server of the services with `database = \"postgres\"`: each owns\n# the database WORKSPACE_SERVICE on it (in snake case).\n",
        )
    }

    /// Inserts table `key` after `[workspace]` and the tables msvc put there before,
    /// unless the manifest has one.
    fn ensure_table(&mut self, key: &str, mut t: Table, comment: &str) -> bool {
        if self.doc.contains_key(key) {
            return false;
        }
        t.decor_mut().set_prefix(comment);
        // Right after [workspace] (and [broker]) so it reads before the services.
        let position = ["broker", "workspace"]
            .iter()
            .find_map(|k| {
                self.doc
                    .get(k)
                    .and_then(Item::as_table)
                    .and_then(Table::position)
            })
            .map_or(0, |p| p + 1);
        shift_positions(self.doc.as_table_mut(), position);
        t.set_position(Some(position));
        self.doc.insert(key, Item::Table(t));
        true
    }

    /// Sets `database = "postgres"` on `[services.NAME]`; returns whether it changed.
    pub fn set_database(&mut self, name: &str, database: DatabaseKind) -> Result<bool> {
        let table = self.service_table(name)?;
        if table.get("database").and_then(Item::as_str) == Some(database.as_str()) {
            return Ok(false);
        }
        table.insert("database", value(database.as_str()));
        Ok(true)
    }

    /// Sets `[workspace] template_version`, keeping a comment on its line.
    pub fn set_template_version(&mut self, version: u32) -> Result<()> {
        let Some(ws) = self
            .doc
            .get_mut("workspace")
            .and_then(Item::as_table_like_mut)
        else {
            return Err(Error::new("services.toml has no [workspace] table"));
        };
        let new = toml_edit::Value::from(i64::from(version));
        match ws.get_mut("template_version").and_then(Item::as_value_mut) {
            Some(old) => {
                let decor = old.decor().clone();
                *old = new;
                *old.decor_mut() = decor;
            }
            None => {
                ws.insert("template_version", Item::Value(new));
            }
        }
        Ok(())
    }

    /// `[services.NAME]`, to change.
    fn service_table(&mut self, name: &str) -> Result<&mut dyn toml_edit::TableLike> {
        self.doc
            .get_mut("services")
            .and_then(|s| s.as_table_like_mut())
            .and_then(|s| s.get_mut(name))
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| Error::new(format!("[services.{name}] is not a table in services.toml")))
    }

    pub fn finish(self) -> String {
        self.doc.to_string()
    }
}

/// Moves every table at `from` or later one place down, to make room at `from`.
/// The highest position of a table in `table`, its own included.
fn last_position(table: &Table) -> isize {
    table
        .iter()
        .filter_map(|(_, item)| item.as_table())
        .map(last_position)
        .chain(table.position())
        .max()
        .unwrap_or(0)
}

fn shift_positions(table: &mut Table, from: isize) {
    for (_, item) in table.iter_mut() {
        if let Some(t) = item.as_table_mut() {
            if let Some(p) = t.position()
                && p >= from
            {
                t.set_position(Some(p + 1));
            }
            shift_positions(t, from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ManifestEdit;

    #[test]
    fn the_template_version_changes_and_the_comments_around_it_stay() {
        let text = "# mine\n[workspace]\nname = \"shop\"\ntemplate_version = 1 # set by msvc\n\n[services.a]\nkind = \"rest\"\n";
        let mut edit = ManifestEdit::parse(text).unwrap();
        edit.set_template_version(2).unwrap();
        assert_eq!(
            edit.finish(),
            text.replace("template_version = 1 #", "template_version = 2 #")
        );
    }
}
#[cfg(test)]
mod database_tests {
    use super::ManifestEdit;
    use crate::workspace::model::{DatabaseKind, Kind, Service};

    #[test]
    fn the_database_table_goes_before_the_services() {
        let text = "# mine\n[workspace]\nname = \"shop\"\n";
        let mut edit = ManifestEdit::parse(text).unwrap();
        let mut svc = Service::new(Kind::Rest);
        svc.database = Some(DatabaseKind::Postgres);
        edit.add_service("a", &svc);
        assert!(edit.ensure_database());
        let text = edit.finish();
        let mut edit = ManifestEdit::parse(&text).unwrap();
        edit.ensure_broker();
        edit.add_service("b", &Service::new(Kind::Rest));
        assert!(edit.set_database("b", DatabaseKind::Postgres).unwrap());
        assert!(!edit.ensure_database());
        let text = edit.finish();
        let at = |needle: &str| {
            text.find(needle)
                .unwrap_or_else(|| panic!("{needle}:\n{text}"))
        };
        assert!(at("[workspace]") < at("[broker]"), "{text}");
        assert!(at("[broker]") < at("[database]"), "{text}");
        assert!(at("[database]") < at("[services.a]"), "{text}");
        assert!(
            text.contains("[services.b]\nkind = \"rest\"\ndatabase = \"postgres\"\n"),
            "{text}"
        );
    }
}
