//! The README's fenced blocks marked `<kind>-snippet=<name>`, read and run as a reader would.

use super::{TestServer, ROOT_TOKEN};

/// The body of the README's fenced block whose info string carries `marker`
/// (e.g. `tus-snippet=curl`).
pub fn readme_block(marker: &str) -> String {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README.md");
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("```") && line.split_whitespace().any(|w| w == marker) {
            let body: Vec<&str> = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .collect();
            return body.join("\n") + "\n";
        }
    }
    panic!("the README has no block marked {marker}")
}

/// Runs the block marked `marker` with `bash -euo pipefail` in a temp dir, `HOST` and `TOKEN`
/// (root's) set; returns its stdout, failing the test when it fails.
pub fn run_readme_block(server: &TestServer, marker: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &readme_block(marker)])
        .current_dir(dir.path())
        .env("HOST", server.url(""))
        .env("TOKEN", ROOT_TOKEN)
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "snippet {marker} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
