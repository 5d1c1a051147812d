//! The command blocks of a markdown page, and how the README test turns them into shell scripts
//! at small sizes (see `readme.rs` for the design).

/// One ```sh block: the heading above it, and its commands (continuation lines and multi-line
/// quoted arguments joined) with the line each starts on.
#[derive(Debug)]
pub struct Block {
    pub heading: String,
    pub line: usize,
    pub commands: Vec<(usize, String)>,
}

/// The ```sh blocks of `text`, in order.
pub fn sh_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut current: Option<Block> = None;
    // The command being read: its first line and its text so far.
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(block) = current.as_mut() {
            if line.starts_with("```") && pending.is_none() {
                blocks.push(current.take().unwrap());
                continue;
            }
            let (start, mut cmd) = pending.take().unwrap_or((n, String::new()));
            if !cmd.is_empty() {
                cmd.push('\n');
            }
            cmd.push_str(line);
            // A command goes on while a single quote is open (an inline JSON spec over several
            // lines) or the line ends in a backslash.
            let open_quote = cmd.matches('\'').count() % 2 == 1;
            if open_quote || cmd.ends_with('\\') {
                pending = Some((start, cmd));
            } else if !cmd.trim().is_empty() {
                block.commands.push((start, cmd));
            }
        } else if let Some(lang) = line.strip_prefix("```") {
            if lang.trim() == "sh" {
                current = Some(Block { heading: heading.clone(), line: n, commands: Vec::new() });
            }
        } else if line.starts_with('#') && line.trim_start_matches('#').starts_with(' ') {
            heading = line.trim_start_matches('#').trim().to_string();
        }
    }
    blocks
}

/// What the test does with one command.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// Run through bash (an `ebm` command, a loop of them, or a variable assignment).
    Run(String),
    /// Not run, and why.
    Skip(&'static str),
    /// A download: skipped at small sizes (the data come from tests/fixtures), run at full size.
    Download(String),
}

/// Tools whose commands the test does not run: builds, Python, Ray, the browser demo.
const SKIPPED_TOOLS: &[&str] = &["cargo", "python", "python3", "pip", "ray", "rustup", "cd", "wasm-bindgen"];

/// Decides what to do with a command; an error for a program the test does not know.
pub fn plan(cmd: &str) -> Result<Plan, String> {
    let cmd = cmd.trim();
    // The first screen's command builds and runs `ebm`: here it is the built binary.
    if let Some(rest) = cmd.strip_prefix("cargo run --release -- ") {
        return Ok(Plan::Run(format!("ebm {rest}")));
    }
    let first = cmd.split_whitespace().next().unwrap_or("");
    if cmd.starts_with("ebm data download ") {
        return Ok(Plan::Download(cmd.to_string()));
    }
    let assignment = first.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    });
    if first == "ebm" || first == "for" || assignment {
        return Ok(Plan::Run(cmd.to_string()));
    }
    if SKIPPED_TOOLS.contains(&first) {
        return Ok(Plan::Skip("not an ebm command (builds, Python, Ray and the browser demo have their own tests)"));
    }
    Err(format!("{first:?} is neither ebm nor a tool the README test knows to skip"))
}

/// Caps on flags whose value sets the size of the work: a larger literal number is lowered to
/// the cap, a smaller one kept.
pub const CAPS: &[(&str, u64)] = &[
    ("--chains", 16),
    ("--steps", 40),
    ("--warmup", 5),
    ("--epochs", 1),
    ("--pretrain-epochs", 1),
    ("--limit", 8),
    ("--starts", 8),
    ("--ais-runs", 4),
    ("--betas", 100),
    ("--train-rows", 50),
    ("--average", 2),
    ("--reverse-gibbs", 10),
];

/// Flags added after `ebm SUBCOMMAND` when the command names none of the listed flags: the
/// commands whose defaults are long (a checkpoint's 256 sampling steps, 3000 training steps,
/// every test image).
pub const ADDED: &[(&str, &[&str], &str)] = &[
    ("sample", &["--steps"], "--steps 40"),
    ("train", &["--steps", "--epochs", "--resume"], "--steps 40"),
    ("restore", &["--steps"], "--steps 40"),
    ("restore", &["--limit"], "--limit 8"),
    ("ood", &["--limit"], "--limit 8"),
    ("classify", &["--limit"], "--limit 8"),
];

