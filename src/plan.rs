//! The size plan: every command estimates the memory a request needs before allocating it and
//! refuses, naming the flag and the size, what would not fit, instead of aborting in the
//! allocator. Files are read with a bound (their declared size, or the budget), never whole
//! on trust, so `/dev/zero` or a decompression bomb is refused after a bounded read; and opened
//! through [`open_regular`], so a named pipe or a device is refused instead of read.
//!
//! The budget is `EBM_MEMORY_BUDGET` (bytes, with an optional K/M/G/T suffix, powers of 1024)
//! when set, else Linux's `MemAvailable`, else unlimited.
//!
//! The work plan sits next to it: a request whose stated work would take absurdly long
//! (`--leapfrog 4000000000` would run for centuries) is refused before it starts, naming its
//! flags, instead of looking like a hang. Per-step multipliers (leapfrog steps per proposal,
//! Langevin or Gibbs steps per training step, AIS temperatures) each have a ceiling, and the
//! whole request's estimated operations (chains x steps x per-step multipliers x the cost of one
//! energy evaluation) are capped by [`work_limit`]; both are far above any useful setting.

use crate::{Error, Result};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The memory a request may use, and where that number came from (for messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub bytes: u64,
    pub source: &'static str,
}

/// The environment variable that sets the budget.
pub const BUDGET_VAR: &str = "EBM_MEMORY_BUDGET";

/// A budget set by the program (0: none), ahead of [`BUDGET_VAR`].
static SET_BUDGET: AtomicU64 = AtomicU64::new(0);

#[cfg(any(test, feature = "internals"))]
/// Sets the budget for this process (`None`: back to [`BUDGET_VAR`] or `MemAvailable`); for
/// an embedding application, and for tests, where setting an environment variable races with
/// other threads.
pub fn set_budget(bytes: Option<u64>) {
    SET_BUDGET.store(bytes.unwrap_or(0), Ordering::Relaxed);
}

/// The current budget: [`set_budget`], else [`BUDGET_VAR`], else `MemAvailable`, else unlimited.
pub fn budget() -> Result<Budget> {
    match SET_BUDGET.load(Ordering::Relaxed) {
        0 => {}
        bytes => return Ok(Budget { bytes, source: "set by the program" }),
    }
    if let Ok(text) = std::env::var(BUDGET_VAR) {
        let bytes = parse_bytes(&text).ok_or_else(|| {
            Error::invalid(BUDGET_VAR, format!("{text:?} is not a size in bytes (e.g. 2G, 512M, 1048576)"))
        })?;
        return Ok(Budget { bytes, source: "EBM_MEMORY_BUDGET" });
    }
    Ok(match mem_available() {
        Some(bytes) => Budget { bytes, source: "MemAvailable in /proc/meminfo; EBM_MEMORY_BUDGET overrides" },
        None => Budget { bytes: u64::MAX, source: "unknown" },
    })
}

/// "512M", "2G", "1.5G", "1048576" -> bytes (K, M, G, T are powers of 1024; a trailing B or
/// iB is allowed).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (number, scale) = match t.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let power = "KMGT".find(c.to_ascii_uppercase())? as i32 + 1;
            (&t[..i], 1024f64.powi(power))
        }
        _ => (t, 1.0),
    };
    let v = number.trim().parse::<f64>().ok()? * scale;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// A size for people: 1.50 GiB, 12.0 MiB, 512 B.
pub fn human(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS[unit])
}

/// One allocation of a plan: which flag makes it large, what it is, its bytes.
#[derive(Clone, Debug)]
struct Item {
    flag: String,
    what: String,
    /// Bytes in a [`Plan`], operations in a [`Work`].
    amount: u128,
}

/// The host memory one command will need, item by item, checked against the [`Budget`] before
/// anything large is allocated.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    items: Vec<Item>,
}

impl Plan {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `copies` buffers of the product of `counts` values of `size` bytes each. `flag`
    /// names what the user set (e.g. `--chains 4096 x dim 2`), `what` the buffer.
    pub fn add(
        &mut self,
        flag: impl Into<String>,
        what: impl Into<String>,
        counts: &[u64],
        size: u64,
        copies: u64,
    ) -> &mut Self {
        // u128 cannot overflow for the few u64 factors a plan multiplies; saturate anyway.
        let bytes = counts.iter().fold(size as u128 * copies as u128, |a, &c| a.saturating_mul(c as u128));
        self.items.push(Item { flag: flag.into(), what: what.into(), amount: bytes });
        self
    }

    /// The planned total in bytes.
    pub fn total(&self) -> u128 {
        self.items.iter().map(|i| i.amount).sum()
    }

