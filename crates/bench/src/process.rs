//! `docpipe` processes the bench starts: workers, a server.

use crate::{BenchError, failed};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `docpipe` process of the bench, stopped with SIGTERM when dropped.
pub(crate) struct BenchProcess {
    child: Child,
    log: PathBuf,
}

impl BenchProcess {
    /// Starts `command` with info logging to `log`.
    pub(crate) fn start(mut command: Command, log: &Path) -> Result<Self, BenchError> {
        let stderr = std::fs::File::create(log).map_err(failed("creating a process log"))?;
        let child = command
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(failed("starting a docpipe process"))?;
        Ok(Self {
            child,
            log: log.to_owned(),
        })
    }

    /// The process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the process logs `marker` (it is ready).
    pub(crate) fn wait_until_logged(
        &mut self,
        marker: &str,
        timeout: Duration,
    ) -> Result<(), BenchError> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(marker) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(failed("starting a docpipe process")(format!(
                    "it exited ({status}); see {}",
                    self.log.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(failed("starting a docpipe process")(format!(
            "not ready within {timeout:?}; see {}",
            self.log.display()
        )))
    }

    /// SIGTERM, then waits for the process to finish its work and exit.
    pub(crate) fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for BenchProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}
