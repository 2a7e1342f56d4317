//! `shop up`: the shop as services in one command. A database per service on the given
//! PostgreSQL server (created when missing), the three services and the gateway as child
//! processes of this one, their logs prefixed with their names; all stopped on Ctrl-C or
//! SIGTERM, or when one of them ends unexpectedly.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use clap::Args;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tessera_core::BoxError;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::secret;
use crate::service::Service;

/// `shop up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// A PostgreSQL database to connect to (e.g. `postgres://postgres@127.0.0.1/postgres`):
    /// each service gets a database of its own on that server,
    /// `{database-prefix}_{service}`, created when missing.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: secret::Url,
    /// The broker between the services: `nats://host:4222` or
    /// `amqp://user:pass@host:5672/vhost`.
    #[arg(long, env = "SHOP_BUS_URL", hide_env_values = true)]
    pub bus: secret::Url,
    /// The gateway's address; the services listen on free loopback ports.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// The services' databases are `{this}_ordering`, `{this}_inventory`,
    /// `{this}_payment` (lower-case letters, digits and `_`).
    #[arg(long, default_value = "shop", value_parser = database_prefix)]
    pub database_prefix: String,
    /// Prefix of the bus's names (see `serve --bus-prefix`).
    #[arg(long, default_value = "", hide = true)]
    pub bus_prefix: String,
}

fn database_prefix(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 40
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err("1 to 40 lower-case letters, digits or _, starting with a letter".into())
    }
}

/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// How long the topology may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// One child process: its name in the logs and its pid.
struct Running {
    name: &'static str,
    pid: Option<u32>,
}

/// Runs the topology until Ctrl-C, SIGTERM or a child's unexpected end.
pub async fn run(args: UpArgs) -> Result<(), BoxError> {
    // First: a SIGTERM while the children start must stop them, not kill this process
    // and leave them running (see `server::signal`).
    let signal = crate::server::signal();
    tokio::pin!(signal);
    let mut urls = Vec::new();
    for service in Service::ALL {
        let name = format!("{}_{service}", args.database_prefix);
        urls.push((service, create_database(&args.database_url, &name).await?));
    }
    let mut children = Vec::new();
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let mut addresses = Vec::new();
    for (service, url) in &urls {
        let addr = free_port()?;
        addresses.push((*service, addr));
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(["serve", "--service", service.as_str(), "--database-url"])
            .arg(url)
            .args(["--bus", &args.bus, "--bus-prefix", &args.bus_prefix])
            .args(["--listen", &addr.to_string()]);
        children.push(start(service.as_str(), command, &ended_tx)?);
    }
    let mut gateway = Command::new(std::env::current_exe()?);
    gateway.args(["gateway", "--listen", &args.listen.to_string()]);
    for (service, addr) in &addresses {
        gateway.args([format!("--{service}"), format!("http://{addr}")]);
    }
    children.push(start("gateway", gateway, &ended_tx)?);
    drop(ended_tx);
    let services: Vec<String> = addresses
        .iter()
        .map(|(s, a)| format!("{s} http://{a}"))
        .collect();
    let first = tokio::select! {
        ready = ready(args.listen) => ready.map(|()| true),
        () = &mut signal => Ok(false),
        end = ended.recv() => Err(ended_early(end)),
    };
    let outcome = match first {
        Ok(true) => {
            eprintln!(
                "shop up: gateway at http://{} ({}); databases {}_*; Ctrl-C stops them all",
                args.listen,
                services.join(", "),
                args.database_prefix,
            );
            tokio::select! {
                () = &mut signal => Ok(()),
                end = ended.recv() => Err(ended_early(end)),
            }
        }
        Ok(false) => Ok(()),
        Err(e) => Err(e),
    };
    stop(&children, &mut ended).await;
    outcome
}

/// The error for a child that ended (`None`: every child ended) before it was asked to.
fn ended_early(end: Option<(&'static str, String)>) -> BoxError {
    match end {
        Some((name, status)) => format!("{name} ended ({status}); stopped the others").into(),
        None => "every process ended".into(),
    }
}

/// Starts `command` as child `name`, its output prefixed, its end reported on `ended`.
fn start(
    name: &'static str,
    mut command: Command,
    ended: &mpsc::UnboundedSender<(&'static str, String)>,
) -> Result<Running, BoxError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child: Child = command
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(prefixed(name, out));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(prefixed(name, err));
    }
    let pid = child.id();
    let ended = ended.clone();
    tokio::spawn(async move {
        let status = child.wait().await;
        let _ = ended.send((name, describe(status)));
    });
    Ok(Running { name, pid })
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("cannot wait for it: {e}"),
    }
}

/// Copies `from` to stderr line by line, each line after `name`.
async fn prefixed(name: &'static str, from: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("{name:>9} | {line}");
    }
}

/// SIGTERM to every child still running, then waits for them (SIGKILL after
/// [`STOP_GRACE`]).
async fn stop(children: &[Running], ended: &mut mpsc::UnboundedReceiver<(&'static str, String)>) {
    let mut running: Vec<&'static str> = Vec::new();
    for child in children {
        if let Some(pid) = child.pid.and_then(|p| i32::try_from(p).ok()) {
            if kill(Pid::from_raw(pid), Signal::SIGTERM).is_ok() {
                running.push(child.name);
            }
        }
    }
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    while !running.is_empty() {
        match tokio::time::timeout_at(deadline, ended.recv()).await {
            Ok(Some((name, status))) => {
                running.retain(|n| *n != name);
                eprintln!("shop up: {name} stopped ({status})");
            }
            Ok(None) => break,
            Err(_) => {
                for child in children.iter().filter(|c| running.contains(&c.name)) {
                    if let Some(pid) = child.pid.and_then(|p| i32::try_from(p).ok()) {
                        eprintln!("shop up: {} did not stop in time: killed", child.name);
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
                break;
            }
        }
    }
}

/// A free loopback address (the port is released for the child to take).
fn free_port() -> Result<SocketAddr, BoxError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Waits until the gateway at `addr` reports every service ready.
async fn ready(addr: SocketAddr) -> Result<(), BoxError> {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/health/ready");
    let deadline = tokio::time::Instant::now() + READY_WITHIN;
    loop {
        if let Ok(r) = client.get(&url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(
                format!("the gateway at {url} was not ready within {READY_WITHIN:?}").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates database `name` on the server of `url` when it does not exist; its URL.
async fn create_database(url: &str, name: &str) -> Result<String, BoxError> {
    let (config, tls) = tessera_postgres::tls::connector_for(url)?;
    let (client, connection) = config.connect(tls).await.map_err(|e| {
        format!(
            "cannot reach PostgreSQL at {}: {e}",
            secret::Url::from(url.to_owned())
        )
    })?;
    tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        // `name` is checked to be lower-case letters, digits and `_`.
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| format!("cannot create database {name}: {e}"))?;
        eprintln!("shop up: created database {name}");
    }
    let mut service_url = reqwest::Url::parse(url).map_err(|e| format!("--database-url: {e}"))?;
    service_url.set_path(&format!("/{name}"));
    Ok(service_url.to_string())
}

#[cfg(test)]
mod tests {
    use super::database_prefix;

    #[test]
    fn a_database_prefix_is_a_plain_lower_case_name() {
        assert!(database_prefix("shop").is_ok());
        assert!(database_prefix("t1_x").is_ok());
        for bad in ["", "Shop", "1shop", "sh-op", "a\"b", &"a".repeat(41)] {
            assert!(database_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
