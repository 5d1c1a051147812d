//! Progress of long commands: an indicatif bar when stderr is a terminal; otherwise (a pipe, a
//! log file, CI) a plain line on stderr every `EBM_PROGRESS_SECS` seconds (default 10, `inf`
//! for never; read by `cli::env`), so a long run in a pipeline still shows it is alive.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Whether commands report progress at all (the Python package turns it off unless asked).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns every progress report of later commands in this process on or off.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// An indicatif bar of `len` drawn on stderr, hidden when progress is off.
pub(crate) fn bar(len: u64) -> ProgressBar {
    if enabled() { ProgressBar::new(len) } else { ProgressBar::hidden() }
}

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    unit: &'static str,
    total: u64,
    base: u64,
    message: String,
    start: Instant,
    last: Instant,
    every: Duration,
}

impl Progress {
    /// A bar from `template` on a terminal, else plain lines "LABEL: POS/TOTAL UNIT, ...".
    pub fn new(label: &str, unit: &'static str, total: u64, template: &str) -> Self {
        let bar = (enabled() && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(template).expect("static progress template").progress_chars("=> "),
            );
            bar
        });
        // Checked before the command started (cli::env::check); the default covers a value
        // changed since.
        let every = crate::cli::env::progress_interval().unwrap_or(Duration::from_secs(10));
        let now = Instant::now();
        Self {
            bar,
            label: label.into(),
            unit,
            total,
            base: 0,
            message: String::new(),
            start: now,
            last: now,
            every: if enabled() { every } else { Duration::MAX },
        }
    }

    /// Work starts at `pos` (a resumed run): the rate and eta count from there.
    pub fn start_at(&mut self, pos: u64) {
        self.base = pos;
        self.set_position(pos);
    }

    pub fn set_position(&mut self, pos: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(pos),
            None if self.last.elapsed() >= self.every && pos < self.total => {
                self.last = Instant::now();
                let seconds = self.start.elapsed().as_secs_f64();
                let done = pos.saturating_sub(self.base);
                let eta = if done > 0 { seconds * (self.total - pos) as f64 / done as f64 } else { f64::NAN };
                let message = if self.message.is_empty() { String::new() } else { format!(", {}", self.message) };
                eprintln!(
                    "{}: {pos}/{} {}, {seconds:.0} s, eta {eta:.0} s{message}",
                    self.label, self.total, self.unit
                );
            }
            None => {}
        }
    }

    pub fn set_message(&mut self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.clone());
        }
        self.message = message;
    }

    /// Runs `f` with the bar hidden, so its output is not drawn over.
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub fn finish_and_clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
