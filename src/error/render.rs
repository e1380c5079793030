//! The one renderer of diagnostics, rustc-style, for errors and `msvc check` findings
//! alike, with the palette every coloured line of msvc uses and the colours of diffs.
//!
//! Hand-written rather than annotate-snippets (which rustc uses): that crate ends a
//! message with `= help:` lines under the gutter, where msvc's messages end with a
//! `hint:` line of their own that scripts, tests and the docs look for; it has no place
//! for the `caused by:` chain of an error; and its multi-line notes cannot carry a
//! coloured diff. What it would add here (several spans, multi-line spans) no message
//! of msvc needs.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

use super::Location;

/// The styles of msvc's output, so that an error, a check finding and a status line
/// share their colours.
pub mod palette {
    use anstyle::{AnsiColor, Style};

    pub const ERROR: Style = AnsiColor::Red.on_default().bold();
    pub const WARNING: Style = AnsiColor::Yellow.on_default().bold();
    pub const SUCCESS: Style = AnsiColor::Green.on_default().bold();
    /// The gutter: `-->`, `|`, line numbers, `=`.
    pub const GUTTER: Style = AnsiColor::Blue.on_default().bold();
    pub const HINT: Style = AnsiColor::Cyan.on_default().bold();
    pub const EMPHASIS: Style = Style::new().bold();
    pub const DIM: Style = Style::new().dimmed();
}

/// The style of one line of a unified diff: headers bold, additions green, removals
/// red, hunk headers cyan.
pub fn diff_style(line: &str) -> Style {
    if line.starts_with("+++") || line.starts_with("---") {
        Style::new().bold()
    } else if line.starts_with('+') {
        AnsiColor::Green.on_default()
    } else if line.starts_with('-') {
        AnsiColor::Red.on_default()
    } else if line.starts_with("@@") {
        AnsiColor::Cyan.on_default()
    } else {
        Style::new()
    }
}

/// Longest source line shown whole; longer ones are cut around the span.
const MAX_LINE: usize = 120;

