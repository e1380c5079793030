//! Service output: whole lines, prefixed with the instance's label (coloured and aligned
//! on a terminal, plain when piped, JSON on request), batched through one buffer, and
//! kept in `.msvc/up.log` for `msvc logs`.

use std::collections::VecDeque;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use super::now_ms;

/// Lines kept per instance for the message that gives up on it.
pub const RECENT_LINES: usize = 15;
/// A line longer than this is cut in pieces, so a service without newlines cannot make
/// msvc hold unbounded memory.
const MAX_LINE: usize = 64 * 1024;
/// The log file is moved to `up.log.1` past this size.
const ROTATE_AT: u64 = 64 * 1024 * 1024;

const PALETTE: [AnsiColor; 6] = [
    AnsiColor::Cyan,
    AnsiColor::Magenta,
    AnsiColor::Blue,
    AnsiColor::Yellow,
    AnsiColor::Green,
    AnsiColor::BrightRed,
];

/// Which of a process's outputs a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn from_byte(b: u8) -> Self {
        if b == 2 {
            Stream::Stderr
        } else {
            Stream::Stdout
        }
    }

    pub fn as_byte(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }

    fn letter(self) -> char {
        match self {
            Stream::Stdout => 'o',
            Stream::Stderr => 'e',
        }
    }
}

/// How lines are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// `label | line`, `color` deciding on ANSI styles.
    Text { color: bool },
    /// One JSON object per line.
    Json,
}

impl LineFormat {
    /// Text with colour when stdout is a terminal and `NO_COLOR` is unset, or JSON.
    pub fn for_stdout(json: bool) -> Self {
        if json {
            LineFormat::Json
        } else {
            LineFormat::Text {
                color: crate::printer::Printer::stdout_has_color(),
            }
        }
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    time_ms: u64,
    service: &'a str,
    instance: &'a str,
    stream: Stream,
    line: &'a str,
}

/// Formats lines of labelled instances the same way for `up` and `logs`.
pub struct LineWriter<W: Write> {
    out: W,
    format: LineFormat,
    width: usize,
}

/// A label and its style.
#[derive(Debug, Clone)]
pub struct Label {
    pub service: String,
    pub label: String,
    style: Style,
}

impl Label {
    /// Labels for instances, coloured by service in the order given.
    pub fn for_instances<'a>(
        instances: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<Label> {
        let mut services: Vec<&str> = Vec::new();
        instances
            .into_iter()
            .map(|(service, label)| {
                let index = services
                    .iter()
                    .position(|s| *s == service)
                    .unwrap_or_else(|| {
                        services.push(service);
                        services.len() - 1
                    });
                Label {
                    service: service.to_string(),
                    label: label.to_string(),
                    style: PALETTE[index % PALETTE.len()].on_default().bold(),
                }
            })
            .collect()
    }
}

impl<W: Write> LineWriter<W> {
    pub fn new(out: W, format: LineFormat, labels: &[Label]) -> Self {
        let width = labels.iter().map(|l| l.label.len()).max().unwrap_or(0);
        Self { out, format, width }
    }

    pub fn line(&mut self, label: &Label, stream: Stream, time_ms: u64, line: &str) {
        let _ = match self.format {
            LineFormat::Text { color: true } => {
                let style = label.style;
                writeln!(
                    self.out,
                    "{style}{:<width$} |{style:#} {line}",
                    label.label,
                    width = self.width
                )
            }
            LineFormat::Text { color: false } => {
                writeln!(
                    self.out,
                    "{:<width$} | {line}",
                    label.label,
                    width = self.width
                )
            }
            LineFormat::Json => {
                let record = JsonLine {
                    time_ms,
                    service: &label.service,
                    instance: &label.label,
                    stream,
                    line,
                };
                serde_json::to_writer(&mut self.out, &record)
                    .map_err(std::io::Error::other)
                    .and_then(|()| self.out.write_all(b"\n"))
            }
        };
    }

    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }

