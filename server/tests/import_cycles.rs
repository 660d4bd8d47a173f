//! No import cycles in `server/src`: every `crate::` path of every file (in `use` lines,
//! `use crate::{…}` groups and paths written inline) is an arrow from that file's module to the
//! module it names; a cycle among them fails this test and is printed. A file's own children
//! (`super::` paths) are not arrows: a module and the files it is made of are one room.
//!
//! Why: a module that depends on what depends on it cannot be understood, tested or moved on its
//! own (docs/architecture.md, "Where a change goes").

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// A module's path from the crate root (`["whatsapp", "session"]`); the root is `[]`.
type Module = Vec<String>;

#[test]
fn server_src_has_no_import_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    assert!(
        files.len() > 10,
        "read only {} files in {}",
        files.len(),
        src.display()
    );
    let sources: Vec<(Module, String)> = files
        .iter()
        .map(|f| (module_of(&src, f), std::fs::read_to_string(f).unwrap()))
        .collect();
    let cycles = cycles(&graph(&sources));
    assert!(
        cycles.is_empty(),
        "import cycles in server/src:\n{}",
        cycles
            .iter()
            .map(|c| format!("  {}", c.join(" → ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The check itself finds a cycle, through a group and an inline path alike.
#[test]
fn a_cycle_through_a_group_and_an_inline_path_is_found() {
    let sources = vec![
        (vec![], "mod a; mod b; mod c;".to_owned()),
        (
            vec!["a".to_owned()],
            "use crate::{x, b::{self, Thing as T}};\nfn f() {}".to_owned(),
        ),
        (
            vec!["b".to_owned()],
            "// crate::a in a comment is no arrow\nfn g() { crate::c::h(); }".to_owned(),
        ),
        (
            vec!["c".to_owned()],
            "pub fn h() { let _ = crate::a::f; }".to_owned(),
        ),
        (vec!["x".to_owned()], "".to_owned()),
    ];
    let found = cycles(&graph(&sources));
    assert_eq!(found, vec![vec!["a", "b", "c", "a"]]);
    // Without the inline path there is none.
    let mut acyclic = sources.clone();
    acyclic[3].1 = "pub fn h() {}".to_owned();
    assert!(cycles(&graph(&acyclic)).is_empty());
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "main" | "lib")
    ) {
        parts.pop();
    }
    parts
}

/// Each module's arrows to the other modules it names.
fn graph(sources: &[(Module, String)]) -> BTreeMap<Module, BTreeSet<Module>> {
    let modules: BTreeSet<Module> = sources.iter().map(|(m, _)| m.clone()).collect();
    let mut arrows: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, text) in sources {
        let targets = arrows.entry(module.clone()).or_default();
        for path in crate_paths(&without_comments(text)) {
            // The longest prefix that is a module: `crate::store::DeviceHold` is `store`.
            let target = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains(p));
            if let Some(target) = target
                && &target != module
                && !target.starts_with(module)
                && !module.starts_with(&target)
            {
                targets.insert(target);
            }
        }
    }
    arrows
}

/// Drops `//` comments (doc comments too: an intra-doc link is no dependency) and string
/// literals' contents.
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut prev = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if !in_string && c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' {
                in_string = !in_string;
            } else if !in_string {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Every path after `crate::`, a `{…}` group expanded into its members.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `$crate::`, `my_crate::`
        }
        let (paths, used) = tree(rest);
        out.extend(paths);
        rest = &rest[used..];
    }
    out
}

/// Parses one use-tree (`a::b::{c, d::e}`, `x as y`, `*`); answers its paths and the bytes read.
fn tree(s: &str) -> (Vec<Vec<String>>, usize) {
    let mut prefix: Vec<String> = Vec::new();
    let mut i = 0;
    let bytes = s.as_bytes();
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'{' {
            i += 1;
            let mut out = Vec::new();
            loop {
                while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'}' {
                    return (out, (i + 1).min(bytes.len()));
                }
                let (inner, used) = tree(&s[i..]);
                i += used.max(1);
                for p in inner {
                    let mut full = prefix.clone();
                    full.extend(p.into_iter().filter(|seg| seg != "self"));
                    out.push(full);
                }
            }
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if start == i {
            return (vec![prefix], i);
        }
        prefix.push(s[start..i].to_owned());
        if s[i..].starts_with("::") {
            i += 2;
        } else {
            // `as name`, `;`, `(`, `,` — the path ends here.
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if s[j..].starts_with("as ") {
                j += 3;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                i = j;
            }
            return (vec![prefix], i);
        }
    }
}

/// Every strongly connected set of two or more modules, each shown as one cycle through it.
fn cycles(arrows: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    let name = |m: &Module| {
        if m.is_empty() {
            "main".to_owned()
        } else {
            m.join("::")
        }
    };
    let mut out = Vec::new();
    let mut reported: BTreeSet<Module> = BTreeSet::new();
    for start in arrows.keys() {
        if reported.contains(start) {
            continue;
        }
        // The shortest way back to `start`, breadth first.
        let mut came_from: BTreeMap<Module, Module> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        let mut back = None;
        while let Some(m) = queue.pop_front() {
            for next in arrows.get(&m).into_iter().flatten() {
                if next == start {
                    back = Some(m.clone());
                    queue.clear();
                    break;
                }
                if !came_from.contains_key(next) {
                    came_from.insert(next.clone(), m.clone());
                    queue.push_back(next.clone());
                }
            }
        }
        let Some(mut m) = back else { continue };
        let mut cycle = vec![start.clone()];
        let mut tail = vec![m.clone()];
        while &m != start {
            m = came_from[&m].clone();
            if &m != start {
                tail.push(m.clone());
            }
        }
        tail.reverse();
        cycle.extend(tail);
        cycle.push(start.clone());
        reported.extend(cycle.iter().cloned());
        out.push(cycle.iter().map(name).collect());
    }
    out
}
