//! `weir run` as a child process, for the tests that drive the real binary: its ready
//! line read, stderr collected, stdout lines after the ready line (the access log)
//! kept, killed on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};

use weir_testkit::TEST_TIMEOUT;

pub(crate) struct Weir {
    pub(crate) child: Child,
    pub(crate) mesh: SocketAddr,
    pub(crate) admin: SocketAddr,
    stderr: Arc<Mutex<String>>,
    /// Lines on stdout after the ready line: the access log.
    stdout: mpsc::Receiver<String>,
}

impl Weir {
    /// Starts `weir run ARGS` with `env` and waits for its ready line.
    pub(crate) fn spawn(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Weir {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .envs(env.iter().copied())
            .arg("run")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weir starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let Ok(line) = rx.recv_timeout(TEST_TIMEOUT) else {
            panic!("no ready line on stdout; stderr:\n{}", stderr.lock().unwrap());
        };
        let v: serde_json::Value = serde_json::from_str(&line).expect("the ready line is JSON");
        assert_eq!(v["ready"], true);
        let mesh = v["listeners"]["mesh"].as_str().unwrap().parse().unwrap();
        let admin = v["admin"].as_str().unwrap().parse().unwrap();
        Weir { child, mesh, admin, stderr, stdout: rx }
    }

    /// The next access-log line, as JSON.
    pub(crate) fn next_json(&self) -> serde_json::Value {
        let line = self.stdout.recv_timeout(TEST_TIMEOUT).expect("an access-log line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// `http://MESH{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.mesh)
    }

    /// What it wrote on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