    pub fn inner_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

/// The log file: `time_ms \t label \t o|e \t line`, moved aside when it grows large.
pub struct LogFile {
    path: PathBuf,
    file: Option<BufWriter<fs_err::File>>,
    written: u64,
}

impl LogFile {
    /// Starts a fresh log at `path` (the previous run's is moved to `.1`).
    pub fn create(path: &Path) -> std::io::Result<Self> {
        if path.exists() {
            let _ = fs_err::rename(path, rotated(path));
        }
        let file = fs_err::File::create(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(BufWriter::with_capacity(64 * 1024, file)),
            written: 0,
        })
    }

    fn line(&mut self, time_ms: u64, label: &str, stream: Stream, line: &str) {
        let Some(file) = &mut self.file else { return };
        let before = self.written;
        if writeln!(file, "{time_ms}\t{label}\t{}\t{line}", stream.letter()).is_err() {
            // A full disk must not stop the services; the terminal still gets the lines.
            self.file = None;
            return;
        }
        self.written = before + (label.len() + line.len() + 24) as u64;
        if self.written > ROTATE_AT {
            let _ = file.flush();
            let _ = fs_err::rename(&self.path, rotated(&self.path));
            self.file = fs_err::File::create(&self.path)
                .ok()
                .map(|f| BufWriter::with_capacity(64 * 1024, f));
            self.written = 0;
        }
    }

    fn flush(&mut self) {
        if let Some(f) = &mut self.file {
            let _ = f.flush();
        }
    }
}

fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// A line of the log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedLine<'a> {
    pub time_ms: u64,
    pub label: &'a str,
    pub stream: Stream,
    pub line: &'a str,
}

impl<'a> LoggedLine<'a> {
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.splitn(4, '\t');
        let time_ms = parts.next()?.parse().ok()?;
        let label = parts.next()?;
        let stream = match parts.next()? {
            "e" => Stream::Stderr,
            _ => Stream::Stdout,
        };
        Some(Self {
            time_ms,
            label,
            stream,
            line: parts.next().unwrap_or(""),
        })
    }
}

/// Where every instance's output goes: the terminal (or pipe), the log file, and a few
/// recent lines per instance. Lines are buffered and flushed when the reader runs out of
/// input, so a chatty service costs one write per batch, and a quiet one's lines show
/// at once.
pub struct LogSink {
    out: LineWriter<BufWriter<std::io::Stdout>>,
    labels: Vec<Label>,
    file: Option<LogFile>,
    /// Bytes of an unfinished line, per instance and stream.
    partial: Vec<[Vec<u8>; 2]>,
    recent: Vec<VecDeque<String>>,
    json: bool,
    quiet: bool,
    /// Whether the services' lines go to stdout (`msvc up`) or only to the log file and
    /// the recent lines (`msvc test`, whose stdout is its report).
    echo: bool,
}

impl LogSink {
    pub fn new(labels: Vec<Label>, format: LineFormat, file: Option<LogFile>, quiet: bool) -> Self {
        let out = LineWriter::new(
            BufWriter::with_capacity(64 * 1024, crate::printer::Printer::raw_stdout()),
            format,
            &labels,
        );
        let n = labels.len();
        Self {
            out,
            labels,
            file,
            partial: (0..n).map(|_| [Vec::new(), Vec::new()]).collect(),
            recent: (0..n)
                .map(|_| VecDeque::with_capacity(RECENT_LINES))
                .collect(),
            json: format == LineFormat::Json,
            quiet,
            echo: true,
        }
    }

    /// Keeps the services' lines off stdout: the log file and [`LogSink::recent`] keep them.
    #[must_use]
    pub fn without_echo(mut self) -> Self {
        self.echo = false;
        self
    }

