//! A private PostgreSQL cluster that takes TLS connections only, with a server
//! certificate for `localhost` signed by a CA the tests keep; stopped and removed when
//! the last test holding it lets go.
//!
//! Started with `initdb` and `pg_ctl` from `pg_config --bindir`, as the `postgres` user
//! when the tests run as root (PostgreSQL refuses to run as root), in a temporary folder,
//! on a free port of 127.0.0.1. A machine without them fails the test saying so.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// What the tests see of the cluster.
pub struct Cluster {
    pub port: u16,
    /// The CA that signed the server's certificate (PEM).
    pub ca: PathBuf,
    /// A CA that signed nothing the server shows (PEM).
    pub other_ca: PathBuf,
    dir: PathBuf,
    bindir: PathBuf,
    /// The `postgres` user's uid and gid when running as root.
    owner: Option<(u32, u32)>,
}

impl Cluster {
    /// The running cluster, started if no test holds one.
    pub fn shared() -> Arc<Cluster> {
        static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
        let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cluster) = slot.upgrade() {
            return cluster;
        }
        let cluster = Arc::new(Cluster::start());
        *slot = Arc::downgrade(&cluster);
        cluster
    }

    /// `postgres://postgres@{host}:{port}/postgres?{params}`.
    pub fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }

    fn start() -> Cluster {
        let bindir = bindir();
        let owner = is_root().then(postgres_ids);
        let dir = std::env::temp_dir().join(format!(
            "tessera-tls-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir(&dir).expect("a temporary folder");
        let mut cluster = Cluster {
            port: 0,
            ca: dir.join("ca.crt"),
            other_ca: dir.join("other-ca.crt"),
            dir,
            bindir,
            owner,
        };
        cluster.give(&cluster.dir, 0o700);
        cluster.certificates();
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .expect("pg_hba.conf written");
        for attempt in 1.. {
            cluster.port = free_port();
            let conf = format!(
                "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
                 ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n\
                 fsync = off\nmax_connections = 40\nshared_buffers = 16MB\n",
                cluster.port,
                path(&cluster.dir),
                path(&cluster.dir.join("server.crt")),
                path(&cluster.dir.join("server.key")),
            );
            std::fs::write(data.join("postgresql.auto.conf"), conf).expect("settings written");
            let log = cluster.dir.join("server.log");
            let started = cluster.try_run(
                "pg_ctl",
                &[
                    "-D",
                    path(&data),
                    "-l",
                    path(&log),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            );
            if started.status.success() {
                break;
            }
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                attempt < 3 && log.contains("could not bind"),
                "pg_ctl start failed: {}{}\nserver log:\n{log}",
                String::from_utf8_lossy(&started.stdout),
                String::from_utf8_lossy(&started.stderr)
            );
        }
        cluster
    }

    /// A CA, a server certificate for `localhost` only signed by it, and a second CA.
    fn certificates(&self) {
        let (ca, ca_key) = new_ca("tessera test CA");
        let (other, _) = new_ca("tessera other CA");
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("SAN");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("a key");
        let server = params.signed_by(&key, &ca, &ca_key).expect("signed");
        std::fs::write(&self.ca, ca.pem()).expect("CA written");
        std::fs::write(&self.other_ca, other.pem()).expect("CA written");
        let crt = self.dir.join("server.crt");
        let pem_key = self.dir.join("server.key");
        std::fs::write(&crt, server.pem()).expect("certificate written");
        std::fs::write(&pem_key, key.serialize_pem()).expect("key written");
        self.give(&crt, 0o644);
        self.give(&pem_key, 0o600); // PostgreSQL refuses a key others can read
    }

    /// Hands `file` to the server's user with `mode`.
    fn give(&self, file: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(file, Some(uid), Some(gid)).expect("chown");
        }
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.try_run(tool, args);
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `tool` of the PostgreSQL binaries, as the `postgres` user when root.
    fn try_run(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bindir.join(tool);
        let mut command = if self.owner.is_some() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            let _ = self.try_run(
                "pg_ctl",
                &["-D", path(&data), "-m", "immediate", "-w", "stop"],
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn new_ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("a key");
    (params.self_signed(&key).expect("self-signed"), key)
}

const NEEDS: &str = "The TLS tests start a private PostgreSQL cluster with initdb and pg_ctl \
    (Debian: apt-get install postgresql, which brings pg_config)";

/// `pg_config --bindir`: where `initdb` and `pg_ctl` are.
fn bindir() -> PathBuf {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .unwrap_or_else(|e| panic!("{NEEDS}; pg_config cannot be run: {e}"));
    assert!(out.status.success(), "{NEEDS}; pg_config --bindir failed");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    for tool in ["initdb", "pg_ctl"] {
        assert!(
            dir.join(tool).exists(),
            "{NEEDS}; {tool} is not in {}",
            dir.display()
        );
    }
    dir
}

fn is_root() -> bool {
    id(&["-u"]) == 0
}

/// uid and gid of the `postgres` user, which runs the cluster when the tests are root.
fn postgres_ids() -> (u32, u32) {
    let needs = "running as root, the TLS tests run PostgreSQL as the `postgres` user \
                 (with runuser), which must exist";
    assert!(
        Command::new("runuser").arg("--help").output().is_ok(),
        "{NEEDS}; {needs}: runuser not found"
    );
    (id(&["-u", "postgres"]), id(&["-g", "postgres"]))
}

fn id(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().expect("id runs");
    assert!(
        out.status.success(),
        "{NEEDS}; `id {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a numeric id")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}
