//! The docs stand alone: every repository path they name exists, and none
//! cites files users do not have.

use std::path::Path;

const ROOTS: [&str; 10] =
    ["docs/", "scripts/", "tests/", "pipeline/", "model/", "schemas/", "manifests/", "src/", "build-support/", ".ci/"];

/// Repository paths in `text`: runs of path characters starting with one of
/// [`ROOTS`], up to the first character that cannot be in a path.
fn paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for root in ROOTS {
        let mut from = 0;
        while let Some(i) = text[from..].find(root) {
            let start = from + i;
            from = start + root.len();
            // a path starts the word (not `.../docs/x` inside a longer path or URL)
            if start > 0 && !matches!(text.as_bytes()[start - 1], b' ' | b'`' | b'(' | b'\n' | b'[' | b'"' | b'\'') {
                continue;
            }
            let end = text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || "/._-".contains(c)))
                .map_or(text.len(), |e| start + e);
            let p = text[start..end].trim_end_matches(['.', '/']).to_string();
            // placeholders and globs (`docs/img/<name>`, `scripts/*.py`) stop at
            // the `<` or `*`; a bare root is not a path
            let next = text[end..].chars().next();
            if p.len() > root.len() && !matches!(next, Some('<' | '*' | '{')) {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn every_path_the_docs_name_exists_and_no_doc_cites_files_users_lack() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs: Vec<_> = std::fs::read_dir(repo.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.extend(["README.md", "schemas/README.md"].map(|f| repo.join(f)));
    let mut missing = Vec::new();
    let mut cited = Vec::new();
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        for p in paths(&text) {
            // frame manifests are outputs `mcsfau manifest build` writes there
            let output = p.starts_with("manifests/") && p.contains(".frames.");
            if !output && !repo.join(&p).exists() {
                missing.push(format!("{}: {p}", doc.strip_prefix(repo).unwrap().display()));
            }
        }
        for outside in ["SPEC.md", "DATA.md", "NOTES.md", "STYLE.md", "shared/"] {
            if text.contains(outside) {
                cited.push(format!("{}: {outside}", doc.strip_prefix(repo).unwrap().display()));
            }
        }
    }
    assert!(missing.is_empty(), "paths named in the docs that do not exist:\n{}", missing.join("\n"));
    assert!(cited.is_empty(), "docs citing files users do not have:\n{}", cited.join("\n"));
}

#[test]
fn the_path_finder_finds_paths_and_skips_placeholders() {
    let t = "see `docs/probe.md`, scripts/setup.sh and docs/img/<name>.png; not a/docs/x; RUN/model.safetensors";
    assert_eq!(paths(t), ["docs/probe.md", "scripts/setup.sh"]);
}

/// The shell blocks the docs mark `<!-- tested: tests/test_docs.rs runs this block -->`.
fn tested_blocks(text: &str) -> Vec<String> {
    const MARK: &str = "<!-- tested: tests/test_docs.rs runs this block -->";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(MARK) {
        rest = &rest[i + MARK.len()..];
        let open = rest.find("```").expect("a code block after the mark");
        let body = &rest[open + 3..];
        let body = &body[body.find('\n').unwrap() + 1..];
        let close = body.find("```").expect("the block closes");
        out.push(body[..close].to_string());
        rest = &body[close + 3..];
    }
    out
}

#[test]
fn the_docs_synthetic_examples_run_as_written() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = Path::new(env!("CARGO_BIN_EXE_mcsfau")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut ran = 0;
    for doc in ["docs/real-data.md", "docs/synth.md"] {
        for block in tested_blocks(&std::fs::read_to_string(repo.join(doc)).unwrap()) {
            // a fresh folder, outside the repository, as a user would run them
            let dir = tempfile::tempdir().unwrap();
            let o = std::process::Command::new("bash")
                .args(["-euo", "pipefail", "-c", &block])
                .current_dir(dir.path())
                .env("PATH", &path)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{doc}: the block\n{block}\nfailed:\n{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            ran += 1;
        }
    }
    assert_eq!(ran, 2, "both marked blocks ran");
}
