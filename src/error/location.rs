//! Places in files: a [`Location`] for messages, and [`SourceText`] to find them.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A place in a file: path, 1-based line and column, and the source line for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The text of the line, shown under the location with the span underlined.
    pub source_line: Option<String>,
    /// Width of the underline, in characters.
    pub width: usize,
}

impl Location {
    /// Locates a byte range of `text` (the contents of `path`).
    pub fn from_span(path: &Path, text: &str, span: Range<usize>) -> Self {
        SourceText::new(path, text).location(span)
    }

    /// A location that names only a file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            line: 0,
            column: 0,
            source_line: None,
            width: 0,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.path.display())
        } else {
            write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
        }
    }
}

/// A file's text with its line starts, to turn byte offsets into lines and columns once
/// per file rather than by scanning the text for every diagnostic.
#[derive(Debug, Clone)]
pub struct SourceText<'a> {
    path: PathBuf,
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceText<'a> {
    /// `path` is how diagnostics name the file: relative to the workspace root.
    pub fn new(path: impl Into<PathBuf>, text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Self {
            path: path.into(),
            text,
            line_starts,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The location of a byte range; the underline stops at the end of its first line.
    pub fn location(&self, span: Range<usize>) -> Location {
        let start = floor_char_boundary(self.text, span.start.min(self.text.len()));
        let line_index = self.line_starts.partition_point(|&s| s <= start) - 1;
        let line_start = self.line_starts[line_index];
        let line_end = self.text[line_start..]
            .find('\n')
            .map_or(self.text.len(), |i| line_start + i);
        let end = floor_char_boundary(self.text, span.end.clamp(start, line_end));
        let source_line = self.text[line_start..line_end]
            .trim_end_matches('\r')
            .to_string();
        Location {
            path: self.path.clone(),
            line: line_index + 1,
            column: self.text[line_start..start].chars().count() + 1,
            width: self.text[start..end].chars().count().max(1),
            source_line: Some(source_line),
        }
    }

    /// The byte offset of a 0-based line and a 0-based column counted in characters.
    pub fn offset(&self, line: usize, column: usize) -> usize {
        let Some(&line_start) = self.line_starts.get(line) else {
            return self.text.len();
        };
        let rest = &self.text[line_start..];
        let line_text = &rest[..rest.find('\n').unwrap_or(rest.len())];
        line_start
            + line_text
                .char_indices()
                .nth(column)
                .map_or(line_text.len(), |(i, _)| i)
    }
}

/// The largest char boundary at or before `i`.
pub fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A path with `/` separators, as diagnostics and SARIF show it.
pub fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_from_offsets() {
        let src = SourceText::new("a.toml", "one\ntwo = 2\nthré = 3\n");
        let loc = src.location(10..11);
        assert_eq!((loc.line, loc.column, loc.width), (2, 7, 1));
        assert_eq!(loc.source_line.as_deref(), Some("two = 2"));
        // Columns count characters; a span inside a character snaps to its start.
        let loc = src.location(19..20);
        assert_eq!((loc.line, loc.column), (3, 7));
        let loc = src.location(16..17);
        assert_eq!((loc.line, loc.column), (3, 4));
        // Past the end: the last line.
        let loc = src.location(500..600);
        assert_eq!(loc.line, 4);
        assert_eq!(src.offset(2, 4), 17);
        assert_eq!(src.offset(9, 0), src.text().len());
    }
}
