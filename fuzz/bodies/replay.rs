//! Replays a fuzz target's corpus (`fuzz/corpus/<target>/*`) through its
//! body: the regression test every crate runs on stable with `cargo test`.

use std::path::PathBuf;

/// Runs `body` on every file of the target's corpus; returns how many.
pub fn replay(target: &str, body: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    for f in &files {
        let data = std::fs::read(f).unwrap();
        // Name the input if it panics (the panic message is printed above).
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            panic!("{target}: input {} panicked", f.display());
        }
    }
    files.len()
}
