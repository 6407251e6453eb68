//! `schemas/README.md` documents every column and metadata key exactly as the
//! code defines them: its generated tables are regenerated here and compared.
//! On a mismatch the test prints the expected table; `MCSFAU_BLESS=1`
//! rewrites the README in place.

use std::path::Path;

fn block(readme: &str, name: &str) -> Option<(usize, usize)> {
    let begin = format!("<!-- BEGIN GENERATED: {name} -->\n");
    let end = format!("<!-- END GENERATED: {name} -->");
    let start = readme.find(&begin)? + begin.len();
    let stop = start + readme[start..].find(&end)?;
    Some((start, stop))
}

#[test]
fn readme_tables_match_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let mut readme = std::fs::read_to_string(&path).expect("schemas/README.md");
    let bless = std::env::var_os("MCSFAU_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, expected) in
        [("columns", schemas::schema::columns_markdown()), ("meta", schemas::schema::meta_keys_markdown())]
    {
        let (start, stop) = block(&readme, name).unwrap_or_else(|| panic!("README lacks the `{name}` markers"));
        if readme[start..stop] != expected {
            if bless {
                readme.replace_range(start..stop, &expected);
            } else {
                stale.push(format!(
                    "The `{name}` table of schemas/README.md is stale. Put this between its markers \
                     (or run with MCSFAU_BLESS=1):\n\n{expected}"
                ));
            }
        }
    }
    if bless {
        std::fs::write(&path, readme).expect("rewrite README.md");
    }
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}

#[test]
fn readme_names_every_column_and_key() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for c in schemas::columns() {
        assert!(readme.contains(&format!("| `{}` |", c.name)), "column {} undocumented", c.name);
    }
    for (k, _) in schemas::schema::meta_keys() {
        assert!(readme.contains(&format!("| `{k}` |")), "key {k} undocumented");
    }
}
