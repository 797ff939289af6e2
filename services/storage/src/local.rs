//! The local default: a `clickhouse-server` process that Hypercare runs itself.
//!
//! When no ClickHouse URL is configured, `hypercare serve` starts a server bound to
//! 127.0.0.1 with every file it writes under `<data_dir>/clickhouse/`, runs as the
//! current user, and stops it when Hypercare stops. The test harness uses the same
//! code with port 0 and a throw-away folder.
//!
//! The config written here is the minimum the 18.16 server needs (see DESIGN.md):
//! a `<yandex>` root, loopback listen host, ports, paths, a users file with a
//! `default` user limited to loopback, and a log under the folder.
//!
//! Loopback is not a boundary on a shared machine: the `default` user gets a
//! password generated at the first start and kept in `<dir>/password` (mode
//! 0600), and the folder is the user's alone (0700). [`LocalClickHouse::password`]
//! hands it to our own clients; `clickhouse-client --password "$(cat ...)"` to a
//! person.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::config::LocalServerSettings;
use crate::{Error, Result};

/// A running local ClickHouse server. Dropping it stops the server.
///
/// The process is spawned by a keeper thread that lives exactly as long as it:
/// Linux sends the parent-death signal when the spawning *thread* ends, so
/// spawning from a short-lived thread (a test's, a runtime's blocking pool)
/// would kill the server early.
#[derive(Debug)]
pub struct LocalClickHouse {
    pid: Option<libc::pid_t>,
    exit: Arc<Mutex<Option<ExitStatus>>>,
    keeper: Option<std::thread::JoinHandle<()>>,
    http_port: u16,
    tcp_port: u16,
    dir: PathBuf,
    password: Option<SecretString>,
}

