//! kms-core's top-level modules depend on each other without cycles, and
//! the operation handlers never touch untyped JSON.
//!
//! Dependencies are read from the sources (`crate::<module>` outside
//! comments and test modules). The one allowed exception is `xks::stack`,
//! the `--demo-xks` composition root, which builds a whole `service::Kms`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments and without its test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn top_level_modules_have_no_import_cycles() {
    let root = src();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == "lib.rs" || rel == "main.rs" || rel == "xks/stack.rs" {
            continue;
        }
        let top = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        let text = code(&std::fs::read_to_string(&f).unwrap());
        let mut names = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            if rest.starts_with('{') {
                let group = &rest[1..rest.find('}').unwrap()];
                for part in group.split(',') {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    names.insert(name);
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                names.insert(name);
            }
        }
        names.retain(|n| !n.is_empty() && *n != top);
        deps.entry(top).or_default().extend(names);
    }
    // Depth-first search for a cycle.
    fn visit(
        n: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == n) {
            panic!("import cycle: {:?} -> {n}", &path[i..]);
        }
        if done.contains(n) {
            return;
        }
        path.push(n.to_owned());
        for d in deps.get(n).into_iter().flatten() {
            visit(d, deps, path, done);
        }
        path.pop();
        done.insert(n.to_owned());
    }
    let mut done = BTreeSet::new();
    for n in deps.keys() {
        visit(n, &deps, &mut Vec::new(), &mut done);
    }
    assert!(deps.contains_key("pipeline") && deps.contains_key("ops"));
}

#[test]
fn handlers_take_typed_requests() {
    let mut files = Vec::new();
    sources(&src().join("ops"), &mut files);
    files.push(src().join("pipeline/dispatch.rs"));
    files.push(src().join("xks/keys.rs"));
    for f in files {
        let text = code(&std::fs::read_to_string(&f).unwrap());
        for banned in ["serde_json::Value", "json!", "Value::"] {
            assert!(!text.contains(banned), "{} uses {banned}", f.display());
        }
    }
}
