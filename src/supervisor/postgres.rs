//! A private `PostgreSQL` cluster for `msvc up` and `msvc test`, when no server answers
//! where the services' databases should be: made once with the machine's `initdb` (its
//! data in `.msvc/postgres`), each service's database created in single-user mode before
//! the server starts, then the server supervised like a service, on a free loopback port,
//! stopped with the rest. `initdb` and `postgres` refuse to run as root: as root, msvc
//! runs them as the `postgres` user.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Where the cluster's files are, under the workspace's `.msvc/`.
const DATA_DIR: &str = "postgres";
/// The user the server runs as when msvc runs as root.
const SERVER_USER: &str = "postgres";
/// Where `PostgreSQL`'s binaries are, when not where `pg_config --bindir` says.
pub const BINDIR_ENV: &str = "MSVC_POSTGRES_BINDIR";

/// The cluster, ready to start: its data made and every database in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub port: u16,
    pub data: PathBuf,
    /// The server in the foreground, as the user it must run as.
    pub program: String,
    pub args: Vec<String>,
    /// The databases this run created (the others existed).
    pub created: Vec<String>,
    bindir: PathBuf,
    as_server_user: bool,
}

impl Cluster {
    /// Makes the cluster under `state_dir` if it has none, and creates each of
    /// `databases` it lacks; the server is to listen on 127.0.0.1:`port`.
    pub fn prepare(state_dir: &Path, port: u16, databases: &[String]) -> Result<Self> {
        let bindir = bindir()?;
        let as_server_user = nix::unistd::geteuid().is_root();
        let data = state_dir.join(DATA_DIR);
        let mut cluster = Self {
            port,
            data,
            program: String::new(),
            args: Vec::new(),
            created: Vec::new(),
            bindir,
            as_server_user,
        };
        if !cluster.data.join("PG_VERSION").is_file() {
            cluster.init()?;
        }
        cluster.created = cluster.single_user(databases, "CREATE")?;
        let server = cluster.bindir.join("postgres").display().to_string();
        let data = cluster.data.display().to_string();
        let args = [
            "-D",
            &data,
            "-p",
            &port.to_string(),
            "-h",
            "127.0.0.1",
            "-k",
            "",
        ]
        .map(str::to_owned);
        (cluster.program, cluster.args) = cluster.wrapped(&server, &args);
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/`, to which a database's name is added.
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Drops `databases` in single-user mode, with the server stopped.
    pub fn drop_databases(&self, databases: &[String]) -> Result<()> {
        self.single_user(databases, "DROP").map(|_| ())
    }

    fn init(&self) -> Result<()> {
        fs_err::create_dir_all(&self.data)?;
        if self.as_server_user {
            let (uid, gid) = server_user()?;
            std::os::unix::fs::chown(&self.data, Some(uid), Some(gid))?;
        }
        let initdb = self.bindir.join("initdb").display().to_string();
        let data = self.data.display().to_string();
        let args = [
            "-D",
            &data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-instructions",
        ]
        .map(str::to_owned);
        let (program, args) = self.wrapped(&initdb, &args);
        let out = Command::new(&program)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::new(format!("cannot run {initdb}: {e}")))?;
        if !out.status.success() {
            // Half a cluster would be taken for one next time.
            let _ = fs_err::remove_dir_all(&self.data);
            let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            let hint = if self.as_server_user {
                format!(
                    "the `{SERVER_USER}` user must be able to reach {}: make the directories above it readable (chmod o+x), or point `[database] url` at a server that runs",
                    self.data.display()
                )
            } else {
                "point `[database] url` in services.toml (or DATABASE_URL) at a server that runs"
                    .to_owned()
            };
            return Err(Error::new(format!(
                "initdb could not make a cluster in {}: {why}",
                self.data.display()
            ))
            .hint(hint));
        }
        Ok(())
    }

    /// Runs `VERB DATABASE "name"` for each name in single-user mode; returns those that
    /// succeeded (a database that exists already, or is gone already, is not an error).
    fn single_user(&self, databases: &[String], verb: &str) -> Result<Vec<String>> {
        if databases.is_empty() {
            return Ok(Vec::new());
        }
        let server = self.bindir.join("postgres").display().to_string();
        let data = self.data.display().to_string();
        let args = ["--single", "-D", &data, "postgres"].map(str::to_owned);
        let (program, args) = self.wrapped(&server, &args);
        let mut child = Command::new(&program)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::new(format!("cannot run {server}: {e}")))?;
        // Names msvc made: lowercase letters, digits and `_`, so quoting is enough.
        let mut input = String::new();
        for db in databases {
            let _ = writeln!(input, "{verb} DATABASE \"{db}\";");
        }
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        let out = child.wait_with_output()?;
        let log = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(Error::new(format!(
                "the private PostgreSQL cluster in {} did not start in single-user mode: {}",
                self.data.display(),
                log.trim()
            ))
            .hint(format!(
                "another server may be running on it (see {}/postmaster.pid); stop it, or delete {} to start over",
                self.data.display(),
                self.data.display()
            )));
        }
        Ok(databases
            .iter()
            .filter(|db| !log.contains(&format!("database \"{db}\"")))
            .cloned()
            .collect())
    }

    /// `program args`, as the server's user when msvc is root.
    fn wrapped(&self, program: &str, args: &[String]) -> (String, Vec<String>) {
        if !self.as_server_user {
            return (program.to_owned(), args.to_vec());
        }
        let mut all: Vec<String> = [
            "--reuid",
            SERVER_USER,
            "--regid",
            SERVER_USER,
            "--init-groups",
            "--",
        ]
        .map(str::to_owned)
        .to_vec();
        all.push(program.to_owned());
        all.extend(args.iter().cloned());
        ("setpriv".to_owned(), all)
    }
}

/// The directory of `initdb` and `postgres`: [`BINDIR_ENV`], else `pg_config --bindir`,
/// else the newest under Debian's `/usr/lib/postgresql`.
fn bindir() -> Result<PathBuf> {
    let has_initdb = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(dir) = std::env::var_os(BINDIR_ENV).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if has_initdb(&dir) {
            return Ok(dir);
        }
        return Err(Error::new(format!(
            "{BINDIR_ENV} is {}, which has no initdb and postgres",
            dir.display()
        ))
        .hint(
            "point it at PostgreSQL's bin directory (`pg_config --bindir` prints it), or unset it",
        ));
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut debian: Vec<PathBuf> = fs_err::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(std::result::Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    debian.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    from_pg_config
        .into_iter()
        .chain(debian.into_iter().rev())
        .find(|d| has_initdb(d))
        .ok_or_else(|| {
            Error::new("PostgreSQL's initdb is not installed, so msvc cannot start a private server")
                .hint("install PostgreSQL (e.g. `apt-get install postgresql`), or point `[database] url` in services.toml (or DATABASE_URL) at a server that runs")
        })
}

/// The uid and gid of [`SERVER_USER`], from /etc/passwd.
fn server_user() -> Result<(u32, u32)> {
    let passwd = fs_err::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&SERVER_USER) && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .ok_or_else(|| {
            Error::new(format!(
                "msvc runs as root, and PostgreSQL refuses to: there is no `{SERVER_USER}` user to run it as"
            ))
            .hint("run msvc as another user, or create the user (`useradd --system postgres`)")
        })
}