    /// Checks the plan against [`budget`].
    pub fn check(&self) -> Result<()> {
        self.check_against(budget()?)
    }

    /// Refuses a plan above `budget`, naming the largest item's flag and every size.
    pub fn check_against(&self, budget: Budget) -> Result<()> {
        let total = self.total();
        if total <= budget.bytes as u128 {
            return Ok(());
        }
        let largest = self.items.iter().max_by_key(|i| i.amount).expect("a plan over budget has an item");
        let others = if total > largest.amount + largest.amount / 100 {
            format!(" (the whole request: {})", human(total))
        } else {
            String::new()
        };
        Err(Error::invalid(
            &largest.flag,
            format!(
                "{} would need {}{others}, more than the {} of memory available ({}); ask for less",
                largest.what,
                human(largest.amount),
                human(budget.bytes as u128),
                budget.source
            ),
        ))
    }
}

/// The ceiling of a per-step multiplier such as `--leapfrog` or `--cd K`.
pub const MAX_STEPS_PER_STEP: u64 = 10_000;

/// The ceiling of `rbm eval --betas` (AIS temperatures; the default is 15000).
pub const MAX_BETAS: u64 = 10_000_000;

/// The environment variable that sets the work limit (a number of operations, e.g. `1e18`).
pub const WORK_VAR: &str = "EBM_WORK_LIMIT";

/// The default work limit: 10^17 estimated operations (multiply-adds or energy terms), hours
/// on a fast GPU, months on a CPU.
pub const DEFAULT_WORK_LIMIT: u128 = 100_000_000_000_000_000;

/// The current work limit: [`WORK_VAR`] when set, else [`DEFAULT_WORK_LIMIT`].
pub fn work_limit() -> Result<u128> {
    match std::env::var(WORK_VAR) {
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 1.0)
            .map(|v| v as u128)
            .ok_or_else(|| Error::invalid(WORK_VAR, format!("{text:?} is not a number of operations (e.g. 1e18)"))),
        Err(_) => Ok(DEFAULT_WORK_LIMIT),
    }
}

/// Refuses a per-step multiplier above `max`, naming the flag, the value and the ceiling.
pub fn per_step(flag: &str, value: u64, max: u64, what: &str) -> Result<()> {
    if value > max {
        return Err(Error::invalid(
            flag,
            format!(
                "{value} {what} is more than the {max} allowed: each step would multiply its work by {value}; ask for at most {max}"
            ),
        ));
    }
    Ok(())
}

/// The estimated work of one command, term by term (e.g. sampling, warm-up, AIS), checked
/// against [`work_limit`] before anything runs.
#[derive(Clone, Debug, Default)]
pub struct Work {
    items: Vec<Item>,
}

impl Work {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the product of `factors` operations; `flag` names the flags that make it large
    /// (e.g. `--chains 4096 x --steps 1000 x --leapfrog 10`), `what` the work.
    pub fn add(&mut self, flag: impl Into<String>, what: impl Into<String>, factors: &[u64]) -> &mut Self {
        let ops = factors.iter().fold(1u128, |a, &f| a.saturating_mul(f as u128));
        self.items.push(Item { flag: flag.into(), what: what.into(), amount: ops });
        self
    }

    /// The estimated operations in all.
    pub fn total(&self) -> u128 {
        self.items.iter().fold(0u128, |a, i| a.saturating_add(i.amount))
    }

    /// Checks the work against [`work_limit`].
    pub fn check(&self) -> Result<()> {
        self.check_against(work_limit()?)
    }

    /// Refuses work above `limit` operations, naming the largest term's flags.
    pub fn check_against(&self, limit: u128) -> Result<()> {
        let total = self.total();
        if total <= limit {
            return Ok(());
        }
        let largest = self.items.iter().max_by_key(|i| i.amount).expect("work over the limit has a term");
        Err(Error::invalid(
            &largest.flag,
            format!(
                "{} would take about {total:.1e} operations, more than the {limit:.1e} allowed ({WORK_VAR} overrides); ask for fewer",
                largest.what,
                total = total as f64,
                limit = limit as f64
            ),
        ))
    }
}

/// What a format's header says about a file's size, from the bytes read so far: `Ok(None)`
/// to read on, `Ok(Some(total))` once the header declares the file's total size, `Err` to stop
/// (a wrong magic, a malformed header).
pub type Declared<'a> = &'a mut dyn FnMut(&[u8]) -> Result<Option<u64>>;

/// How many bytes a read may produce, and why (for the message that refuses more).
#[derive(Clone, Debug)]
pub struct Limit {
    pub bytes: u64,
    pub why: String,
}

