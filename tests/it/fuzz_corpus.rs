//! The fuzz targets' bodies (`usher::fuzzing`) over the committed corpus
//! and every crash input in `fuzz/`, as ordinary tests: CI has no
//! cargo-fuzz, and a crash once found must stay fixed.

use std::path::Path;

#[test]
fn every_fuzz_target_passes_its_corpus_and_crash_inputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, target) in usher::fuzzing::TARGETS {
        let source = root.join("fuzz_targets").join(format!("{name}.rs"));
        assert!(
            source.exists(),
            "fuzz/fuzz_targets/{name}.rs drives usher::fuzzing::{name}"
        );
        let mut ran = 0;
        for dir in ["corpus", "artifacts"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("corpus entry").path();
                if path.file_name().is_some_and(|n| n == ".gitkeep") {
                    continue;
                }
                let data = std::fs::read(&path).expect("read corpus file");
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name} panicked on {}", path.display());
                ran += 1;
            }
        }
        assert!(ran > 0, "fuzz/corpus/{name} holds no input");
    }
}
