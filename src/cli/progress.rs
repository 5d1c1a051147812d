//! Progress of long commands: an indicatif bar when stderr is a terminal; otherwise (a pipe, a
//! log file, CI) a plain line on stderr every `EBM_PROGRESS_SECS` seconds (default 10, `inf`
//! for never; read by `cli::env`), so a long run in a pipeline still shows it is alive. The
//! lines come from a ticker thread, on time even while one long piece of work runs between two
//! position updates.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    /// The plain lines' state, shared with the ticker thread (None on a terminal or when off).
    plain: Option<Arc<Mutex<Plain>>>,
}

/// What a plain progress line says, and when the last one went out.
struct Plain {
    label: String,
    unit: &'static str,
    total: u64,
    base: u64,
    pos: u64,
    message: String,
    start: Instant,
    last: Instant,
    every: Duration,
    done: bool,
    /// Lines printed so far.
    lines: u64,
}

impl Plain {
    /// Prints a line if one is due (and the work is not finished).
    fn tick(&mut self) {
        if self.done || self.last.elapsed() < self.every || self.pos >= self.total {
            return;
        }
        self.last = Instant::now();
        self.lines += 1;
        eprintln!("{}", self.line(self.start.elapsed().as_secs_f64()));
    }

    /// "LABEL: POS/TOTAL UNIT, S s, eta E s[, MESSAGE]" after `seconds` of work.
    fn line(&self, seconds: f64) -> String {
        let done = self.pos.saturating_sub(self.base);
        // Before the first unit of work is done there is no rate to extrapolate from.
        let eta = match done {
            0 => "eta unknown yet".to_string(),
            _ => format!("eta {:.0} s", seconds * self.total.saturating_sub(self.pos) as f64 / done as f64),
        };
        let message = if self.message.is_empty() { String::new() } else { format!(", {}", self.message) };
        format!("{}: {}/{} {}, {seconds:.0} s, {eta}{message}", self.label, self.pos, self.total, self.unit)
    }
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
        Self::with_interval(label, unit, total, bar, every)
    }

    fn with_interval(label: &str, unit: &'static str, total: u64, bar: Option<ProgressBar>, every: Duration) -> Self {
        let now = Instant::now();
        let plain = (bar.is_none() && enabled() && every < Duration::from_secs(u32::MAX as u64)).then(|| {
            let plain = Arc::new(Mutex::new(Plain {
                label: label.into(),
                unit,
                total,
                base: 0,
                pos: 0,
                message: String::new(),
                start: now,
                last: now,
                every,
                done: false,
                lines: 0,
            }));
            // Below a second, lines come with the position updates alone (a ticker would flood).
            let ticker = Arc::downgrade(&plain);
            (every >= Duration::from_secs(1)).then(|| {
                std::thread::spawn(move || {
                    let nap = Duration::from_millis(200);
                    loop {
                        std::thread::sleep(nap);
                        let Some(plain) = ticker.upgrade() else { return };
                        let Ok(mut p) = plain.lock() else { return };
                        if p.done {
                            return;
                        }
                        p.tick();
                    }
                })
            });
            plain
        });
        Self { bar, plain }
    }

    /// Work starts at `pos` (a resumed run): the rate and eta count from there.
    pub fn start_at(&mut self, pos: u64) {
        if let Some(plain) = &self.plain
            && let Ok(mut p) = plain.lock()
        {
            p.base = pos;
        }
        self.set_position(pos);
    }

    pub fn set_position(&mut self, pos: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
        }
        if let Some(plain) = &self.plain
            && let Ok(mut p) = plain.lock()
        {
            p.pos = pos;
            p.tick();
        }
    }

    pub fn set_message(&mut self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.clone());
        }
        if let Some(plain) = &self.plain
            && let Ok(mut p) = plain.lock()
        {
            p.message = message;
        }
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
        self.stop();
    }

    /// Ends the plain lines (the ticker thread exits at its next wake).
    fn stop(&self) {
        if let Some(plain) = &self.plain
            && let Ok(mut p) = plain.lock()
        {
            p.done = true;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines keep coming at the interval while no position update arrives (one long piece of
    /// work), and stop once the work is finished.
    #[test]
    fn plain_lines_come_on_time_without_updates() {
        let mut p = Progress::with_interval("test", "steps", 10, None, Duration::from_secs(1));
        p.set_position(1);
        let lines = || p.plain.as_ref().unwrap().lock().unwrap().lines;
        // Two lines with no update in between (generous time: a loaded machine may be slow).
        let start = Instant::now();
        while lines() < 2 && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let lines = lines();
        assert!(lines >= 2, "{lines} lines in 30 s at 1 s intervals without updates");
        p.finish_and_clear();
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(p.plain.as_ref().unwrap().lock().unwrap().lines, lines, "lines after the work finished");
    }

    /// The eta extrapolates the rate since the start (or the resumed position), and says it has
    /// none before the first unit of work, rather than printing NaN.
    #[test]
    fn the_eta_waits_for_a_rate() {
        let p = Progress::with_interval("training", "steps", 100, None, Duration::from_secs(3600));
        let mut plain = p.plain.as_ref().unwrap().lock().unwrap();
        plain.base = 20;
        plain.pos = 20;
        assert_eq!(plain.line(10.0), "training: 20/100 steps, 10 s, eta unknown yet");
        plain.pos = 30;
        plain.message = "epoch 1/5".into();
        assert_eq!(plain.line(10.0), "training: 30/100 steps, 10 s, eta 70 s, epoch 1/5");
    }
}