impl Limit {
    /// The whole [`budget`].
    pub fn budget() -> Result<Self> {
        let b = budget()?;
        Ok(Self { bytes: b.bytes, why: b.source.to_string() })
    }

    /// The budget divided by how many bytes of memory one byte read turns into.
    pub fn budget_over(expansion: u64, of_what: &str) -> Result<Self> {
        let b = budget()?;
        Ok(Self {
            bytes: b.bytes / expansion.max(1),
            why: format!("1/{expansion} of the memory budget, as {of_what}; {}", b.source),
        })
    }

    /// `bytes`, or the budget if smaller.
    pub fn at_most(bytes: u64, why: &str) -> Result<Self> {
        let b = Self::budget()?;
        Ok(if bytes <= b.bytes { Self { bytes, why: why.to_string() } } else { b })
    }
}

/// Reads `reader` (the contents of `path`, maybe decompressed) up to `limit` bytes. `declared`
/// sees the bytes as they arrive: a declared size above the limit is refused before the data is
/// read, and at most one byte past a declared size is read (so the format's parser reports the
/// trailing data). A file that declares nothing and runs past the limit is refused after at
/// most `limit` + 64 KiB bytes.
pub fn read_checked(
    mut reader: impl Read,
    path: &Path,
    what: &str,
    limit: &Limit,
    declared: Declared,
) -> Result<Vec<u8>> {
    let mut max = limit.bytes;
    let mut decided = false;
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let want =
            if decided { chunk.len().min((max + 1).saturating_sub(out.len() as u64) as usize) } else { chunk.len() };
        if want == 0 {
            return Ok(out);
        }
        let n = match reader.read(&mut chunk[..want]) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::format(path, format!("reading {what}: {e}"))),
        };
        if !decided && out.len() as u64 + n as u64 > max {
            return Err(Error::format(
                path,
                format!("{what} is larger than the {} allowed ({})", human(max as u128), limit.why),
            ));
        }
        out.try_reserve(n)
            .map_err(|_| Error::format(path, format!("{what}: out of memory after {}", human(out.len() as u128))))?;
        out.extend_from_slice(&chunk[..n]);
        if !decided && let Some(total) = declared(&out)? {
            if total > max {
                return Err(Error::format(
                    path,
                    format!(
                        "{what} declares {} of data, more than the {} allowed ({})",
                        human(total as u128),
                        human(max as u128),
                        limit.why
                    ),
                ));
            }
            decided = true;
            max = total;
            // The chunk may have run past the declared end: keep one byte of the excess.
            out.truncate(out.len().min(total as usize + 1));
            out.try_reserve_exact((total as usize).saturating_sub(out.len())).map_err(|_| {
                Error::format(path, format!("{what}: cannot allocate the {} it declares", human(total as u128)))
            })?;
        }
    }
}

/// Whether [`open_regular`] follows a symbolic link at the path itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// A file the user named (an input): a link to a regular file stands for that file.
    Follow,
    /// A file of a run directory (its lock, its metrics log): a link there could lead a write
    /// out of the directory and onto the user's data, so it is refused.
    Refuse,
}

/// Opens `path` with `options`, refusing anything but a regular file (a directory, a named
/// pipe, a device, a socket) and, with [`Links::Refuse`], a symbolic link; the error names the
/// path and what it is. Never waits: the open is non-blocking, so a named pipe with no writer
/// is refused instead of hanging (on a regular file the flag changes nothing).
pub fn open_regular(path: &Path, options: &mut std::fs::OpenOptions, links: Links) -> Result<std::fs::File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let nofollow = if links == Links::Refuse { libc::O_NOFOLLOW } else { 0 };
        options.custom_flags(libc::O_NONBLOCK | nofollow);
    }
    let is_link = || std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    #[cfg(not(unix))]
    if links == Links::Refuse && is_link() {
        return Err(not_regular(path, "is a symbolic link"));
    }
    let file = match options.open(path) {
        Ok(f) => f,
        // The open's own error (ELOOP, ENXIO, EISDIR) says less than what the path is.
        Err(e) => {
            if links == Links::Refuse && is_link() {
                return Err(not_regular(path, "is a symbolic link"));
            }
            if let Some(m) = std::fs::metadata(path).ok().filter(|m| !m.is_file()) {
                return Err(not_regular(path, kind_of(&m.file_type())));
            }
            return Err(Error::io(path, e));
        }
    };
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, kind_of(&meta.file_type())));
    }
    Ok(file)
}

/// What a path that is not a regular file is, for messages.
fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "is a named pipe (FIFO)";
        }
        if t.is_socket() {
            return "is a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "is a device";
        }
    }
    if t.is_dir() {
        "is a directory"
    } else if t.is_symlink() {
        "is a symbolic link"
    } else {
        "is not a file"
    }
}

