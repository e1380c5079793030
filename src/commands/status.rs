//! `msvc status`: the services of the running `msvc up`, from `.msvc/up.json`.

use std::path::Path;

use crate::error::Result;
use crate::printer::Printer;
use crate::supervisor::state::StateDir;
use crate::workspace::Workspace;

pub fn run(cwd: &Path, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    let dir = StateDir::new(&root);
    if !dir.is_running() {
        return Err(dir.not_running());
    }
    let Ok(state) = dir.read() else {
        printer.json(&serde_json::json!({ "running": true, "up": null }));
        printer.line("msvc up is starting (checking ports, finding the broker, building): no service runs yet");
        return Ok(0);
    };
    if printer.is_json() {
        printer.json(&serde_json::json!({ "running": true, "up": state }));
        return Ok(0);
    }
    let port = |p: Option<u16>| p.map_or_else(|| "-".to_string(), |p| p.to_string());
    let rows: Vec<[String; 8]> = state
        .instances
        .iter()
        .map(|i| {
            [
                i.instance.clone(),
                i.kind.clone(),
                i.state.clone(),
                i.pid.map_or_else(|| "-".to_string(), |p| p.to_string()),
                port(i.port),
                port(i.admin_port),
                i.restarts.to_string(),
                i.health.clone(),
            ]
        })
        .collect();
    let header = [
        "SERVICE", "KIND", "STATE", "PID", "PORT", "ADMIN", "RESTARTS", "HEALTH",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    printer.line(&format!(
        "msvc up (pid {}) in {}{}",
        state.pid,
        state.workspace.display(),
        state
            .broker
            .as_ref()
            .map(|b| format!(", broker {b}"))
            .unwrap_or_default()
    ));
    printer.line(&line(&header.map(String::from)));
    for (row, i) in rows.iter().zip(&state.instances) {
        printer.line(&line(row));
        if let Some(exit) = i.last_exit.as_ref().filter(|_| i.state != "running") {
            printer.line(&format!("    last exit: {exit}"));
        }
    }
    Ok(0)
}
