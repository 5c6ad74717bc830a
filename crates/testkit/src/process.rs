//! Spawning the real binary on ephemeral ports.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago (bound to 127.0.0.1:0 and released).
pub fn free_port() -> u16 {
    // Ports come from below the kernel's ephemeral range (32768-60999 by default): a
    // port found free by binding to port 0 was itself ephemeral, so a later bind to port
    // 0 (a test's own upstream or CA) or an outgoing connection could be handed the same
    // port before the test listens on it. Never return a port twice in a process.
    const LOW: u16 = 20000;
    const HIGH: u16 = 32000;
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    // Start somewhere that depends on the process, so parallel test binaries spread out.
    let span = u32::from(HIGH - LOW);
    let mut next = (std::process::id().wrapping_mul(7919) + given.len() as u32 * 97) % span;
    for _ in 0..span {
        let port = LOW + next as u16;
        next = (next + 1) % span;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port between {LOW} and {HIGH} on 127.0.0.1");
}

/// Waits until something accepts on 127.0.0.1:`port`.
pub fn wait_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    false
}

/// A running clawveil; killed (by PID) when dropped. stdout and stderr go to files.
pub struct ProxyProcess {
    pub child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl ProxyProcess {
    /// Spawns `bin run --config config` with output captured in `dir`, and waits for
    /// `port` to accept connections.
    pub fn start(bin: &Path, config: &Path, dir: &Path, port: u16) -> ProxyProcess {
        Self::start_with(
            bin,
            &["run", "--config", config.to_str().unwrap()],
            dir,
            port,
            &[],
        )
    }

    pub fn start_with(
        bin: &Path,
        args: &[&str],
        dir: &Path,
        port: u16,
        env: &[(&str, &str)],
    ) -> ProxyProcess {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let stdout = dir.join(format!("proxy-{n}.stdout"));
        let stderr = dir.join(format!("proxy-{n}.stderr"));
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn clawveil");
        let mut p = ProxyProcess {
            child,
            stdout,
            stderr,
        };
        if !wait_port(port, Duration::from_secs(20)) {
            let _ = p.child.kill();
            panic!("clawveil did not listen on {port}:\n{}", p.output());
        }
        p
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends a signal by PID (`kill -HUP <pid>` and friends).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{sig} failed");
    }

    /// Everything the process printed so far (stdout then stderr).
    pub fn output(&self) -> String {
        let out = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        format!("{out}{err}")
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_ports_are_never_handed_out_twice() {
        let mut ports: Vec<u16> = (0..500).map(|_| super::free_port()).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 500);
    }
}
