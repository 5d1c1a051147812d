//! The markdown files render as intended (code fences pair up, nothing after a closing fence,
//! no heading swallowed by a code block, relative links point at files and headings that
//! exist), and README's commands run as written.
//!
//! How README's commands are run (`readme_commands_run_as_written_at_small_sizes`): every
//! ```sh block of README.md, in order, in one scratch directory (as a reader works in one
//! clone), each block as one `bash -euo pipefail` script, so loops and variables work as in a
//! shell. `ebm` is the binary under test, reached through a small shim on `PATH` that logs each
//! call. Sizes are made small by one mechanical rewrite of the command text, shown in the
//! failure message: every `--FLAG N` of `commands::CAPS` is capped (`--chains` 16, `--steps`
//! 40, `--epochs` 1, ...), and `commands::ADDED` inserts `--steps 40` / `--limit 8` after the
//! subcommands whose defaults are long (`sample`, `train`, `restore`, `ood`, `classify`) when
//! the command sets none. Data: `EBM_DATA_DIR` points at a folder whose `mnist` and
//! `fashion-mnist` are both the committed slice `tests/fixtures/mnist` (the CLI reads named
//! sets only from there while it is set), and `data/` is the repository's, so `data/digits`
//! resolves. Not run: `ebm data download` (it fetches from the internet; `tests/datasets.rs`
//! tests the downloader against a server on 127.0.0.1) and the lines of cargo, Python, Ray and
//! the browser demo, which have their own tests; the first screen's `cargo run --release --`
//! runs as `ebm`. A command of any other program fails the test, and so do a literal `...`,
//! two commands training into one run dir, and a command that exits non-zero. The docs/ pages
//! are reference, checked as markdown only.
//!
//! `scripts/readme_timings.sh` runs the same blocks at full size (the ignored test
//! `readme_timings`) and writes docs/timings.md and the README's figures.

#[path = "readme/commands.rs"]
mod commands;
// The runs need bash and symbolic links.
#[cfg(unix)]
#[path = "readme/sandbox.rs"]
mod sandbox;

use std::path::Path;

/// Problems in one markdown text: unbalanced or malformed fences, headings inside fences,
/// relative links to missing files or headings.
fn problems(text: &str, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    let mut headings = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(rest) = line.strip_prefix("```") {
            match open {
                // A closing fence is only backticks: "``` more text" inside a block does not
                // close it, so everything after stays code.
                Some(_) if rest.trim().is_empty() => open = None,
                Some(start) => {
                    out.push(format!("line {n}: text after a fence inside the block opened at line {start}"))
                }
                None if rest.trim().contains(char::is_whitespace) => {
                    out.push(format!("line {n}: a fence followed by prose opens a code block"))
                }
                None => open = Some(n),
            }
            continue;
        }
        let is_heading = line.starts_with('#') && line.trim_start_matches('#').starts_with(' ');
        // In a block, `# text` is a shell comment; a swallowed section heading has two or more.
        match open {
            Some(start) if is_heading && line.starts_with("##") => {
                out.push(format!("line {n}: heading {line:?} is inside the code block opened at line {start}"))
            }
            None if is_heading => headings.push(slug(line.trim_start_matches('#').trim())),
            _ => {}
        }
    }
    if let Some(start) = open {
        out.push(format!("the code block opened at line {start} is never closed"));
    }
    // Relative links: [text](target) outside code.
    let mut in_code = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        for part in line.split("](").skip(1) {
            let Some(target) = part.split(')').next() else { continue };
            if target.starts_with("http") || target.contains(' ') {
                continue;
            }
            if let Some(anchor) = target.strip_prefix('#') {
                if !headings.iter().any(|h| h == anchor) {
                    out.push(format!("line {}: link to #{anchor}, which no heading has", i + 1));
                }
            } else {
                let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
                let path = dir.join(file);
                if !path.exists() {
                    out.push(format!("line {}: link to {target}, which does not exist", i + 1));
                } else if !anchor.is_empty() && !file_headings(&path).iter().any(|h| h == anchor) {
                    out.push(format!("line {}: link to {target}, but {file} has no such heading", i + 1));
                }
            }
        }
    }
    out
}

/// The anchors of a markdown file's headings (none for another kind of file).
fn file_headings(path: &Path) -> Vec<String> {
    if path.extension().is_none_or(|e| e != "md") {
        return Vec::new();
    }
    let mut in_code = false;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') && line.trim_start_matches('#').starts_with(' ') {
            out.push(slug(line.trim_start_matches('#').trim()));
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn markdown_fences_pair_and_headings_stay_outside_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> =
        ["README.md", "ARCHITECTURE.md", "BENCHMARKS.md", "data/README.md", "web/README.md", "bench/device/README.md"]
            .map(String::from)
            .to_vec();
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".md") {
            files.push(format!("docs/{name}"));
        }
    }
    assert!(files.len() > 8, "the docs pages are found: {files:?}");
    for file in &files {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let found = problems(&text, path.parent().unwrap());
        assert!(found.is_empty(), "{file}:\n  {}", found.join("\n  "));
    }
}

