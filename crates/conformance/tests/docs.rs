//! docs/conformance.md lists every case of the catalogue, with its
//! description and clause, and no case that does not exist.

use conformance::cases::catalogue;
use std::collections::BTreeSet;

#[test]
fn docs_list_every_case() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/conformance.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let cases = catalogue();
    for c in &cases {
        let row = format!(
            "| `{}` | {} | {} |",
            c.id,
            c.description.replace('|', "\\|"),
            c.clause.replace('|', "\\|")
        );
        assert!(
            doc.contains(&row),
            "docs/conformance.md lacks or misstates:\n{row}"
        );
    }
    let list = doc.split("## All cases").nth(1).unwrap_or("");
    let documented: BTreeSet<&str> = list
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let real: BTreeSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(documented, real);
    assert!(doc.contains(&format!("It runs {} cases", cases.len())));
}
