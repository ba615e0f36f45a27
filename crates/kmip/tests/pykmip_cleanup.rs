//! A PyKMIP server started by a test does not outlive the test process,
//! however it ends: here the process holding one is killed with SIGKILL (no
//! destructor runs) and the server, with the helper processes PyKMIP forks,
//! must go away by itself.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "KMIP_TEST_CHILD";

/// The child's side (ignored; run by the test below): starts a server,
/// prints its port, then waits to be killed.
#[test]
#[ignore = "run by pykmip_server_exits_when_its_test_process_is_killed"]
fn child_holds_a_server() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let server = kmip::testing::PyKmip::start();
    let mut out = std::io::stdout().lock();
    let dir = server.pem_files().0.parent().unwrap().display().to_string();
    let _ = writeln!(out, "DIR {dir}");
    let _ = writeln!(out, "PORT {}", server.port());
    let _ = out.flush();
    let mut line = String::new();
    // Blocks until killed (stdin is a pipe the parent never writes).
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn pykmip_server_exits_when_its_test_process_is_killed() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_holds_a_server",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut dir = String::new();
    let port: u16 = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(90))
            .expect("the child never reported a server");
        // libtest may have written "test child_holds_a_server ... " first.
        if let Some(at) = line.find("DIR ") {
            dir = line[at + 4..].trim().to_string();
        }
        if let Some(at) = line.find("PORT ") {
            break line[at + 5..].trim().parse().unwrap();
        }
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok(),
        "the server is not listening"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The server notices its stdin closing and exits: its port closes.
    let end = Instant::now() + Duration::from_secs(20);
    let mut gone = false;
    while Instant::now() < end {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        gone,
        "the PyKMIP server outlived its test process (port {port})"
    );
    assert!(!dir.is_empty());
    assert_no_process_names(&dir);
}

/// Waits (≤ 10 s) until no process's command line mentions `needle`.
fn assert_no_process_names(needle: &str) {
    let end = Instant::now() + Duration::from_secs(10);
    while !processes_naming(needle).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = processes_naming(needle);
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// Pids whose command line mentions `needle` (a server's directory).
fn processes_naming(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) {
                found.push(pid);
            }
        }
    }
    found
}

/// Dropping (or restarting) a server kills the launcher with SIGKILL; the
/// helpers PyKMIP forked must not stay behind.
#[test]
fn dropping_a_server_leaves_no_process_behind() {
    let mut server = kmip::testing::PyKmip::start();
    let dir = server.pem_files().0.parent().unwrap().display().to_string();
    assert!(!processes_naming(&dir).is_empty());
    server.restart();
    drop(server);
    assert_no_process_names(&dir);
}
