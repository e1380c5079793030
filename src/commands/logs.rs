//! `msvc logs [SERVICE] [-f]`: the lines `msvc up` keeps in `.msvc/up.log`.

use std::collections::VecDeque;
use std::io::{BufWriter, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use crate::cli::LogsArgs;
use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::supervisor::logs::{Label, LineFormat, LineWriter, LoggedLine};
use crate::supervisor::state::StateDir;
use crate::workspace::Workspace;
use crate::workspace::validate::did_you_mean;

pub fn run(cwd: &Path, args: &LogsArgs, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    let dir = StateDir::new(&root);
    let running = dir.is_running();
    if args.follow && !running {
        return Err(dir.not_running());
    }
    let path = dir.log_path();
    if !path.is_file() {
        return Err(Error::new(format!("no logs in `{}` yet", path.display()))
            .hint("start the services with `msvc up`"));
    }
    // Labels in the order `up` coloured them, so both show a service alike.
    let mut names: Vec<(String, String)> = dir
        .read()
        .map(|s| {
            s.instances
                .into_iter()
                .map(|i| (i.service, i.instance))
                .collect()
        })
        .unwrap_or_default();
    names.push(("msvc".to_string(), "msvc".to_string()));
    if let Some(service) = &args.service
        && !names.iter().any(|(s, _)| s == service)
    {
        let known: Vec<String> = names.iter().map(|(s, _)| s.clone()).collect();
        return Err(
            Error::new(format!("no service `{service}` in the last `msvc up`")).hint(
                did_you_mean(service, &known)
                    .unwrap_or_else(|| format!("the services are: {}", known.join(", "))),
            ),
        );
    }
    if !running && !printer.is_json() && !printer.quiet {
        printer.warn("no `msvc up` is running; these are the logs of the last run");
    }
    let labels = Label::for_instances(names.iter().map(|(s, l)| (s.as_str(), l.as_str())));
    let mut out = LineWriter::new(
        BufWriter::new(Printer::raw_stdout()),
        LineFormat::for_stdout(printer.is_json()),
        &labels,
    );
    let wanted = |line: &LoggedLine<'_>| -> Option<usize> {
        let index = labels.iter().position(|l| l.label == line.label)?;
        match &args.service {
            Some(s) if labels[index].service != *s => None,
            _ => Some(index),
        }
    };

    let mut file = fs_err::File::open(&path)?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let mut offset = text.len() as u64;
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    let mut carry = text[complete..].to_string();
    let mut tail: VecDeque<&str> = VecDeque::new();
    for raw in text[..complete].lines() {
        if LoggedLine::parse(raw).is_some_and(|l| wanted(&l).is_some()) {
            if args.lines > 0 && tail.len() == args.lines {
                tail.pop_front();
            }
            tail.push_back(raw);
        }
    }
    for raw in tail {
        if let Some(line) = LoggedLine::parse(raw)
            && let Some(i) = wanted(&line)
        {
            out.line(&labels[i], line.stream, line.time_ms, line.line);
        }
    }
    out.flush();
    if !args.follow {
        return Ok(0);
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let still_running = dir.is_running();
        let len = fs_err::metadata(&path).map_or(0, |m| m.len());
        if len < offset {
            // Moved to up.log.1 and started again.
            file = fs_err::File::open(&path)?;
            offset = 0;
            carry.clear();
        }
        file.seek(SeekFrom::Start(offset))?;
        let mut fresh = String::new();
        let n = file.read_to_string(&mut fresh)?;
        offset += n as u64;
        carry.push_str(&fresh);
        let complete = carry.rfind('\n').map_or(0, |i| i + 1);
        for raw in carry[..complete].lines() {
            if let Some(line) = LoggedLine::parse(raw)
                && let Some(i) = wanted(&line)
            {
                out.line(&labels[i], line.stream, line.time_ms, line.line);
            }
        }
        carry.drain(..complete);
        out.flush();
        if !still_running {
            return Ok(0);
        }
    }
}