/// The checks catch what broke README before: prose after a closing fence that swallowed a
/// heading, an unclosed block, a dangling link.
#[test]
fn the_checks_catch_a_broken_fence() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let broken = "```sh\nebm sample\n``` Outputs are written atomically.\n\n## Energy spec\n";
    let found = problems(broken, dir);
    assert!(found.iter().any(|p| p.contains("text after a fence")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("Energy spec") && p.contains("inside")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("never closed")), "{found:?}");
    assert_eq!(problems("```sh\nx\n```\n## A b\n[a](#a-b) [c](README.md)\n", dir), Vec::<String>::new());
    assert_eq!(problems("[a](#nope) [b](missing.md)\n", dir).len(), 2);
    assert_eq!(problems("[a](README.md#tour) [b](README.md#no-such-heading)\n", dir).len(), 1);
}

/// README's commands, run as written at small sizes (the design is in this file's header).
#[cfg(unix)]
#[test]
fn readme_commands_run_as_written_at_small_sizes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = commands::sh_blocks(&text);
    assert!(blocks.len() >= 10, "README's tour has its command blocks: {}", blocks.len());
    let found = commands::command_problems(&blocks);
    assert!(found.is_empty(), "README.md:\n  {}", found.join("\n  "));
    let sandbox = sandbox::Sandbox::new(root, "small", true);
    let timed = sandbox.run_all(&blocks, |_| true);
    let total: f64 = timed.iter().map(|t| t.seconds).sum();
    println!("{} ebm calls in {total:.1} s", timed.len());
    let _ = std::fs::remove_dir_all(&sandbox.dir);
}

/// The checks refuse what made README unrunnable before: a literal `...`, a run dir two
/// examples train into, an unknown program; and the rewrite shrinks what it should.
#[test]
fn the_command_checks_catch_an_ellipsis_a_shared_run_dir_and_an_unknown_program() {
    let page = "## A\n```sh\nebm merge --out all.npy s0.npy s1.npy ...\nebm train --data ring8 --run-dir runs/a\n```\n\
                ## B\n```sh\nebm train --data two_moons --run-dir runs/a/ \\\n  --steps 10\nmake all\n```\n\
                ```sh\nebm train --resume runs/a --steps 20\n```\n";
    let blocks = commands::sh_blocks(page);
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[1].heading, "B");
    assert_eq!(blocks[1].commands.len(), 2, "the continuation line is one command: {:?}", blocks[1].commands);
    let found = commands::command_problems(&blocks);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].contains("...") && found[1].contains("runs/a") && found[2].contains("make"), "{found:?}");
    // A JSON spec over several lines is one command, and nothing inside it is rewritten.
    let json = "```sh\nebm sample --chains 1024 --energy '{\"type\": \"sum\",\n  \"weights\": [2000]}'\n```\n";
    let blocks = commands::sh_blocks(json);
    assert_eq!(blocks[0].commands.len(), 1);
    let small = commands::small(&blocks[0].commands[0].1);
    assert_eq!(small, "ebm sample --steps 40 --chains 16 --energy '{\"type\": \"sum\",\n  \"weights\": [2000]}'");
    // Caps lower, never raise; a loop's `ebm` gets them too; rbm's flags are left to it.
    assert_eq!(
        commands::small("for i in 0 1; do ebm sample --chains 4 --warmup 200 --shard $i/2; done"),
        "for i in 0 1; do ebm sample --steps 40 --chains 4 --warmup 5 --shard $i/2; done"
    );
    assert_eq!(commands::small("ebm train --data x --epochs 5"), "ebm train --data x --epochs 1");
    assert_eq!(commands::small("ebm rbm train --epochs 5"), "ebm rbm train --epochs 1");
    assert_eq!(commands::small("ebm restore --limit 500"), "ebm restore --steps 40 --limit 8");
    assert_eq!(
        commands::plan("cargo run --release -- sample --chains 4096").unwrap(),
        commands::Plan::Run("ebm sample --chains 4096".into())
    );
}

/// The figures README shows that its commands make: (file written in the scratch directory, or
/// a folder and a file-name prefix whose last match is taken; the copy under docs/).
#[cfg(unix)]
const FIGURES: &[(&str, &str)] = &[
    ("ring8.png", "docs/ring8.png"),
    ("compose.png", "docs/compose_ring8_halfplane.png"),
    ("runs/moons/figures/density_", "docs/train_two_moons.png"),
    ("inpaint.png", "docs/jem_mnist_inpainting.png"),
    ("retrieval.png", "docs/contrastive_mnist_retrieval.png"),
    ("coop.png", "docs/cooperative_ring8.png"),
    ("runs/ring8_latent/figures/density_", "docs/latent_ring8.png"),
];

