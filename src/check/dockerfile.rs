//! Dockerfile checks: every service has a Dockerfile, whose final stage runs as a user
//! other than root and has a HEALTHCHECK, and whose images are pinned (no `latest`).

use std::collections::BTreeSet;
use std::ops::Range;

use super::Context;
use crate::error::Location;
use crate::error::SourceText;
use crate::workspace::diagnostic::Diagnostic;
use crate::workspace::model::Kind;
use crate::workspace::service_dir;

pub fn check(ctx: &Context<'_>, dirs: &BTreeSet<String>, out: &mut Vec<Diagnostic>) {
    let wanted = [
        "DOCKERFILE_ROOT_USER",
        "DOCKERFILE_NO_HEALTHCHECK",
        "DOCKERFILE_LATEST_TAG",
    ];
    let lint = wanted.iter().any(|id| ctx.levels.enabled(id));
    for (name, svc) in &ctx.ws.manifest.services {
        if svc.kind == Kind::Process || !dirs.contains(name) {
            continue;
        }
        let rel = service_dir(name).join("Dockerfile");
        let full = ctx.root.join(&rel);
        if !full.is_file() {
            out.push(
                Diagnostic::new(
                    "DOCKERFILE_MISSING",
                    format!("service `{name}` has no Dockerfile, which docker-compose.yml builds it from"),
                )
                .at(Location::file(service_dir(name)))
                .hint("restore services/NAME/Dockerfile; `msvc templates export DIR` shows msvc's in service/Dockerfile.tera"),
            );
            continue;
        }
        if !lint {
            continue;
        }
        let Ok(bytes) = fs_err::read(&full) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let source = SourceText::new(&rel, &text);
        lint_dockerfile(&source, out);
    }
}

/// One instruction: its keyword, its arguments and where they are.
#[derive(Debug)]
struct Instruction<'a> {
    keyword: String,
    /// The arguments, continuation lines joined.
    args: String,
    /// The first physical line of the instruction.
    first_line: &'a str,
    /// Byte offset of `first_line` in the file.
    offset: usize,
}

impl Instruction<'_> {
    /// The span of `needle` on the instruction's first line, else of the whole line.
    fn span_of(&self, needle: &str) -> Range<usize> {
        let trimmed = self.first_line.trim_end();
        let keyword_end = trimmed.len() - trimmed.trim_start().len() + self.keyword.len();
        match self
            .first_line
            .get(keyword_end..)
            .and_then(|rest| rest.find(needle))
        {
            Some(i) if !needle.is_empty() => {
                let start = self.offset + keyword_end + i;
                start..start + needle.len()
            }
            _ => {
                let lead = self.first_line.len() - self.first_line.trim_start().len();
                self.offset + lead..self.offset + trimmed.len()
            }
        }
    }
}

fn lint_dockerfile(source: &SourceText<'_>, out: &mut Vec<Diagnostic>) {
    let instructions = parse(source.text());
    let mut stages: Vec<String> = Vec::new();
    // Per stage: the FROM, the last USER and the HEALTHCHECK.
    let mut final_from: Option<&Instruction<'_>> = None;
    let mut user: Option<&Instruction<'_>> = None;
    let mut healthcheck: Option<&Instruction<'_>> = None;
    for ins in &instructions {
        match ins.keyword.as_str() {
            "FROM" => {
                let mut words = ins
                    .args
                    .split_whitespace()
                    .skip_while(|w| w.starts_with("--"));
                let image = words.next().unwrap_or("");
                if let Some(problem) = image_problem(image, &stages) {
                    out.push(
                        Diagnostic::new("DOCKERFILE_LATEST_TAG", problem)
                            .at(source.location(ins.span_of(image)))
                            .hint("pin a version tag (`rust:1.95-slim-bookworm`) or a digest (`image@sha256:...`)"),
                    );
                }
                if let (Some(as_kw), Some(stage)) = (words.next(), words.next())
                    && as_kw.eq_ignore_ascii_case("as")
                {
                    stages.push(stage.to_ascii_lowercase());
                }
                final_from = Some(ins);
                user = None;
                healthcheck = None;
            }
            "USER" => user = Some(ins),
            "HEALTHCHECK" => healthcheck = Some(ins),
            _ => {}
        }
    }
    let Some(from) = final_from else {
        return;
    };
    match user {
        None => out.push(
            Diagnostic::new(
                "DOCKERFILE_ROOT_USER",
                "the final stage runs as root: it has no USER",
            )
            .at(source.location(from.span_of("")))
            .hint(
                "add `USER nonroot:nonroot` (distroless images) or create a user and switch to it",
            ),
        ),
        Some(ins) => {
            let who = ins.args.split_whitespace().next().unwrap_or("");
            let name = who.split(':').next().unwrap_or("");
            if name == "root" || name == "0" {
                out.push(
                    Diagnostic::new("DOCKERFILE_ROOT_USER", format!("the final stage runs as root (`USER {who}`)"))
                        .at(source.location(ins.span_of(who)))
                        .hint("switch to a user other than root, e.g. `USER nonroot:nonroot` on distroless images"),
                );
            }
        }
    }
    let disabled = healthcheck.filter(|h| {
        h.args
            .split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("none"))
    });
    if healthcheck.is_none() || disabled.is_some() {
        let at = disabled.unwrap_or(from);
        out.push(
            Diagnostic::new(
                "DOCKERFILE_NO_HEALTHCHECK",
                if disabled.is_some() {
                    "the final stage turns its HEALTHCHECK off"
                } else {
                    "the final stage has no HEALTHCHECK"
                },
            )
            .at(source.location(at.span_of("")))
            .hint("add `HEALTHCHECK CMD [\"/usr/local/bin/NAME\", \"--healthcheck\"]`; msvc's services answer `--healthcheck`"),
        );
    }
}

