//! Progress bars on standard error, shared by every long-running stage.
//!
//! Library functions take a [`Progress`] and ask it for bars; when progress is off (the
//! `--quiet` and `--json` modes, tests) every bar is hidden and costs nothing. indicatif also
//! hides bars by itself when standard error is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};

/// Whether and how to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Progress bars are drawn on standard error (when it is a terminal).
    pub fn visible() -> Progress {
        Progress { enabled: true }
    }

    /// No progress is shown.
    pub fn hidden() -> Progress {
        Progress { enabled: false }
    }

    /// A bar counting bytes, with rate and ETA; `total` is `None` when the size is unknown.
    pub fn bytes(&self, total: Option<u64>, message: impl Into<String>) -> ProgressBar {
        let template = if total.is_some() {
            "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
        } else {
            "{msg:30!} {bytes} {binary_bytes_per_sec}"
        };
        self.bar(total, template, message)
    }

    /// A bar counting items (entries, images), with rate and ETA.
    pub fn items(&self, total: u64, message: impl Into<String>) -> ProgressBar {
        self.bar(
            Some(total),
            "{msg:30!} [{bar:30}] {human_pos}/{human_len} {per_sec} eta {eta}",
            message,
        )
    }

    fn bar(&self, total: Option<u64>, template: &str, message: impl Into<String>) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = match total {
            Some(len) => ProgressBar::new(len),
            None => ProgressBar::no_length(),
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(message.into());
        bar
    }
}