    /// Output of instance `index`; whole lines are written, the rest kept for later.
    pub fn chunk(&mut self, index: usize, stream: Stream, data: &[u8]) {
        if index >= self.labels.len() {
            return;
        }
        let slot = usize::from(stream == Stream::Stderr);
        let time_ms = now_ms();
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let (line, tail) = rest.split_at(pos);
            rest = &tail[1..];
            let mut partial = std::mem::take(&mut self.partial[index][slot]);
            if partial.is_empty() {
                self.emit(index, stream, time_ms, line);
            } else {
                partial.extend_from_slice(line);
                self.emit(index, stream, time_ms, &partial);
                partial.clear();
            }
            self.partial[index][slot] = partial;
        }
        let partial = &mut self.partial[index][slot];
        partial.extend_from_slice(rest);
        if partial.len() >= MAX_LINE {
            let line = std::mem::take(partial);
            self.emit(index, stream, time_ms, &line);
        }
    }

    /// The stream ended: a last line without newline is still a line.
    pub fn end(&mut self, index: usize, stream: Stream) {
        if index >= self.labels.len() {
            return;
        }
        let slot = usize::from(stream == Stream::Stderr);
        let line = std::mem::take(&mut self.partial[index][slot]);
        if !line.is_empty() {
            self.emit(index, stream, now_ms(), &line);
        }
    }

    fn emit(&mut self, index: usize, stream: Stream, time_ms: u64, raw: &[u8]) {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw);
        let label = &self.labels[index];
        if self.echo {
            self.out.line(label, stream, time_ms, &line);
        }
        if let Some(file) = &mut self.file {
            file.line(time_ms, &label.label, stream, &line);
        }
        let recent = &mut self.recent[index];
        let mut kept = if recent.len() >= RECENT_LINES {
            recent.pop_front().unwrap_or_default()
        } else {
            String::new()
        };
        kept.clear();
        kept.push_str(&line);
        recent.push_back(kept);
    }

    /// A message of msvc's own: stderr in text mode (after the lines before it), a JSON
    /// object among the lines in JSON mode, and the log file either way.
    pub fn event(&mut self, kind: &str, verb: &str, instance: Option<&str>, message: &str) {
        let time_ms = now_ms();
        if let Some(file) = &mut self.file {
            file.line(
                time_ms,
                "msvc",
                Stream::Stderr,
                &format!("{verb} {message}"),
            );
        }
        if self.json && self.echo {
            let record = serde_json::json!({
                "time_ms": time_ms,
                "event": kind,
                "instance": instance,
                "message": format!("{verb} {message}"),
            });
            let out = self.out.inner_mut();
            let _ = serde_json::to_writer(&mut *out, &record);
            let _ = out.write_all(b"\n");
            self.flush();
            return;
        }
        self.flush();
        let warn = matches!(kind, "crashed" | "gave_up" | "failed" | "unhealthy");
        if self.quiet && !warn {
            return;
        }
        crate::printer::Printer::event(verb, message, warn);
    }

    /// The last lines of an instance, oldest first.
    pub fn recent(&self, index: usize) -> Vec<String> {
        self.recent
            .get(index)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn flush(&mut self) {
        self.out.flush();
        if let Some(file) = &mut self.file {
            file.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_are_aligned() {
        let labels = Label::for_instances([("a", "a"), ("user-api", "user-api.2")]);
        let mut w = LineWriter::new(Vec::new(), LineFormat::Text { color: false }, &labels);
        w.line(&labels[0], Stream::Stdout, 0, "hello");
        w.line(&labels[1], Stream::Stderr, 0, "world");
        assert_eq!(
            String::from_utf8(w.out).unwrap(),
            "a          | hello\nuser-api.2 | world\n"
        );
    }

    #[test]
    fn json_lines_are_objects() {
        let labels = Label::for_instances([("a", "a")]);
        let mut w = LineWriter::new(Vec::new(), LineFormat::Json, &labels);
        w.line(&labels[0], Stream::Stderr, 7, "say \"hi\"");
        let v: serde_json::Value = serde_json::from_slice(&w.out).unwrap();
        assert_eq!(v["line"], "say \"hi\"");
        assert_eq!(v["stream"], "stderr");
        assert_eq!(v["instance"], "a");
    }

    #[test]
    fn logged_lines_round_trip() {
        let l = LoggedLine::parse("12\tuser-api\te\ta\tb").unwrap();
        assert_eq!(l.time_ms, 12);
        assert_eq!(l.label, "user-api");
        assert_eq!(l.stream, Stream::Stderr);
        assert_eq!(l.line, "a\tb");
    }
}
