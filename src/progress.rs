//! A one-line progress display on stderr for long operations (many keys, several tokens).

use std::io::{IsTerminal, Write};

use tezos_keys::runbook::Progress;

/// Shows the item being worked on, only when stderr is a terminal and the output is not JSON.
pub struct ProgressLine {
    enabled: bool,
    verb: &'static str,
    shown: bool,
}

impl ProgressLine {
    /// A display that says `verb` before each item ("replicating", "reading token").
    pub fn new(json: bool, verb: &'static str) -> Self {
        Self {
            enabled: !json && std::io::stderr().is_terminal(),
            verb,
            shown: false,
        }
    }

    /// Shows the item being worked on.
    pub fn show(&mut self, progress: Progress<'_>) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K[{}/{}] {} {}",
                progress.done + 1,
                progress.total,
                self.verb,
                progress.item
            );
            let _ = err.flush();
            self.shown = true;
        }
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.shown = false;
        }
    }
}
