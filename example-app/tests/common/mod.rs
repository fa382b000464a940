//! Starting the example-app binary as a real process for the tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running instance, killed when dropped.
pub struct App {
    pub child: Child,
    /// `127.0.0.1:PORT`, read from the first line the app prints.
    pub addr: String,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `bin` in `dir` on a free port of 127.0.0.1 with `env` over a clean environment
/// for the database and Redis settings, and waits for its first line.
pub fn spawn(bin: &Path, dir: &Path, env: &[(&str, &str)]) -> App {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env_remove("DATABASE_URL")
        .env_remove("PERF_REDIS_URL")
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // A test that copies the binary while another thread forks may leave the copy open in
    // the child for a moment: exec then fails with "text file busy". Try again briefly.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    App { child, addr }
}
