//! A real PyKMIP server for tests (feature `testing`).
//!
//! Starts `pykmip` (installed by `scripts/test.sh` into the repository's
//! `.venv`, or the interpreter named by `PYKMIP_PYTHON`) on 127.0.0.1 with
//! a fresh SQLite database and certificates from the workspace's one test
//! PKI (`dev-pki`): an ECDSA P-256 CA, a
//! server certificate for 127.0.0.1 (rustls needs an ECDSA suite PyKMIP's
//! TLS 1.2 profile offers: ECDHE-ECDSA-AES-GCM) and a client certificate
//! with the clientAuth extended key usage PyKMIP checks. A missing PyKMIP
//! is a test failure with instructions, never a silent skip.

use crate::client::{Client, ClientSettings, TlsIdentity};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use zeroize::Zeroizing;

const LAUNCHER: &str = include_str!("testing/pykmip_server.py");

/// The PyKMIP version the tests are written against (scripts/pykmip-venv.sh).
pub const PYKMIP_VERSION: &str = "0.11.0";

/// The Python interpreter that has PyKMIP.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PYKMIP_PYTHON") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

/// A running PyKMIP server; killed on drop.
pub struct PyKmip {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    identity: TlsIdentity,
    paused: bool,
}

impl PyKmip {
    /// Starts a server on a free port.
    pub fn start() -> PyKmip {
        let dir = tempfile::tempdir().expect("temp dir");
        let identity = write_certificates(dir.path());
        let mut server = PyKmip {
            dir,
            child: None,
            port: 0,
            identity,
            paused: false,
        };
        server.spawn(0);
        server
    }

    fn spawn(&mut self, port: u16) {
        let py = python();
        assert!(
            py.exists(),
            "PyKMIP is needed for this test: {} does not exist. Run scripts/test.sh \
             (it installs pykmip=={PYKMIP_VERSION} into .venv via scripts/pykmip-venv.sh) \
             or set PYKMIP_PYTHON to a python with pykmip installed.",
            py.display()
        );
        let d = self.dir.path();
        std::fs::write(d.join("launcher.py"), LAUNCHER).expect("write launcher");
        let stderr = std::fs::File::create(d.join("stderr.log")).expect("stderr log");
        let mut child = Command::new(&py)
            .arg("-W")
            .arg("ignore")
            .arg(d.join("launcher.py"))
            .arg(port.to_string())
            .arg(d)
            // Held open by `Child` for the server's life: at its end of file
            // (this process gone, however) the launcher exits.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", py.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Some(p) = line
            .strip_prefix("LISTENING ")
            .and_then(|p| p.trim().parse::<u16>().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "PyKMIP did not start (got {line:?}).\nstderr:\n{}\nserver log:\n{}",
                std::fs::read_to_string(d.join("stderr.log")).unwrap_or_default(),
                std::fs::read_to_string(d.join("server.log")).unwrap_or_default()
            );
        };
        self.port = p;
        self.child = Some(child);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// PEM files of the client identity: (CA, client certificate, client key).
    pub fn pem_files(&self) -> (PathBuf, PathBuf, PathBuf) {
        let d = self.dir.path();
        (d.join("ca.pem"), d.join("client.pem"), d.join("client.key"))
    }

    pub fn identity(&self) -> TlsIdentity {
        self.identity.clone()
    }

    pub fn settings(&self) -> ClientSettings {
        ClientSettings::new(&self.address(), "127.0.0.1", self.identity())
    }

    pub fn client(&self) -> Client {
        Client::new(self.settings()).expect("KMIP client")
    }

    /// The server's process id (for SIGSTOP/SIGCONT commands a suite runs).
    pub fn pid(&self) -> String {
        self.child
            .as_ref()
            .map(|c| c.id().to_string())
            .expect("running")
    }

    /// Freezes the server process (SIGSTOP): connections hang, as with a
    /// wedged key manager.
    pub fn pause(&mut self) {
        let ok = Command::new("kill").arg("-STOP").arg(self.pid()).status();
        assert!(ok.is_ok_and(|s| s.success()), "SIGSTOP failed");
        self.paused = true;
    }

    pub fn resume(&mut self) {
        let ok = Command::new("kill").arg("-CONT").arg(self.pid()).status();
        assert!(ok.is_ok_and(|s| s.success()), "SIGCONT failed");
        self.paused = false;
    }

    /// Kills the server (the database stays).
    pub fn stop(&mut self) {
        if self.paused {
            self.resume();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same database.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        self.spawn(port);
    }

    /// The server's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PyKmip {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server side of the test PKI written by [`write_certificates`]:
/// (certificate PEM, key PEM) for 127.0.0.1, signed by the same CA as the
/// client identity. For tests that stand up their own (misbehaving) server.
pub fn test_pki(dir: &Path) -> (TlsIdentity, String, String) {
    let identity = write_certificates(dir);
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).expect("read cert");
    (identity, read("server.pem"), read("server.key"))
}

fn write_certificates(d: &Path) -> TlsIdentity {
    let ca = dev_pki::Ca::new("PyKMIP test CA").expect("CA");
    let server = ca
        .server(&["127.0.0.1", "localhost"])
        .expect("server certificate");
    let client = ca
        .client("xks-proxy", &[], None)
        .expect("client certificate");
    // PyKMIP reads its side from files; ours too (kmip::ClientSettings).
    server.write(d, "server").expect("write server certificate");
    client.write(d, "client").expect("write client certificate");
    std::fs::write(d.join("ca.pem"), ca.cert_pem()).expect("write CA");
    TlsIdentity {
        ca_pem: ca.cert_pem().into_bytes(),
        cert_pem: client.cert_pem.into_bytes(),
        key_pem: Zeroizing::new(client.key_pem.into_bytes()),
    }
}