/// README's blocks at full size, as written, with the real datasets: writes docs/timings.md
/// (every call's wall time and the machine) and copies README's figures into docs/.
/// `EBM_README_SECTIONS` (comma-separated parts of tour headings, e.g. `Sampling,Training`)
/// runs only those sections; docs/timings.md then says which were left out.
/// `scripts/readme_timings.sh` runs it.
#[cfg(unix)]
#[test]
#[ignore = "full size: about 25 minutes on the 2-core machine (two MNIST trainings); scripts/readme_timings.sh runs it"]
fn readme_timings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = commands::sh_blocks(&text);
    let wanted: Vec<String> = std::env::var("EBM_README_SECTIONS")
        .map(|s| s.split(',').map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let keep = |b: &commands::Block| wanted.is_empty() || wanted.iter().any(|w| b.heading.to_lowercase().contains(w));
    let sandbox = sandbox::Sandbox::new(root, "full", false);
    let load = std::fs::read_to_string("/proc/loadavg")
        .map_or("unknown".into(), |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    let timed = sandbox.run_all(&blocks, keep);
    let mut left_out: Vec<&str> = blocks.iter().filter(|b| !keep(b)).map(|b| b.heading.as_str()).collect();
    left_out.dedup();
    let mut copied = Vec::new();
    for (made, dest) in FIGURES {
        let found = match made.rsplit_once('/') {
            Some((dir, prefix)) if !made.ends_with(".png") => {
                let mut names: Vec<_> = std::fs::read_dir(sandbox.work.join(dir))
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
                    .collect();
                names.sort();
                names.pop()
            }
            _ => Some(sandbox.work.join(made)).filter(|p| p.exists()),
        };
        if let Some(path) = found {
            std::fs::copy(&path, root.join(dest)).unwrap();
            copied.push(*dest);
        }
    }
    std::fs::write(root.join("docs/timings.md"), timings_page(&timed, &left_out, &copied, &load)).unwrap();
    println!("wrote docs/timings.md; figures: {copied:?}; scratch directory {}", sandbox.dir.display());
}

/// docs/timings.md: the machine, then every call's wall time by tour section.
#[cfg(unix)]
fn timings_page(timed: &[sandbox::Timed], left_out: &[&str], copied: &[&str], load: &str) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap().trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let info = std::process::Command::new(sandbox::binary()).arg("info").output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    let line = |prefix: &str| info.lines().find(|l| l.starts_with(prefix)).map_or("see `ebm info`", |l| l.trim());
    let (auto, threads) = (line("--backend auto runs on:"), line("cpu executor:"));
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .map_or(String::new(), |o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let dirty =
        if git(&["status", "--porcelain", "--untracked-files=no"]).is_empty() { "" } else { " with local changes" };
    let commit = format!("{}{dirty}", git(&["rev-parse", "--short", "HEAD"]));
    let build = if sandbox::binary().components().any(|c| c.as_os_str() == "release") { "release" } else { "test" };
    let mut page = format!(
        "# Timings\n\nWritten by `scripts/readme_timings.sh` (the ignored test `readme_timings` in \
         tests/readme.rs); do not edit by hand. Every `ebm` command of the [README](../README.md)'s \
         tour, run as written (full size, real datasets) in one scratch directory, top to bottom, \
         timed by wall clock (building `ebm` and the test suite are not included).\n\n\
         - Machine: {cpu}, {cores} cores available to the process; {threads}\n- {auto}\n\
         - Commit: {commit}; {build} build of `ebm`\n- Load average when the run began (other work on \
         the machine slows it): {load}\n"
    );
    if !left_out.is_empty() {
        page.push_str(&format!("- Not run this time (no times below): {}\n", left_out.join("; ")));
    }
    if !copied.is_empty() {
        page.push_str(&format!("- Figures written: {}\n", copied.join(", ")));
    }
    let mut heading = "";
    for t in timed {
        if t.heading != heading {
            heading = &t.heading;
            let total: f64 = timed.iter().filter(|u| u.heading == heading).map(|u| u.seconds).sum();
            let title = if heading == "ebm-gpu" { "The first screen" } else { heading };
            page.push_str(&format!("\n## {title}\n\n{total:.1} s in all.\n\n| wall time | command |\n|---|---|\n"));
        }
        let args = t.args.replace('|', "\\|");
        page.push_str(&format!("| {:.1} s | `ebm {args}` |\n", t.seconds));
    }
    let total: f64 = timed.iter().map(|t| t.seconds).sum();
    page.push_str(&format!("\nEvery command above: {:.1} min.\n", total / 60.0));
    page
}
