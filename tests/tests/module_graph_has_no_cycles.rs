//! No import cycles between the modules of any crate: modules depend one way.
//!
//! For every crate's `src/`, each file is a module (`a/b.rs` and `a/b/mod.rs` are `a::b`).
//! Every path it names (`use crate::…`, `use super::…`, `crate::x::y` in code, grouped
//! `{…}` imports) is resolved to an absolute module path. A reference from module `p::a…`
//! to `p::b…` is an edge between the siblings `p::a` and `p::b`: so a cycle is found at
//! whatever depth it forms (e.g. `storage::store → compaction → region → store`, or
//! `resp::cmd ↔ resp::connection`). Test code (from a file's first `#[cfg(test)]` on) and
//! comments are not dependencies. Tarjan's algorithm finds the strongly connected
//! components; any with more than one module is a cycle, printed with its edges and the
//! file that makes each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;
/// Sibling edges, each with one file that makes it.
type Graph = BTreeMap<ModPath, BTreeMap<ModPath, PathBuf>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn module_of(root: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut segs: ModPath = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        segs.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segs.pop();
    }
    segs
}

/// The non-test, non-comment text of a file.
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Identifier path segments starting at `s` (`a::b::c`), and where they end.
fn segments(s: &str) -> (Vec<String>, usize) {
    let mut segs = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        while s[i..].starts_with(is_ident) {
            i += s[i..].chars().next().unwrap().len_utf8();
        }
        if i == start {
            break;
        }
        segs.push(s[start..i].to_string());
        if s[i..].starts_with("::") && s[i + 2..].starts_with(is_ident) {
            i += 2;
        } else {
            break;
        }
    }
    (segs, i)
}

/// The first path segment of each item of a `{…}` group starting after `{` at `s`.
fn group_heads(s: &str) -> Vec<String> {
    let mut depth = 1;
    let mut heads = Vec::new();
    let mut item_start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' | ',' if depth == 1 => {
                let (segs, _) = segments(s[item_start..i].trim_start());
                heads.extend(segs.into_iter().next());
                item_start = i + 1;
                if c == '}' {
                    break;
                }
            }
            '}' => depth -= 1,
            _ => {}
        }
    }
    heads
}

/// Absolute module paths (possibly extended by item names) that `text` refers to from
/// module `me`.
fn references(me: &ModPath, text: &str) -> Vec<ModPath> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for kw in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(pos) = text[from..].find(kw) {
            let at = from + pos;
            from = at + kw.len();
            if at > 0 && (is_ident(bytes[at - 1] as char) || bytes[at - 1] == b':') {
                continue; // part of a longer path (`super::super::` is handled below)
            }
            let mut base: ModPath = if kw == "crate::" {
                Vec::new()
            } else {
                me[..me.len().saturating_sub(1)].to_vec()
            };
            let mut rest = &text[at + kw.len()..];
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            if let Some(group) = rest.strip_prefix('{') {
                for head in group_heads(group) {
                    let mut p = base.clone();
                    p.push(head);
                    out.push(p);
                }
            } else {
                let (segs, _) = segments(rest);
                let mut p = base;
                p.extend(segs);
                out.push(p);
            }
        }
    }
    out
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<ModPath> = files.iter().map(|f| module_of(src, f)).collect();
    let mut g = Graph::new();
    for file in &files {
        let me = module_of(src, file);
        let text = code(&std::fs::read_to_string(file).unwrap());
        for target in references(&me, &text) {
            let common = me.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common >= me.len() || common >= target.len() {
                continue; // itself, an ancestor or a descendant
            }
            let a = me[..=common].to_vec();
            let b = target[..=common].to_vec();
            if modules.iter().any(|m| m.starts_with(&b)) {
                g.entry(a)
                    .or_default()
                    .entry(b)
                    .or_insert_with(|| file.clone());
            }
        }
    }
    g
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<ModPath>> {
    struct Tarjan<'g> {
        g: &'g Graph,
        index: BTreeMap<&'g ModPath, usize>,
        low: BTreeMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        on_stack: BTreeSet<&'g ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g ModPath) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.g.get(v).into_iter().flat_map(|e| e.keys()) {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    comp.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out
}

fn report(g: &Graph, comps: &[Vec<ModPath>]) -> String {
    let mut s = String::new();
    for comp in comps {
        s.push_str("cycle:\n");
        for a in comp {
            for (b, file) in &g[a] {
                if comp.contains(b) {
                    s.push_str(&format!(
                        "  {} -> {}  ({})\n",
                        a.join("::"),
                        b.join("::"),
                        file.display()
                    ));
                }
            }
        }
    }
    s
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    let mut failures = String::new();
    for krate in [
        "storage", "server", "ingest", "client", "vfs", "proto", "tests",
    ] {
        let src = workspace.join(krate).join("src");
        if !src.is_dir() {
            continue;
        }
        let g = graph(&src);
        checked += g.len();
        let comps = cycles(&g);
        if !comps.is_empty() {
            failures.push_str(&format!("{krate}/src:\n{}", report(&g, &comps)));
        }
    }
    assert!(
        checked > 50,
        "only {checked} modules with edges: is the walk right?"
    );
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn the_checker_finds_a_cycle_at_any_depth_and_through_groups() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n");
    write("a/mod.rs", "pub mod x;\npub mod y;\nuse crate::b::Thing;\n");
    write("a/x.rs", "use super::y::Y;\n");
    write(
        "a/y.rs",
        "// use super::x::X; (a comment is no dependency)\nfn f() { let _ = super::super::c::C; }\n",
    );
    write("b.rs", "use crate::{c::C, c::D};\n");
    write(
        "c.rs",
        "pub struct C;\n#[cfg(test)]\nmod tests { use crate::a::x; }\n",
    );
    let g = graph(src);
    assert_eq!(cycles(&g), Vec::<Vec<ModPath>>::new(), "{g:?}");

    // a::y → a::x closes a cycle inside `a`; c → a closes a → b → c → a (a::y → c).
    write(
        "a/y.rs",
        "use super::x::X;\nfn f() { let _ = super::super::c::C; }\n",
    );
    write("c.rs", "pub struct C;\nfn g() { crate::a::x::f(); }\n");
    let g = graph(src);
    let found = cycles(&g);
    let names: Vec<Vec<String>> = found
        .iter()
        .map(|c| c.iter().map(|m| m.join("::")).collect())
        .collect();
    assert!(
        names.contains(&vec!["a::x".to_string(), "a::y".to_string()]),
        "{names:?}"
    );
    assert!(
        names.contains(&vec!["a".to_string(), "b".to_string(), "c".to_string()]),
        "{names:?}"
    );
    assert!(report(&g, &found).contains("c -> a"));
}