/// Why a FROM image is not pinned, if it is not.
fn image_problem(image: &str, stages: &[String]) -> Option<String> {
    if image.is_empty() || image.contains('$') || image.contains('@') {
        return None;
    }
    let lower = image.to_ascii_lowercase();
    if lower == "scratch" || stages.contains(&lower) {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => Some(format!("image `{image}` has no tag, so it is `latest`")),
        Some((_, "latest")) => Some(format!("image `{image}` is tagged `latest`")),
        Some(_) => None,
    }
}

/// Splits a Dockerfile into instructions: comments and blank lines dropped, continuation
/// lines joined, heredoc bodies skipped, the `escape` parser directive honoured.
fn parse(text: &str) -> Vec<Instruction<'_>> {
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        lines.push((offset, line.trim_end_matches(['\n', '\r'])));
        offset += line.len();
    }
    let mut escape = '\\';
    let mut i = 0;
    // Parser directives: `# key=value` lines before anything else.
    while let Some((_, line)) = lines.get(i) {
        let Some(rest) = line.trim_start().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = rest.split_once('=') else {
            break;
        };
        if key.trim().eq_ignore_ascii_case("escape") && value.trim() == "`" {
            escape = '`';
        }
        i += 1;
    }
    let mut out = Vec::new();
    while i < lines.len() {
        let (offset, first_line) = lines[i];
        let trimmed = first_line.trim();
        i += 1;
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut joined = String::new();
        let mut line = first_line;
        loop {
            let t = line.trim_end();
            if let Some(body) = t.strip_suffix(escape) {
                joined.push_str(body);
                joined.push(' ');
                // Comment and blank lines inside a continuation are dropped.
                while i < lines.len() && {
                    let n = lines[i].1.trim();
                    n.is_empty() || n.starts_with('#')
                } {
                    i += 1;
                }
                let Some((_, next)) = lines.get(i) else { break };
                line = next;
                i += 1;
            } else {
                joined.push_str(t);
                break;
            }
        }
        let joined = joined.trim();
        let (keyword, args) = joined
            .split_once(char::is_whitespace)
            .unwrap_or((joined, ""));
        // A heredoc (`RUN <<EOF`) runs until its delimiter line.
        if let Some(delimiter) = heredoc_delimiter(args) {
            while i < lines.len() && lines[i].1.trim() != delimiter {
                i += 1;
            }
            i += 1;
        }
        out.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_string(),
            first_line,
            offset,
        });
    }
    out
}

fn heredoc_delimiter(args: &str) -> Option<String> {
    let start = args.find("<<")? + 2;
    let rest = args[start..].trim_start_matches('-');
    let rest = rest.trim_start_matches(['"', '\'']);
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<(&'static str, usize, usize)> {
        let source = SourceText::new("Dockerfile", text);
        let mut out = Vec::new();
        lint_dockerfile(&source, &mut out);
        out.iter()
            .map(|d| {
                let l = d.location.as_ref().unwrap();
                (d.id, l.line, l.column)
            })
            .collect()
    }

    #[test]
    fn pinned_non_root_with_healthcheck_passes() {
        let text = "# syntax=docker/dockerfile:1\nFROM rust:1.95 AS build\nRUN cargo build \\\n    --release\nFROM gcr.io/distroless/cc-debian12:nonroot\nCOPY --from=build /a /a\nUSER nonroot:nonroot\nHEALTHCHECK --interval=10s \\\n  CMD [\"/a\", \"--healthcheck\"]\n";
        assert_eq!(ids(text), []);
    }

    #[test]
    fn latest_untagged_root_and_no_healthcheck() {
        let text = "FROM rust AS build\nFROM --platform=linux/amd64 localhost:5000/app:latest\nUSER root\n";
        assert_eq!(
            ids(text),
            [
                ("DOCKERFILE_LATEST_TAG", 1, 6),
                ("DOCKERFILE_LATEST_TAG", 2, 29),
                ("DOCKERFILE_ROOT_USER", 3, 6),
                ("DOCKERFILE_NO_HEALTHCHECK", 2, 1),
            ]
        );
    }

    #[test]
    fn stages_scratch_digests_and_heredocs() {
        let text = "FROM rust:1 AS build\nRUN <<EOF\nUSER root\nEOF\nFROM build\nFROM scratch\nFROM alpine@sha256:abc\nUSER 1000\nHEALTHCHECK NONE\n";
        assert_eq!(ids(text), [("DOCKERFILE_NO_HEALTHCHECK", 9, 1)]);
    }

    #[test]
    fn odd_input_does_not_panic() {
        for text in [
            "",
            "\\",
            "FROM",
            "FROM \\\n",
            "USER\n",
            "#escape=`\nFROM a`\n",
            "RUN <<\n",
            "FROM é:latest",
        ] {
            let _ = ids(text);
        }
    }
}
