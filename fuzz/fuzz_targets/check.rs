//! A workspace whose files are any bytes: `msvc check` reports, never panics or hangs.
//!
//! The input is the files of a small workspace separated by NUL bytes, in the order of
//! `FILES`; missing parts leave a file out. `fuzz/run.sh` seeds it from the example
//! system and the check fixtures.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use msvc::check::{self, Options, junit, output, sarif};

/// The files an input fills in, in order.
const FILES: &[&str] = &[
    "services.toml",
    "proto/user_service/v1/user_service.proto",
    "services/user-api/Dockerfile",
    "services/user-api/openapi.yaml",
    "docker-compose.yml",
    "proto/shared/v1/shared.proto",
];

fn workspace() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        for d in [
            "services/user-api",
            "services/user-service",
            "services/email-worker",
            "proto/shared/v1",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).expect("dirs");
        }
        dir
    })
    .path()
}

fuzz_target!(|data: &[u8]| {
    let root = workspace();
    let mut parts = data.split(|b| *b == 0);
    for file in FILES {
        let path = root.join(file);
        match parts.next() {
            Some(bytes) => {
                std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
                std::fs::write(&path, bytes).expect("write");
            }
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let Ok(report) = check::run(root, &Options::default()) else {
        return;
    };
    let paths = output::PathStyle::new(Path::new(""));
    let _ = output::text(&report, &paths, true, false);
    let _ = output::json(&report, &paths);
    let _ = output::github(&report, &paths);
    let _ = sarif::sarif(&report, &paths);
    let _ = junit::junit(&report, &paths);
});