/// The command at small sizes: every `--FLAG N` of [`CAPS`] capped, the flags of [`ADDED`]
/// inserted after the subcommand of each `ebm` in it (a loop's too).
pub fn small(cmd: &str) -> String {
    let mut out = String::new();
    let mut rest = cmd;
    while let Some(at) = find_word(rest, "ebm") {
        out.push_str(&rest[..at]);
        let this = &rest[at..];
        // This `ebm` runs to the next one (a loop's body holds one).
        let end = find_word(&this[3..], "ebm").map_or(this.len(), |e| e + 3);
        out.push_str(&small_one(&this[..end]));
        rest = &this[end..];
    }
    out.push_str(rest);
    out
}

/// `needle` as a whole word in `s`: at the start or after whitespace, `;` or `(`, and followed
/// by whitespace.
fn find_word(s: &str, needle: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find(needle).map(|i| i + from) {
        let before = s[..i].chars().next_back().is_none_or(|c| c.is_whitespace() || c == ';' || c == '(');
        let after = s[i + needle.len()..].chars().next().is_some_and(char::is_whitespace);
        if before && after {
            return Some(i);
        }
        from = i + needle.len();
    }
    None
}

fn small_one(cmd: &str) -> String {
    let mut text = cmd.to_string();
    for (flag, cap) in CAPS {
        let mut from = 0;
        while let Some(i) = find_word(&text[from..], flag).map(|i| i + from) {
            let value_start = i + flag.len() + 1;
            let value_end =
                text[value_start..].find(|c: char| !c.is_ascii_digit()).map_or(text.len(), |e| e + value_start);
            let ends_word = text[value_end..].chars().next().is_none_or(|c| c.is_whitespace() || c == ';');
            if let (Ok(v), true) = (text[value_start..value_end].parse::<u64>(), ends_word)
                && v > *cap
            {
                text.replace_range(value_start..value_end, &cap.to_string());
            }
            from = value_start;
        }
    }
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    // The subcommand: `ebm train`, or `ebm rbm train` (whose flags differ: not added to).
    let Some(sub) = words.get(1) else { return text };
    let sub_end = text.find(sub).unwrap() + sub.len();
    let mut added = String::new();
    for (name, unless, flags) in ADDED {
        if name == sub && !unless.iter().any(|f| find_word(&text, f).is_some()) {
            added.push(' ');
            added.push_str(flags);
        }
    }
    text.insert_str(sub_end, &added);
    text
}

/// The run dir a command trains into (`ebm train`, `ebm rbm train`, `ebm dbm train` without
/// `--resume`), if any.
pub fn run_dir_written(cmd: &str) -> Option<String> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let trains = match words.get(1) {
        Some(&"train") => true,
        Some(&"rbm") | Some(&"dbm") => words.get(2) == Some(&"train"),
        _ => false,
    };
    if words.first() != Some(&"ebm") || !trains || words.contains(&"--resume") {
        return None;
    }
    let at = words.iter().position(|w| *w == "--run-dir")?;
    words.get(at + 1).map(|d| d.trim_end_matches('/').to_string())
}

/// What makes a page's command blocks unrunnable as written: a literal `...`, a program the
/// test does not know, two commands training into one run dir.
pub fn command_problems(blocks: &[Block]) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs: Vec<(String, usize)> = Vec::new();
    for block in blocks {
        for (line, cmd) in &block.commands {
            if cmd.contains("...") {
                out.push(format!("line {line}: a literal `...` cannot be run: {cmd}"));
            }
            match plan(cmd) {
                Err(e) => out.push(format!("line {line}: {e}")),
                Ok(Plan::Skip(_) | Plan::Download(_)) => {}
                Ok(Plan::Run(run)) => {
                    if let Some(dir) = run_dir_written(&run) {
                        match dirs.iter().find(|(d, _)| *d == dir) {
                            Some((_, first)) => out.push(format!(
                                "line {line}: trains into {dir}, which line {first} already trains into (give each \
                                 example its own run dir)"
                            )),
                            None => dirs.push((dir, *line)),
                        }
                    }
                }
            }
        }
    }
    out
}
