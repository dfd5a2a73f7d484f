//! A fresh clone is all a user has: nothing in the repository may point at a file outside it, and
//! the project's own description of the ported tester (`specs/lab-tester.md`) covers every test.

use std::path::{Path, PathBuf};

/// The repository's text files: the README, the changelog, the specs and the packages' sources and READMEs.
fn text_files(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("README.md"), root.join("CHANGELOG.md")];
    let mut dirs: Vec<PathBuf> = ["specs", "model", "impl", "conformance", ".ci"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    dirs.push(path);
                }
            } else if path
                .extension()
                .is_some_and(|e| ["rs", "md", "toml", "js"].contains(&e.to_str().unwrap_or("")))
                || path.file_name().is_some_and(|n| n == "run")
            {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn nothing_refers_to_a_file_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let files = text_files(root);
    assert!(files.len() > 50, "{} files", files.len());
    // Split so that this file does not match itself.
    let outside = [concat!("lab2-tester", "-spec"), concat!("../", "shared")];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for needle in outside {
            assert!(
                !text.contains(needle),
                "{} refers to {needle}, outside the repository",
                file.display()
            );
        }
    }
}

#[test]
fn the_tester_description_has_a_section_for_every_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let spec = std::fs::read_to_string(root.join("specs/lab-tester.md")).unwrap();
    let spec3 = std::fs::read_to_string(root.join("specs/lab3-tester.md")).unwrap();
    for t in conformance::lab::TESTS {
        let heading = format!("\n### {}\n", t.go_name);
        let spec = if t.part.starts_with('3') {
            &spec3
        } else {
            &spec
        };
        assert!(spec.contains(&heading), "no section for {}", t.go_name);
    }
    for section in [
        "\n## Harness\n",
        "\n## Network\n",
        "\n## Differences from Go\n",
    ] {
        assert!(spec.contains(section), "no section {section:?}");
    }
}
