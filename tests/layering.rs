//! The module graph stays a hierarchy: no cycle among the crate's top-level modules nor among
//! the sibling files of one module, and nothing below the CLI imports the CLI, the prelude or
//! the selftest. Reads src/ as text (a `crate::x` or `super::x` path outside comments is an
//! import), so it needs no GPU and fails naming the cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every .rs file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: src/energy/mod.rs -> [energy], src/nn/gpu/gemm.rs -> [nn, gpu, gemm].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib" || p == "main") {
        parts.pop();
    }
    parts
}

/// The paths a file names after `prefix` (`crate::` or `super::`), comments left out.
fn paths_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            let tail = &rest[at + prefix.len()..];
            let end = tail.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                out.push(tail[..end].split("::").filter(|s| !s.is_empty()).map(String::from).collect());
            }
            rest = &tail[end..];
        }
    }
    out
}

/// A cycle in `graph`, if any, as the nodes along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let start = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node.as_str())
            && let Some(c) = visit(node, graph, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_module_graph_has_no_cycles_and_no_upward_imports() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    // Edges between top-level modules, and between siblings (children of one module).
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut siblings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some(first) = module.first().cloned() else { continue };
        if first == "bin" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let is_mod_file = file.file_name().is_some_and(|n| n == "mod.rs");
        let parent = if is_mod_file { module.clone() } else { module[..module.len() - 1].to_vec() };
        let mut targets: Vec<Vec<String>> = paths_after(&text, "crate::");
        for path in paths_after(&text, "super::") {
            // `super` of a file is its parent module; of a mod.rs, the parent's parent.
            let mut base = if is_mod_file { parent[..parent.len().saturating_sub(1)].to_vec() } else { parent.clone() };
            if is_mod_file && parent.is_empty() {
                base = Vec::new();
            }
            base.extend(path);
            targets.push(base);
        }
        for target in targets {
            // The longest prefix of the path that is a module of the crate.
            let Some(len) = (1..=target.len()).rev().find(|&n| modules.contains(&target[..n])) else {
                continue;
            };
            let target = &target[..len];
            if target[0] != first {
                top.entry(first.clone()).or_default().insert(target[0].clone());
                let above = ["cli", "prelude", "selftest", "data_parallel"];
                if above.contains(&target[0].as_str()) && !above.contains(&first.as_str()) {
                    upward.push(format!("{} imports {}", file.display(), target.join("::")));
                }
            } else if module.len() >= 2
                && target.len() >= module.len()
                && target[..module.len() - 1] == module[..module.len() - 1]
            {
                // Siblings: same parent, different child (a child using its parent is fine).
                let (a, b) = (module.join("::"), target[..module.len()].join("::"));
                if a != b {
                    siblings.entry(a).or_default().insert(b);
                }
            }
        }
    }
    assert!(upward.is_empty(), "imports from below the CLI up into it:\n{}", upward.join("\n"));
    assert_eq!(find_cycle(&top), None, "a cycle among the top-level modules");
    assert_eq!(find_cycle(&siblings), None, "a cycle among sibling modules");
    // The graph was read: the engine's layers import each other.
    assert!(top.get("sampler").is_some_and(|t| t.contains("energy")), "no sampler -> energy edge found: {top:?}");
}

/// The checker finds a cycle when there is one.
#[test]
fn a_cycle_is_found() {
    let edge = |a: &str, b: &str| (a.to_string(), BTreeSet::from([b.to_string()]));
    let graph = BTreeMap::from([edge("energy", "nn"), edge("nn", "num"), edge("num", "energy")]);
    assert_eq!(find_cycle(&graph), Some(vec!["energy".into(), "nn".into(), "num".into(), "energy".into()]));
    assert_eq!(find_cycle(&BTreeMap::from([edge("energy", "nn")])), None);
    assert_eq!(
        paths_after("use crate::energy::Energy; // crate::cli", "crate::"),
        vec![vec!["energy".to_string(), "Energy".into()]]
    );
}
