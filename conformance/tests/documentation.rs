//! The documentation a reader meets first: every relative link in the repository's Markdown leads to a
//! file that exists and, with a `#fragment`, to a heading in it; every package has a README linked from
//! its manifest and the metadata crates.io shows; the root README stays a short map.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The workspace's packages, by directory.
const PACKAGES: [&str; 6] = [
    "model",
    "impl",
    "impl/kv",
    "impl/node",
    "impl/trace",
    "conformance",
];

/// Every Markdown file of the repository (outside `target` and hidden directories).
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    dirs.push(path);
                }
            } else if name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Lines outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced && !line.starts_with("    ")
    })
}

/// The anchors GitHub gives a file's headings: lower case, spaces to hyphens, punctuation but `-` and
/// `_` dropped, and `-1`, `-2`, ... after a repeated one.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in prose(text) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while out.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        out.insert(unique);
    }
    out
}

/// The targets of a text's relative links, `[text](target)`.
fn relative_links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") && !target.is_empty() {
                out.push(target.to_string());
            }
            rest = &rest[end..];
        }
    }
    out
}

/// What is wrong with the relative links of `file`, whose text is `text`.
fn broken_links(file: &Path, text: &str) -> Vec<String> {
    let mut broken = Vec::new();
    for link in relative_links(text) {
        let (path, fragment) = match link.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment)),
            None => (link.as_str(), None),
        };
        let target = if path.is_empty() {
            file.to_path_buf()
        } else {
            file.parent().unwrap().join(path)
        };
        if !target.exists() {
            broken.push(format!("{link}: no file {}", target.display()));
            continue;
        }
        if let Some(fragment) = fragment {
            let target_text = if path.is_empty() {
                text.to_string()
            } else {
                std::fs::read_to_string(&target).unwrap_or_default()
            };
            if !anchors(&target_text).contains(fragment) {
                broken.push(format!("{link}: no heading #{fragment}"));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_markdown_resolves() {
    let files = markdown_files(root());
    assert!(files.len() >= 10, "{files:?}");
    let mut broken = Vec::new();
    let mut links = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        links += relative_links(&text).len();
        for b in broken_links(file, &text) {
            broken.push(format!(
                "{}: {b}",
                file.strip_prefix(root()).unwrap().display()
            ));
        }
    }
    assert!(links >= 40, "only {links} relative links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The check above bites: a missing file, a missing heading, and a repeated heading's second anchor.
#[test]
fn the_link_check_rejects_a_missing_file_or_heading() {
    let file = root().join("README.md");
    let ok = "# Top\n\n## A `code`, title: here\n\n## Same\n\n## Same\n\n[a](#a-code-title-here) [b](#same-1) [c](model/README.md#figures)\n";
    assert!(
        broken_links(&file, ok).is_empty(),
        "{:?}",
        broken_links(&file, ok)
    );
    for bad in [
        "[x](no/such/file.md)",
        "# T\n[x](#same-1)",
        "[x](model/README.md#no-such-heading)",
        "[x](#top)",
    ] {
        assert_eq!(broken_links(&file, bad).len(), 1, "{bad} passed");
    }
    // Links in code are not links.
    assert!(broken_links(&file, "```\n[x](nowhere)\n```\n    [y](nowhere)\n").is_empty());
}

/// A field of a manifest's `[package]` table, as written (`name = value`).
fn field<'a>(manifest: &'a str, name: &str) -> Option<&'a str> {
    manifest
        .lines()
        .take_while(|l| !l.starts_with('[') || l.starts_with("[package]"))
        .find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == name).then(|| value.trim())
        })
}

/// What a package's manifest lacks of the metadata crates.io shows.
fn missing_metadata(dir: &Path, manifest: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for name in ["description", "keywords", "categories"] {
        if field(manifest, name).is_none_or(|v| v.len() < 5) {
            missing.push(name.to_string());
        }
    }
    if field(manifest, "license.workspace") != Some("true") && field(manifest, "license").is_none()
    {
        missing.push("license".to_string());
    }
    match field(manifest, "readme") {
        Some(readme) => {
            let readme = readme.trim_matches('"');
            if !dir.join(readme).is_file() {
                missing.push(format!("readme {readme} (no such file)"));
            }
        }
        None => missing.push("readme".to_string()),
    }
    missing
}

#[test]
fn every_package_has_a_readme_and_its_metadata() {
    for dir in PACKAGES {
        let dir = root().join(dir);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let missing = missing_metadata(&dir, &manifest);
        assert!(missing.is_empty(), "{}: no {missing:?}", dir.display());
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(readme.starts_with("# "), "{}: no title", dir.display());
    }
    // Every member of the workspace is one of them.
    let workspace = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members = workspace
        .lines()
        .find_map(|l| l.strip_prefix("members = "))
        .unwrap_or_default();
    for dir in PACKAGES {
        assert!(
            members.contains(&format!("\"{dir}\"")),
            "{dir} not a member"
        );
    }
    assert_eq!(
        members.matches('"').count(),
        2 * PACKAGES.len(),
        "{members}"
    );
}

#[test]
fn the_metadata_check_rejects_what_is_missing() {
    let dir = root().join("model");
    let full = "[package]\nname = \"x\"\nlicense.workspace = true\ndescription = \"A thing of use\"\nreadme = \"README.md\"\nkeywords = [\"raft\"]\ncategories = [\"algorithms\"]\n";
    assert!(missing_metadata(&dir, full).is_empty());
    for (drop, what) in [
        ("license.workspace = true\n", "license"),
        ("readme = \"README.md\"\n", "readme"),
        ("keywords = [\"raft\"]\n", "keywords"),
        ("categories = [\"algorithms\"]\n", "categories"),
        ("description = \"A thing of use\"\n", "description"),
    ] {
        let manifest = full.replace(drop, "");
        assert_eq!(missing_metadata(&dir, &manifest), vec![what.to_string()]);
    }
    let elsewhere = full.replace("README.md", "NOWHERE.md");
    assert_eq!(missing_metadata(&dir, &elsewhere).len(), 1);
    // A field of another table is not the package's.
    let in_dependencies =
        full.replace("keywords = [\"raft\"]\n", "") + "[dependencies]\nkeywords = [\"x\"]\n";
    assert_eq!(
        missing_metadata(&dir, &in_dependencies),
        vec!["keywords".to_string()]
    );
}

/// The root README is a map: it points to the crates' READMEs, which hold the detail.
#[test]
fn the_root_readme_is_a_short_map() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines <= 200, "the root README has {lines} lines");
    for dir in PACKAGES {
        assert!(
            readme.contains(&format!("({dir}/README.md")),
            "the root README does not link {dir}/README.md"
        );
    }
}