fn not_regular(path: &Path, what: &str) -> Error {
    let kind =
        if what == "is a directory" { std::io::ErrorKind::IsADirectory } else { std::io::ErrorKind::InvalidInput };
    Error::io(path, std::io::Error::new(kind, format!("{what}, not a regular file")))
}

/// Opens `path` for [`read_checked`] through [`open_regular`] (so a directory, a
/// named pipe or a device is refused, and nothing blocks), refusing a file larger than `limit`
/// before reading it.
pub fn open_file(path: &Path, what: &str, limit: &Limit) -> Result<std::fs::File> {
    let file = open_regular(path, std::fs::OpenOptions::new().read(true), Links::Follow)?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.len() > limit.bytes {
        return Err(Error::format(
            path,
            format!(
                "{what} of {} is larger than the {} allowed ({})",
                human(meta.len() as u128),
                human(limit.bytes as u128),
                limit.why
            ),
        ));
    }
    Ok(file)
}

/// Reads the file at `path` with [`read_checked`].
pub fn read_file(path: &Path, what: &str, limit: &Limit, declared: Declared) -> Result<Vec<u8>> {
    read_checked(open_file(path, what, limit)?, path, what, limit, declared)
}

/// For [`read_file`] on formats whose header declares no size.
pub fn undeclared(_: &[u8]) -> Result<Option<u64>> {
    Ok(None)
}

/// The most a JSON text (energy spec, run description) may hold: far above any real spec, far
/// below a mistake such as `--energy /dev/zero`.
pub const JSON_LIMIT: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_bytes("2GiB"), Some(2 << 30));
        assert_eq!(parse_bytes("1.5k"), Some(1536));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("-1"), None);
        assert_eq!(parse_bytes("nan"), None);
    }

    #[test]
    fn a_plan_over_budget_names_the_largest_flag() {
        let budget = Budget { bytes: 1 << 20, source: "test" };
        let mut plan = Plan::new();
        plan.add("--chains 10 x dim 2", "chain states", &[10, 2], 4, 1);
        assert!(plan.check_against(budget).is_ok());
        plan.add("--trace", "the trace", &[1 << 20, 10, 2], 4, 1);
        let message = plan.check_against(budget).unwrap_err().to_string();
        assert!(
            message.contains("--trace") && message.contains("80.00 MiB") && message.contains("1.00 MiB"),
            "{message}"
        );
    }

    #[test]
    fn work_over_the_limit_names_its_flags() {
        let mut work = Work::new();
        work.add("--chains 4 x --steps 10", "sampling", &[4, 10, 2]);
        assert!(work.check_against(80).is_ok());
        work.add("--leapfrog 1000", "the leapfrog steps", &[4, 10, 1000]);
        let message = work.check_against(1000).unwrap_err().to_string();
        assert!(message.contains("--leapfrog 1000") && message.contains("4.0e4 operations"), "{message}");
        // Saturates instead of wrapping: the largest request is still refused.
        Work::new().add("--x", "x", &[u64::MAX, u64::MAX, u64::MAX]).check_against(1).unwrap_err();
        let message = per_step("--leapfrog", 4_000_000_000, MAX_STEPS_PER_STEP, "leapfrog steps per proposal")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("--leapfrog") && message.contains("4000000000") && message.contains("10000"),
            "{message}"
        );
        assert!(per_step("--leapfrog", MAX_STEPS_PER_STEP, MAX_STEPS_PER_STEP, "x").is_ok());
    }

    #[test]
    fn reads_stop_at_the_limit_or_the_declared_size() {
        let path = Path::new("/dev/zero");
        let limit = |bytes| Limit { bytes, why: "test".into() };
        let err =
            read_checked(std::io::repeat(0).take(1 << 20), path, "zeros", &limit(1000), &mut undeclared).unwrap_err();
        assert!(err.to_string().contains("larger than the 1000 B allowed"), "{err}");
        assert_eq!(read_checked(&b"abc"[..], path, "abc", &limit(3), &mut undeclared).unwrap(), b"abc");
        // A header declaring 4 bytes: one more is read, so the parser can see the trailing data.
        let mut four = |_: &[u8]| Ok(Some(4));
        assert_eq!(
            read_checked(std::io::repeat(7).take(1 << 20), path, "x", &limit(1 << 30), &mut four).unwrap(),
            [7; 5]
        );
        let mut huge = |_: &[u8]| Ok(Some(1 << 40));
        let err = read_checked(std::io::repeat(7), path, "x", &limit(1 << 30), &mut huge).unwrap_err();
        assert!(err.to_string().contains("declares 1.00 TiB"), "{err}");
    }
}
