//! A clone of the repository is all a user has: no tracked file may read, include or
//! link a path outside it. The development machines have reference material beside the
//! checkout; anything that reaches for it builds there and fails everywhere else, so this
//! test fails first, naming the file and line. Read in `docs/testing.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root, at run time when the runner says (a target dir shared between
/// checkouts may run a test binary compiled in another one).
fn workspace_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .expect("tests/ sits in the workspace")
        .into()
}

/// Every tracked file, relative to the root: `git ls-files`, or every file but `.git`
/// and `target` when the source did not come with git (an unpacked archive).
fn tracked_files(root: &Path) -> Vec<PathBuf> {
    let git = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output();
    if let Ok(out) = git
        && out.status.success()
    {
        return out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
            .collect();
    }
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&dir)).expect("readable source tree") {
            let entry = entry.expect("readable entry");
            let rel = dir.join(entry.file_name());
            if entry.file_type().expect("file type").is_dir() {
                if !matches!(entry.file_name().to_str(), Some(".git" | "target")) {
                    dirs.push(rel);
                }
            } else {
                files.push(rel);
            }
        }
    }
    files
}

/// The directory of the package `file` belongs to (its nearest ancestor holding a
/// `Cargo.toml`), relative to the root: what `CARGO_MANIFEST_DIR` names in its code.
fn package_dir(root: &Path, file: &Path) -> PathBuf {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if root.join(d).join("Cargo.toml").is_file() {
            return d.into();
        }
        dir = d.parent();
    }
    PathBuf::new()
}

/// Whether `path`, taken relative to `base` (both relative to the root), leaves the root.
fn climbs_out(base: &Path, path: &str) -> bool {
    let mut depth = base.components().count();
    for part in path.split('/') {
        match part {
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            "" | "." => {}
            _ => depth += 1,
        }
    }
    false
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-/~+".contains(c)
}

/// What in `text` (the file `file` of the package in `package`, both relative to the
/// root) reads or names a path outside the repository, as `file:line: why` lines.
fn escapes(file: &Path, package: &Path, text: &str) -> Vec<String> {
    // The reference folder of the development machines, by name, however reached. Built
    // here so this file does not name it.
    let reference: Vec<String> = ["samples", "schemas", "README.md", "STYLE.md"]
        .iter()
        .map(|leaf| format!("{}/{leaf}", "shared"))
        .collect();
    let here = file.parent().unwrap_or(Path::new(""));
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("{}:{}", file.display(), n + 1);
        for name in &reference {
            if line.contains(name.as_str()) {
                found.push(format!(
                    "{at}: names `{name}`, reference material beside the checkout"
                ));
            }
        }
        // Relative paths: `include_str!`, `#[path]` and Markdown links are relative to
        // the file; `concat!(env!("CARGO_MANIFEST_DIR"), "/../x")` and the like to its
        // package.
        let by_package = line.contains("CARGO_MANIFEST_DIR") || line.contains("manifest_dir");
        for token in line.split(|c| !is_path_char(c)) {
            // A path that climbs and names nothing (`..`, a Rust range, `$(dirname "$0")/..`)
            // reads nothing.
            let names_something = token
                .split('/')
                .any(|part| !matches!(part, "" | "." | ".."));
            if !token.contains("..") || !names_something {
                continue;
            }
            let (base, path) = match token.strip_prefix('/') {
                Some(rest) if rest.starts_with("..") => (package, rest),
                _ if by_package => (package, token),
                _ => (here, token),
            };
            if climbs_out(base, path) {
                found.push(format!(
                    "{at}: `{token}` (from {}) leads outside the repository",
                    if base.as_os_str().is_empty() {
                        "the root".to_string()
                    } else {
                        format!("{}/", base.display())
                    }
                ));
            }
        }
    }
    found
}

#[test]
fn no_tracked_file_reaches_outside_the_repository() {
    let root = workspace_root();
    let files = tracked_files(&root);
    assert!(
        files.iter().any(|f| f == Path::new("Cargo.toml")),
        "the listing of {} holds the workspace's Cargo.toml",
        root.display()
    );
    let mut found = Vec::new();
    // This file's own examples of ways out are data for the check, not paths it reads.
    let this_file = Path::new(file!());
    for file in files
        .iter()
        .filter(|f| !(f.ends_with(this_file) || this_file.ends_with(f)))
    {
        // Binary files (and files deleted but not yet staged) hold no paths to read.
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue;
        };
        let package = package_dir(&root, file);
        found.extend(escapes(file, &package, &text));
    }
    assert!(
        found.is_empty(),
        "tracked files reach outside the repository; copy what they use into it \
         (tests/fixtures/, docs/) and point there:\n{}",
        found.join("\n")
    );
}

