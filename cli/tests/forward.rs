//! `ensi forward` as a user runs it: output files, messages and exit codes.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::SafeTensors;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn ensi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ensi"))
        .args(args)
        .output()
        .expect("ensi runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The f32 values of tensor `name` of a safetensors file, widened.
fn values(file: &SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f64>) {
    let view = file
        .tensor(name)
        .unwrap_or_else(|_| panic!("tensor {name}"));
    let values = view
        .data()
        .chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
        .collect();
    (view.shape().to_vec(), values)
}

/// Files in `dir`, to show that a failed run leaves no temporary file behind.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn writes_hidden_logits_and_layers_that_match_the_reference() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let out = dir.path().join("out.safetensors");
    let model = fixture("dev-h64");
    let result = ensi(&[
        "forward",
        model.to_str().expect("utf-8 path"),
        "--tokens",
        "91 101 123 28 27 96 17 30",
        "--attention",
        "sigmoid",
        "--act-quant",
        "off",
        "--layers",
        "-o",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(result.status.success(), "{}", stderr(&result));
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        stdout.contains("8 tokens, sigmoid attention, activation quantization off"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "layer0 [1, 8, 64], layer1 [1, 8, 64], hidden [1, 8, 64], logits [1, 8, 128]"
        ),
        "{stdout}"
    );

    let written = std::fs::read(&out).expect("output");
    let written = SafeTensors::deserialize(&written).expect("safetensors");
    let reference = std::fs::read(model.join("reference.safetensors")).expect("reference");
    let reference = SafeTensors::deserialize(&reference).expect("safetensors");
    for (ours, theirs) in [
        ("hidden", "hidden.sigmoid.noaq"),
        ("logits", "logits.sigmoid.noaq"),
        ("layer0", "layer0.sigmoid.noaq"),
    ] {
        let (shape, actual) = values(&written, ours);
        let (reference_shape, expected) = values(&reference, theirs);
        assert_eq!(shape, reference_shape, "{ours}");
        let error = actual
            .iter()
            .zip(&expected)
            .map(|(a, e)| (a - e).abs())
            .fold(0.0, f64::max);
        let scale = expected.iter().map(|e| e.abs()).fold(0.0, f64::max);
        assert!(error <= 1e-4 * scale, "{ours}: {error} vs max|ref| {scale}");
    }
    assert_eq!(files(dir.path()), ["out.safetensors"]);
}

#[test]
fn bad_input_gives_a_message_and_an_exit_code_and_keeps_the_old_output() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let out = dir.path().join("out.safetensors");
    std::fs::write(&out, b"previous result").expect("sentinel");
    let out_arg = out.to_str().expect("utf-8 path");
    let model = fixture("dev-h64");
    let model_arg = model.to_str().expect("utf-8 path");
    let missing = dir.path().join("missing");

    let cases: [(Vec<&str>, i32, String); 4] = [
        (
            vec!["forward", model_arg, "--tokens", "1 128", "-o", out_arg],
            65,
            "error: token 128 at position 1 is not below the vocabulary size 128\n".to_owned(),
        ),
        (
            vec![
                "forward",
                missing.to_str().expect("utf-8"),
                "--tokens",
                "1",
                "-o",
                out_arg,
            ],
            66,
            format!(
                "error: {}: cannot read file\n  caused by: No such file or directory (os error 2)\n",
                missing.join("config.json").display()
            ),
        ),
        (
            vec!["forward", model_arg, "--tokens", "1 -2", "-o", out_arg],
            2,
            "error: invalid value '1 -2' for '--tokens <TOKENS>': `-2` is not a token id\n\n\
             For more information, try '--help'.\n"
                .to_owned(),
        ),
        (
            vec!["forward", model_arg, "--tokens", " , ", "-o", out_arg],
            2,
            "error: invalid value ' , ' for '--tokens <TOKENS>': no token ids given\n\n\
             For more information, try '--help'.\n"
                .to_owned(),
        ),
    ];
    for (args, code, message) in cases {
        let result = ensi(&args);
        assert_eq!(
            result.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr(&result)
        );
        assert_eq!(stderr(&result), message, "{args:?}");
        assert_eq!(
            std::fs::read(&out).expect("output"),
            b"previous result",
            "{args:?}"
        );
        assert_eq!(files(dir.path()), ["out.safetensors"], "{args:?}");
    }
}

#[test]
fn a_malformed_checkpoint_is_a_data_error() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let model = dir.path().join("model");
    std::fs::create_dir(&model).expect("model folder");
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("dev-h32").join(file), model.join(file)).expect("copy");
    }
    let weights = std::fs::read(model.join("model.safetensors")).expect("weights");
    std::fs::write(
        model.join("model.safetensors"),
        &weights[..weights.len() / 2],
    )
    .expect("truncate");
    let out = dir.path().join("out.safetensors");
    let result = ensi(&[
        "forward",
        model.to_str().expect("utf-8"),
        "--tokens",
        "1 2",
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(result.status.code(), Some(65));
    let message = stderr(&result);
    let prefix = format!(
        "error: {}: truncated file: tensor `",
        model.join("model.safetensors").display()
    );
    assert!(message.starts_with(&prefix), "{message}");
    assert!(!out.exists());
}

#[test]
fn an_unwritable_output_is_reported_with_exit_code_73() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let out = dir.path().join("no-such-folder").join("out.safetensors");
    let model = fixture("dev-h32");
    let result = ensi(&[
        "forward",
        model.to_str().expect("utf-8"),
        "--tokens",
        "1 2",
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(result.status.code(), Some(73));
    let expected = format!(
        "error: {}: cannot write the output file\n  caused by: ",
        out.display()
    );
    assert!(
        stderr(&result).starts_with(&expected),
        "{}",
        stderr(&result)
    );
}
