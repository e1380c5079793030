//! The one error type of msvc: a message, where it happened, a hint, and an exit code.

mod location;
pub mod render;

use std::fmt;
use std::path::{Path, PathBuf};

pub use location::{Location, SourceText, floor_char_boundary, slash_path};
pub use render::{Message, Severity, excerpt, palette};

/// Exit code for checks that failed or a service that failed.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code for usage, manifest and I/O errors.
pub const EXIT_USAGE: i32 = 2;

/// `path` as seen from `base` (`services.toml`, `../services.toml`), so that it is short
/// and clickable; unchanged when the two share no root.
pub fn relative_path(path: &Path, base: &Path) -> PathBuf {
    use std::path::Component;
    if !path.is_absolute() || !base.is_absolute() {
        return path.to_path_buf();
    }
    let ours: Vec<Component> = path.components().collect();
    let theirs: Vec<Component> = base.components().collect();
    let common = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
    // Only the root in common, or climbing further than the file is deep: keep it whole.
    if common <= 1 || theirs.len() - common > 3 {
        return path.to_path_buf();
    }
    let mut rel = PathBuf::new();
    for _ in common..theirs.len() {
        rel.push("..");
    }
    for c in &ours[common..] {
        rel.push(c.as_os_str());
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    rel
}

/// An error as the user sees it.
#[derive(Debug)]
pub struct Error {
    pub message: String,
    pub location: Option<Box<Location>>,
    pub hint: Option<String>,
    /// Lines shown under the source line: other problems found on the way.
    pub notes: Vec<String>,
    pub exit_code: i32,
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A usage, manifest or I/O error (exit code 2).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: None,
            hint: None,
            notes: Vec::new(),
            exit_code: EXIT_USAGE,
            source: None,
        }
    }

    #[must_use]
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(Box::new(location));
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

    #[must_use]
    pub fn exit_code(mut self, code: i32) -> Self {
        self.exit_code = code;
        self
    }

    #[must_use]
    pub fn source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Shows the location's path relative to `cwd`, as `msvc check` does.
    #[must_use]
    pub fn paths_from(mut self, cwd: &Path) -> Self {
        if let Some(loc) = &mut self.location {
            loc.path = relative_path(&loc.path, cwd);
        }
        self
    }

    /// The error as the user reads it: message, location, source line, causes, hint.
    pub fn render(&self) -> String {
        self.message().render(false)
    }

    /// As [`Error::render`], with ANSI styles (dropped later when stderr is no terminal).
    pub fn render_styled(&self) -> String {
        self.message().render(true)
    }

    fn message(&self) -> Message<'_> {
        let mut causes = Vec::new();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static));
        while let Some(c) = cause {
            causes.push(c.to_string());
            cause = c.source();
        }
        Message {
            place: self
                .location
                .as_deref()
                .map(|loc| (loc.path.display().to_string(), loc)),
            causes,
            notes: &self.notes,
            hint: self.hint.as_deref(),
            ..Message::new(Severity::Error, &self.message)
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(loc) = &self.location {
            write!(f, " ({loc})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        // fs_err puts the path in the message; keep it as the message itself.
        let message = err.to_string();
        Self::new(message)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_shown_from_the_current_directory() {
        use super::relative_path;
        use std::path::Path;
        let p = Path::new("/w/shop/services.toml");
        assert_eq!(
            relative_path(p, Path::new("/w/shop")),
            Path::new("services.toml")
        );
        assert_eq!(
            relative_path(p, Path::new("/w/shop/services/a")),
            Path::new("../../services.toml")
        );
        assert_eq!(
            relative_path(p, Path::new("/w")),
            Path::new("shop/services.toml")
        );
        assert_eq!(relative_path(p, Path::new("/elsewhere")), p);
        assert_eq!(
            relative_path(Path::new("rel.toml"), Path::new("/w")),
            Path::new("rel.toml")
        );
    }

    use super::*;

    #[test]
    fn spans_inside_a_character_do_not_panic() {
        let loc = Location::from_span(Path::new("f"), "a\n\u{FFFD}b", 3..4);
        assert_eq!((loc.line, loc.column), (2, 1));
        let loc = Location::from_span(Path::new("f"), "é", 1..9);
        assert_eq!((loc.line, loc.column, loc.width), (1, 1, 1));
    }

    #[test]
    fn caret_lines_up_under_a_tab_indented_span() {
        let text = "[services.a]\n\tport = x\n";
        let span = text.find('x').unwrap();
        let err = Error::new("bad port").at(Location::from_span(
            Path::new("s.toml"),
            text,
            span..span + 1,
        ));
        let out = err.render();
        let lines: Vec<&str> = out.lines().collect();
        let source = lines.iter().find(|l| l.starts_with("2 |")).unwrap();
        let caret = lines.iter().find(|l| l.ends_with('^')).unwrap();
        assert_eq!(source.find('x'), caret.find('^'), "{out}");
    }
}