/// The relative targets of the Markdown links in `text`: `[text](target)`, without any
/// `#anchor`; web, mail and in-page links left out.
fn link_targets(text: &str) -> Vec<(usize, &str)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = rest[..end].split('#').next().unwrap_or("").trim();
            rest = &rest[end..];
            if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
                found.push((n + 1, target));
            }
        }
    }
    found
}

/// `path` taken relative to `base` without `.`/`..`, or `None` when it leaves the root.
fn resolve(base: &Path, path: &str) -> Option<PathBuf> {
    let mut parts: Vec<&str> = base.iter().filter_map(|p| p.to_str()).collect();
    for part in path.split('/') {
        match part {
            ".." => {
                parts.pop()?;
            }
            "" | "." => {}
            other => parts.push(other),
        }
    }
    Some(parts.iter().collect())
}

#[test]
fn every_markdown_link_leads_to_a_tracked_file() {
    let root = workspace_root();
    let files = tracked_files(&root);
    let exists = |p: &Path| files.iter().any(|f| f == p || f.starts_with(p));
    let mut broken = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "md"))
    {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue;
        };
        let here = file.parent().unwrap_or(Path::new(""));
        for (line, target) in link_targets(&text) {
            if !resolve(here, target).is_some_and(|p| exists(&p)) {
                broken.push(format!("{}:{line}: ({target})", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "Markdown links to files the repository does not have:\n{}",
        broken.join("\n")
    );
}

#[test]
fn links_are_read_as_written() {
    let text = "see [a](../../docs/a.md#part), [web](https://x.org/a) and [b](b.md)\n[c](#here)";
    assert_eq!(link_targets(text), [(1, "../../docs/a.md"), (1, "b.md")]);
    assert_eq!(
        resolve(Path::new("plugins/critical"), "../../docs/a.md"),
        Some(PathBuf::from("docs/a.md"))
    );
    assert_eq!(resolve(Path::new("plugins"), "../../a.md"), None);
}

#[test]
fn the_check_sees_every_way_out() {
    let check =
        |file: &str, package: &str, text: &str| escapes(Path::new(file), Path::new(package), text);
    // What this repository once did, each way.
    assert_eq!(
        check(
            "tests/src/sim/scaleway.rs",
            "tests",
            r#"include_str!(concat!("../../../../data/", $file))"#
        )
        .len(),
        1
    );
    assert_eq!(
        check(
            "plugins/scaleway/src/records.rs",
            "plugins/scaleway",
            r#"let path = format!("{}/../../../data/{file}", manifest_dir());"#
        )
        .len(),
        1
    );
    assert_eq!(
        check(
            "plugins/critical/README.md",
            "plugins/critical",
            "Reads [Critical](../../../schemas/critical.md)'s database"
        )
        .len(),
        1
    );
    // The reference folder by name, even where no relative path leads to it.
    let named = format!("see `/home/me/{}/README.md`", "shared");
    assert_eq!(check("xtask/src/arcadedb.rs", "xtask", &named).len(), 1);
    // And what stays inside is left alone.
    for (file, package, text) in [
        (
            "tests/src/sim/scaleway.rs",
            "tests",
            r#"include_str!(concat!("../../fixtures/scaleway/", $file))"#,
        ),
        (
            "plugins/scaleway/src/records.rs",
            "plugins/scaleway",
            r#"format!("{}/../../tests/fixtures/scaleway/{file}", manifest_dir())"#,
        ),
        (
            "tests/src/bin/bench_critical.rs",
            "tests",
            r#"#[path = "../../../plugins/critical/src/effective.rs"]"#,
        ),
        (
            "docs/providers/critical.md",
            "",
            "as [the README](../../README.md) says; ranges 1..10",
        ),
        ("README.md", "", "with `Request::get(..)` and `prop(..)`"),
        (".ci/run", "", r#"cd "$(dirname "$0")/..""#),
    ] {
        assert_eq!(check(file, package, text), Vec::<String>::new(), "{text}");
    }
}
