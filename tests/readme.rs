//! The markdown files render as intended: code fences pair up, nothing after a closing fence,
//! no heading swallowed by a code block, and relative links point at files that exist.

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
        match open {
            Some(start) if is_heading => {
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
            } else if !dir.join(target.split('#').next().unwrap()).exists() {
                out.push(format!("line {}: link to {target}, which does not exist", i + 1));
            }
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
    for file in ["README.md", "ARCHITECTURE.md", "BENCHMARKS.md", "data/README.md", "web/README.md"] {
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
}
