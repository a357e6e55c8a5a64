//! The README's main-job command is the one CI runs (`.ci/main-job`), character for character.

use std::path::Path;

use anyhow::Context;

#[test]
fn the_readme_main_job_is_the_ci_main_job() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    let main_job = std::fs::read_to_string(root.join(".ci/main-job"))?;
    // The first line of the first `sh` block.
    let command = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|block| block.lines().next())
        .context("README.md has no ```sh block")?;
    anyhow::ensure!(
        command.starts_with("cargo run --release -- run "),
        "unexpected main job: {command}"
    );
    anyhow::ensure!(
        main_job.lines().any(|line| line == command),
        ".ci/main-job does not run the README's command `{command}`"
    );
    Ok(())
}
