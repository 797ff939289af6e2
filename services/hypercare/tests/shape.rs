//! The shape of the code, checked: no import circles between the modules of a
//! crate (`a` uses `b` and `b` uses `a`, directly or through others). A circle
//! means two modules own one rule between them; the fix is to move the shared
//! type to the module that owns it (see docs/architecture.md).
//!
//! A module is a file (`otlp/metrics.rs` is `otlp::metrics`); a reference is any
//! `crate::a::b` or `super::x` path in its code outside `#[cfg(test)]` items.
//! References between a module and its own ancestors or descendants (a
//! `mod.rs` and its children) are how Rust nests modules and are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every crate source folder of the workspace.
fn crates() -> Vec<PathBuf> {
    let root = workspace();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("services"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    dirs.push(root.join("loadtest/src"));
    dirs.sort();
    dirs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `otlp/metrics.rs` -> `["otlp", "metrics"]`; `otlp/mod.rs` -> `["otlp"]`;
/// `lib.rs`/`main.rs` -> `[]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code without its test items (everything from the first
/// `#[cfg(test)]` on: tests sit at the end of a file here) and without
/// comments (a doc link is not a dependency).
fn production_code(text: &str) -> String {
    let code = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths a file refers to, as written after `crate::` or resolved
/// from `super::`, including `use crate::{a, b::c}` groups.
fn references(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    for (start, anchor) in [("crate::", 0usize), ("super::", 1)] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            if at > 0 && (ident(bytes[at - 1]) || bytes[at - 1] == b':') && anchor == 0 {
                continue; // `hypercare_http::crate::`-like, or a longer name
            }
            let mut base: Vec<String> = if anchor == 0 {
                Vec::new()
            } else {
                // `super` of a file module is its parent; count repeats.
                let mut up = 1;
                let mut rest = &code[from..];
                while let Some(next) = rest.strip_prefix("super::") {
                    up += 1;
                    rest = next;
                    from += "super::".len();
                }
                if up > module.len() {
                    continue;
                }
                module[..module.len() - up].to_vec()
            };
            let rest = &code[from..];
            if rest.starts_with('{') {
                // A group: every first segment inside the braces.
                let end = rest.find('}').unwrap_or(rest.len());
                for item in rest[1..end].split(',') {
                    let path: Vec<String> = item
                        .trim()
                        .split("::")
                        .map(|s| s.trim().to_owned())
                        .take_while(|s| !s.is_empty() && s.bytes().all(ident))
                        .collect();
                    if !path.is_empty() {
                        let mut full = base.clone();
                        full.extend(path);
                        found.push(full);
                    }
                }
            } else {
                let path: Vec<String> = rest
                    .split("::")
                    .map(|s| {
                        s.bytes()
                            .take_while(|&c| ident(c))
                            .map(char::from)
                            .collect::<String>()
                    })
                    .take_while(|s| !s.is_empty())
                    .collect();
                base.extend(path);
                found.push(base);
            }
        }
    }
    found
}

/// The module a reference lands in: its longest prefix that is a module file.
fn resolve(reference: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=reference.len())
        .rev()
        .map(|n| reference[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
}

fn nested(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// The circles of one crate, each as its modules in order.
fn circles(src: &Path) -> Vec<Vec<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let module = module_of(src, file);
        if module.is_empty() || module.first().is_some_and(|m| m == "bin") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for reference in references(&module, &production_code(&text)) {
            if let Some(target) = resolve(&reference, &modules)
                && !target.is_empty()
                && !nested(&module, &target)
            {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    // Depth-first search for back edges; each circle is reported once.
    let mut found = BTreeSet::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, path)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let mut circle: Vec<String> = path.iter().map(|m| m.join("::")).collect();
                    let smallest = (0..circle.len()).min_by_key(|&i| &circle[i]).unwrap();
                    circle.rotate_left(smallest);
                    found.insert(circle);
                } else if !path.contains(next) && path.len() < 8 {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found.into_iter().collect()
}

#[test]
fn no_module_of_any_crate_is_in_an_import_circle() {
    let mut report = Vec::new();
    for src in crates() {
        for circle in circles(&src) {
            let name = src.parent().unwrap().file_name().unwrap().to_string_lossy();
            report.push(format!("{name}: {}", circle.join(" -> ")));
        }
    }
    assert!(
        report.is_empty(),
        "import circles (move the shared type to the module that owns it):\n{}",
        report.join("\n")
    );
}

#[test]
fn the_detector_finds_a_circle_through_super_and_groups() {
    let module = vec!["otlp".to_owned(), "metrics".to_owned()];
    let refs = references(
        &module,
        "use super::json::Value;\nuse crate::{routes::IngestState, writer};\nfn f() { crate::budget::check() }",
    );
    assert_eq!(
        refs,
        vec![
            vec!["routes".to_owned(), "IngestState".to_owned()],
            vec!["writer".to_owned()],
            vec!["budget".to_owned(), "check".to_owned()],
            vec!["otlp".to_owned(), "json".to_owned(), "Value".to_owned()],
        ]
    );
}
