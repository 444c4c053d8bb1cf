//! Live progress on stderr: one line rewritten in place on a terminal,
//! plain lines otherwise (and nothing for JSON on a pipe... still lines: the
//! report itself goes to stdout).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

pub(crate) struct Progress {
    tty: bool,
    /// Whether a rewritable line is on screen.
    open: Mutex<bool>,
}

impl Progress {
    pub(crate) fn new(_text: bool) -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            open: Mutex::new(false),
        }
    }

    /// A milestone: always its own line.
    pub(crate) fn line(&self, message: &str) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        if *open {
            let _ = writeln!(err);
            *open = false;
        }
        let _ = writeln!(err, "drill: {message}");
    }

    /// A counter update: rewritten in place on a terminal, dropped
    /// otherwise (milestones carry the totals).
    pub(crate) fn update(&self, message: &str) {
        if !self.tty {
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2Kdrill: {message}");
        let _ = err.flush();
        *open = true;
    }

    pub(crate) fn finish(&self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if *open {
            let _ = writeln!(std::io::stderr());
            *open = false;
        }
    }
}