impl LocalClickHouse {
    /// Starts a server with its files under `dir` and waits until it answers `/ping`.
    pub async fn start(dir: &Path, settings: &LocalServerSettings) -> Result<Self> {
        if !settings.binary.exists() {
            return Err(Error::LocalServer(format!(
                "{} not found: install it (`apt-get install clickhouse-server`) or set \
                 clickhouse.url to a server of your own",
                settings.binary.display()
            )));
        }
        let http_port = port_or_free(settings.http_port)?;
        let tcp_port = port_or_free(settings.tcp_port)?;
        for (port, key) in [(http_port, "http_port"), (tcp_port, "tcp_port")] {
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                return Err(Error::LocalServer(format!(
                    "port {port} on 127.0.0.1 is already in use: stop what holds it or set \
                     clickhouse.local.{key} (0 picks a free port)"
                )));
            }
        }
        let dir = std::path::absolute(dir)?;
        for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        // The data are the launch's business events: readable by this user only.
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        }
        let config_path = dir.join("config.xml");
        fs::write(&config_path, server_config(&dir, http_port, tcp_port))?;
        let password = if settings.generate_password {
            Some(password(&dir)?)
        } else {
            None
        };
        write_private(&dir.join("users.xml"), &users_xml(password.as_deref()))?;

        let mut command = Command::new(&settings.binary);
        command
            .arg(format!("--config-file={}", config_path.display()))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(fs::File::create(dir.join("log/stderr.log"))?));
        die_with_parent(&mut command);
        let exit = Arc::new(Mutex::new(None));
        let (pid_tx, pid_rx) = std::sync::mpsc::channel();
        let keeper_exit = Arc::clone(&exit);
        let binary = settings.binary.display().to_string();
        let keeper = std::thread::Builder::new()
            .name("clickhouse-keeper".into())
            .spawn(move || match command.spawn() {
                Ok(mut child) => {
                    // The starter waits for this message; if it is gone, still reap the child.
                    pid_tx.send(Ok(child.id())).ok();
                    let status = child.wait();
                    *keeper_exit.lock().unwrap_or_else(|e| e.into_inner()) = status.ok();
                }
                Err(e) => {
                    pid_tx.send(Err(format!("cannot run {binary}: {e}"))).ok();
                }
            })?;
        let pid = pid_rx
            .recv()
            .map_err(|_| Error::LocalServer("the keeper thread died".into()))?
            .map_err(Error::LocalServer)?;
        let mut server = Self {
            pid: libc::pid_t::try_from(pid).ok(),
            exit,
            keeper: Some(keeper),
            http_port,
            tcp_port,
            dir,
            password: password.map(SecretString::from),
        };
        server
            .wait_ready(Duration::from_secs(settings.startup_timeout_secs))
            .await?;
        tracing::info!(
            url = %server.url(),
            tcp_port,
            dir = %server.dir.display(),
            "Local ClickHouse server is up."
        );
        Ok(server)
    }

    /// The server's HTTP URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The `default` user's password; `None` when `generate_password` is off.
    pub fn password(&self) -> Option<SecretString> {
        self.password.clone()
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    /// Stops the server (SIGTERM, then SIGKILL after `grace`) and waits for it.
    pub fn stop(&mut self, grace: Duration) {
        let Some(pid) = self.pid.take() else {
            return;
        };
        if self.exit_status().is_none() {
            signal(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while self.exit_status().is_none() {
            if Instant::now() >= deadline {
                tracing::warn!(
                    grace_secs = grace.as_secs(),
                    "Local ClickHouse did not stop in time; killing it."
                );
                signal(pid, libc::SIGKILL);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(keeper) = self.keeper.take()
            && keeper.join().is_err()
        {
            tracing::warn!("The ClickHouse keeper thread panicked.");
        }
        tracing::info!(dir = %self.dir.display(), "Local ClickHouse server stopped.");
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let addr = ("127.0.0.1", self.http_port);
        loop {
            if let Some(status) = self.exit_status() {
                self.pid = None;
                return Err(Error::LocalServer(format!(
                    "clickhouse-server exited ({status}) during start-up; its log says:\n{}",
                    self.log_tail()
                )));
            }
            if ping(addr).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop(Duration::from_secs(2));
                return Err(Error::LocalServer(format!(
                    "no answer on port {} after {}s; its log says:\n{}",
                    self.http_port,
                    timeout.as_secs(),
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self) -> String {
        ["log/clickhouse-server.err.log", "log/stderr.log"]
            .iter()
            .map(|name| tail(&self.dir.join(name), 2000))
            .filter(|t| !t.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for LocalClickHouse {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// One `GET /ping` over a plain TCP connection: the server may not accept
/// connections yet, and pulling an HTTP client in for this is not worth it.
async fn ping(addr: (&str, u16)) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(answer.ends_with(b"Ok.\n"))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

fn port_or_free(port: u16) -> Result<u16> {
    if port != 0 {
        return Ok(port);
    }
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn tail(path: &Path, max: u64) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut text = String::new();
    match file
        .seek(SeekFrom::Start(len.saturating_sub(max)))
        .and_then(|_| file.read_to_string(&mut text))
    {
        Ok(_) => text,
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

fn server_config(dir: &Path, http_port: u16, tcp_port: u16) -> String {
    let dir = dir.display();
    format!(
        r#"<?xml version="1.0"?>
<!-- Written by Hypercare at each start; edits are overwritten. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{dir}/log/clickhouse-server.log</log>
        <errorlog>{dir}/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>{dir}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>536870912</mark_cache_size>
    <uncompressed_cache_size>1073741824</uncompressed_cache_size>
</yandex>
"#
    )
}

/// The `default` user's password, made once and kept in `<dir>/password`.
fn password(dir: &Path) -> Result<String> {
    let path = dir.join("password");
    if let Ok(existing) = fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.to_owned());
        }
    }
    let made = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_private(&path, &format!("{made}\n"))?;
    Ok(made)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    // `mode` applies to new files only.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn users_xml(password: Option<&str>) -> String {
    let password = match password {
        Some(password) => format!(
            "<password_sha256_hex>{}</password_sha256_hex>",
            hex::encode(Sha256::digest(password.as_bytes()))
        ),
        None => "<password></password>".to_owned(),
    };
    format!(
        r#"<?xml version="1.0"?>
<!-- Written by Hypercare at each start: a user reachable from loopback only. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>8000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>
    <users>
        <default>
            {password}
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default></default>
    </quotas>
</yandex>
"#
    )
}

/// Asks Linux to send SIGTERM to the child if Hypercare dies without stopping it,
/// so that a crash or `kill -9` does not leave an orphan (here: the server
/// holding the data folder; in the tests: chromedriver). The signal follows the
/// *thread* that spawns the child, so spawn it from a thread that lives as long
/// as the child is wanted.
#[allow(unsafe_code)]
pub fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[allow(unsafe_code)]
fn signal(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid; no memory is shared. The keeper
    // thread has not reaped it yet (we checked `exit` first), so the pid is ours.
    unsafe {
        libc::kill(pid, signal);
    }
}
