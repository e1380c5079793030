//! A finding about a workspace: the check's ID, its level, what is wrong, where, and the fix.
//! The readers of this module produce them when they collect every problem (`msvc check`).

use serde::Serialize;

use crate::error::{Location, slash_path};

/// How bad a finding is. Checks that are off produce no findings at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One problem found by a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The check's stable `UPPER_SNAKE` ID.
    pub id: &'static str,
    /// Set from the check's configured level when the diagnostic is emitted.
    pub level: Level,
    pub message: String,
    /// Where, relative to the workspace root; `line == 0` names a whole file.
    pub location: Option<Location>,
    /// Extra lines shown under the source: a cycle, a diff.
    pub notes: Vec<String>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(id: &'static str, message: impl Into<String>) -> Self {
        Self {
            id,
            level: Level::Error,
            message: message.into(),
            location: None,
            notes: Vec::new(),
            hint: None,
        }
    }

    #[must_use]
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// The file the diagnostic points at, `/`-separated, relative to the workspace root.
    pub fn file(&self) -> Option<String> {
        self.location.as_ref().map(|l| slash_path(&l.path))
    }

    /// Sort key: file (services.toml first), line, column, then ID and message.
    pub fn sort_key(&self) -> (u8, String, usize, usize, &'static str, String) {
        let file = self.file().unwrap_or_default();
        let rank = match file.as_str() {
            super::MANIFEST_FILE => 0,
            "" => 2,
            _ => 1,
        };
        let (line, col) = self
            .location
            .as_ref()
            .map_or((0, 0), |l| (l.line, l.column));
        (rank, file, line, col, self.id, self.message.clone())
    }
}
