//! Helpers shared by the integration tests.

use std::path::Path;

use serde_json::Value;

/// One case of the fixture corpus.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) op: String,
    pub(crate) input: Value,
    pub(crate) expect: Value,
}

/// Every case of `tests/fixtures/*.jsonl`, in file order.
pub(crate) fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        for line in std::fs::read_to_string(&path)
            .expect("fixture file")
            .lines()
        {
            let case: Value = serde_json::from_str(line).expect("fixture line");
            cases.push(Case {
                name: case["name"].as_str().expect("name").to_owned(),
                op: case["op"].as_str().expect("op").to_owned(),
                input: case["input"].clone(),
                expect: case["expect"].clone(),
            });
        }
    }
    cases
}
