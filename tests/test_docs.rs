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