/// The part of a source line to show (tabs expanded, long lines cut around the span
/// with `...`), with the caret's indent and width in that text.
pub fn excerpt(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    let start = column.saturating_sub(1).min(chars.len());
    let width = width.max(1);
    let (from, to) = if chars.len() <= MAX_LINE {
        (0, chars.len())
    } else {
        let from = start.saturating_sub(40);
        (from, (from + MAX_LINE).min(chars.len()))
    };
    let expand = |cs: &[char]| -> String {
        cs.iter()
            .map(|c| {
                if *c == '\t' {
                    "    ".to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    };
    let lead = if from > 0 { "..." } else { "" };
    let tail = if to < chars.len() { "..." } else { "" };
    let shown = format!("{lead}{}{tail}", expand(&chars[from..to]));
    let indent = lead.len() + expand(&chars[from..start.max(from)]).chars().count();
    let width = width.min(to.saturating_sub(start).max(1));
    (shown, indent, width)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn word(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }

    fn style(self) -> Style {
        match self {
            Severity::Error => palette::ERROR,
            Severity::Warning => palette::WARNING,
        }
    }
}

/// Everything one rendered message shows.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub severity: Severity,
    /// A check's ID, shown as `error[ID]`.
    pub code: Option<&'a str>,
    pub text: &'a str,
    /// The path as it is shown, and the place in that file (`line == 0`: the whole file).
    pub place: Option<(String, &'a Location)>,
    /// Lines under the source: a cycle, a diff (coloured as one).
    pub notes: &'a [String],
    /// The error's `source()` chain, outermost first.
    pub causes: Vec<String>,
    pub hint: Option<&'a str>,
}

impl<'a> Message<'a> {
    pub fn new(severity: Severity, text: &'a str) -> Self {
        Self {
            severity,
            code: None,
            text,
            place: None,
            notes: &[],
            causes: Vec::new(),
            hint: None,
        }
    }

    /// The message as text, with ANSI styles when `color`:
    ///
    /// ```text
    /// error[PORT_CONFLICT]: port 8080 is used twice
    ///   --> services.toml:29:14
    ///    |
    /// 29 | port = 8080
    ///    |        ^^^^
    ///    = note: ...
    /// hint: ...
    /// ```
    pub fn render(&self, color: bool) -> String {
        let paint = |style: Style, text: &str| {
            if color {
                format!("{style}{text}{style:#}")
            } else {
                text.to_string()
            }
        };
        let style = self.severity.style();
        let mut out = String::new();
        let word = match self.code {
            Some(code) => format!("{}[{code}]", self.severity.word()),
            None => self.severity.word().to_string(),
        };
        let _ = writeln!(
            out,
            "{}{}",
            paint(style, &word),
            paint(palette::EMPHASIS, &format!(": {}", self.text))
        );
        let mut gutter_width = 1;
        if let Some((shown, loc)) = &self.place {
            let place = if loc.line == 0 {
                shown.clone()
            } else {
                format!("{shown}:{}:{}", loc.line, loc.column)
            };
            if loc.line > 0 {
                gutter_width = loc.line.to_string().len();
            }
            let pad = " ".repeat(gutter_width);
            let _ = writeln!(out, "{pad}{} {place}", paint(palette::GUTTER, "-->"));
            if let Some(line) = &loc.source_line
                && loc.line > 0
            {
                let bar = paint(palette::GUTTER, "|");
                let _ = writeln!(out, "{pad} {bar}");
                let (shown, indent, width) = excerpt(line, loc.column, loc.width);
                let number = paint(palette::GUTTER, &loc.line.to_string());
                let _ = writeln!(out, "{number} {bar} {shown}");
                let carets = paint(style, &"^".repeat(width));
                let _ = writeln!(out, "{pad} {bar} {}{carets}", " ".repeat(indent));
            }
        }
        let pad = " ".repeat(gutter_width);
        for note in self.notes {
            let mut lines = note.lines();
            let first = lines.next().unwrap_or("");
            let _ = writeln!(out, "{pad} {} note: {first}", paint(palette::GUTTER, "="));
            for line in lines {
                let _ = writeln!(out, "{pad}     {}", paint(diff_style(line), line));
            }
        }
        for cause in &self.causes {
            // Tera and toml put their own multi-line reports in Display; indent them.
            for (i, line) in cause.lines().enumerate() {
                if i == 0 {
                    let _ = writeln!(out, "  caused by: {line}");
                } else {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        if let Some(hint) = self.hint {
            let _ = writeln!(out, "{}: {hint}", paint(palette::HINT, "hint"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_around_the_span() {
        let (shown, indent, width) = excerpt("a\tb", 3, 1);
        assert_eq!((shown.as_str(), indent, width), ("a    b", 5, 1));
        let long = format!("{}X{}", "a".repeat(300), "b".repeat(300));
        let (shown, indent, width) = excerpt(&long, 301, 1);
        assert!(
            shown.starts_with("...") && shown.ends_with("..."),
            "{shown}"
        );
        assert_eq!(shown.chars().nth(indent), Some('X'));
        assert_eq!(width, 1);
        assert!(shown.len() < 130);
    }

    #[test]
    fn the_layout_of_a_finding() {
        let text = "[services.a]\nport = 8080\n";
        let loc = Location::from_span(std::path::Path::new("services.toml"), text, 20..24);
        let notes = ["the cycle:\n+ added\n- removed".to_string()];
        let message = Message {
            code: Some("PORT_CONFLICT"),
            place: Some(("shop/services.toml".into(), &loc)),
            notes: &notes,
            hint: Some("pick another port"),
            ..Message::new(Severity::Warning, "port 8080 is used twice")
        };
        assert_eq!(
            message.render(false),
            "warning[PORT_CONFLICT]: port 8080 is used twice
 --> shop/services.toml:2:8
  |
2 | port = 8080
  |        ^^^^
  = note: the cycle:
      + added
      - removed
hint: pick another port
"
        );
        let colored = message.render(true);
        assert!(
            colored.contains(&format!("{}^^^^", palette::WARNING)),
            "{colored}"
        );
        assert!(colored.contains(&format!("{}+ added", diff_style("+"))));
    }

    #[test]
    fn a_whole_file_and_a_cause_chain() {
        let loc = Location::file("services.toml");
        let message = Message {
            place: Some(("services.toml".into(), &loc)),
            causes: vec!["TOML parse error\nline two".into()],
            ..Message::new(Severity::Error, "cannot read")
        };
        assert_eq!(
            message.render(false),
            "error: cannot read\n --> services.toml\n  caused by: TOML parse error\n  line two\n"
        );
    }
}
