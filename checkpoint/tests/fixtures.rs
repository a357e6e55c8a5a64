//! The loader on the Hugging Face fixtures: every checkpoint opens, with the layout its config implies.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::PathBuf;

use ensi_checkpoint::{Checkpoint, LmHead, Projection, Quantization, WeightOrigin};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

#[test]
fn every_fixture_opens_with_the_shapes_of_its_config() -> Result<(), ensi_checkpoint::Error> {
    for name in ["dev-h32", "dev-h64", "dev-h64-online", "dev-h128"] {
        let checkpoint = Checkpoint::open(fixture(name))?;
        let config = checkpoint.config();
        assert_eq!(config.lm_head, LmHead::Tied, "{name}");
        assert_eq!(checkpoint.layers().len(), config.num_layers, "{name}");
        assert_eq!(checkpoint.embedding().rows(), config.vocab_size);
        assert_eq!(checkpoint.embedding().cols(), config.hidden_size);
        let packed = config.quantization.is_packed();
        assert_eq!(packed, name != "dev-h64-online", "{name}");
        for layer in checkpoint.layers() {
            for projection in Projection::ALL {
                let matrix = layer.projection(projection);
                assert_eq!(
                    (matrix.rows(), matrix.cols()),
                    projection.shape(config),
                    "{name}"
                );
                // Packed weights are read in place; master weights are ternarised into a buffer.
                assert_eq!(matrix.is_mapped(), packed, "{}", matrix.name());
                let origin = if packed {
                    WeightOrigin::Packed
                } else {
                    WeightOrigin::Ternarized
                };
                assert_eq!(matrix.origin(), origin);
                assert!(matrix.effective_scale() > 0.0);
                assert_eq!(
                    checkpoint.ternary(matrix.name()).map(|m| m.name()),
                    Some(matrix.name())
                );
            }
        }
    }
    Ok(())
}

#[test]
fn the_online_fixture_is_ternarised_with_absmean() -> Result<(), Box<dyn std::error::Error>> {
    let dir = fixture("dev-h64-online");
    let checkpoint = Checkpoint::open(&dir)?;
    assert_eq!(checkpoint.config().quantization, Quantization::Online);
    // Recompute absmean in f64 from the raw BF16 master weights, through the safetensors crate.
    let bytes = std::fs::read(dir.join("model.safetensors"))?;
    let file = safetensors::SafeTensors::deserialize(&bytes)?;
    let mut checked = 0;
    for layer in checkpoint.layers() {
        for projection in Projection::ALL {
            let matrix = layer.projection(projection);
            let master: Vec<f64> = file
                .tensor(matrix.name())?
                .data()
                .chunks_exact(2)
                .map(|b| f64::from(half::bf16::from_le_bytes([b[0], b[1]]).to_f32()))
                .collect();
            let beta = master.iter().map(|w| w.abs()).sum::<f64>() / master.len() as f64;
            let relative = (matrix.effective_scale() - beta).abs() / beta;
            assert!(
                relative < 1e-6,
                "{}: beta {beta} vs {}",
                matrix.name(),
                matrix.effective_scale()
            );
            for (index, w) in master.iter().enumerate() {
                let ratio = w / beta;
                // Away from rounding ties, f32 and f64 arithmetic agree on the code.
                if (ratio.abs().fract() - 0.5).abs() > 1e-4 {
                    let expected = ratio.round().clamp(-1.0, 1.0) as i8;
                    let (row, col) = (index / matrix.cols(), index % matrix.cols());
                    assert_eq!(
                        matrix.entry(row, col),
                        expected,
                        "{} ({row}, {col})",
                        matrix.name()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0);
    Ok(())
}

#[test]
fn digests_are_stable_and_tell_tensors_apart() -> Result<(), ensi_checkpoint::Error> {
    for name in ["dev-h64", "dev-h64-online"] {
        let first = Checkpoint::open(fixture(name))?;
        let again = Checkpoint::open(fixture(name))?;
        let layer = &first.layers()[0];
        let q = layer.projection(Projection::Q).digest();
        assert_eq!(
            q,
            again.layers()[0].projection(Projection::Q).digest(),
            "{name}"
        );
        assert_ne!(q, layer.projection(Projection::K).digest(), "{name}");
        assert_eq!(
            first.final_norm().digest(),
            again.final_norm().digest(),
            "{name}"
        );
        assert_ne!(
            first.final_norm().digest(),
            layer.norm(ensi_checkpoint::Norm::Input).digest()
        );
        assert_eq!(
            first.embedding().digest(),
            again.embedding().digest(),
            "{name}"
        );
    }
    Ok(())
}

#[test]
fn config_digests_tell_models_apart() -> Result<(), ensi_checkpoint::Error> {
    let a = Checkpoint::open(fixture("dev-h64"))?.config().digest();
    let b = Checkpoint::open(fixture("dev-h64-online"))?
        .config()
        .digest();
    assert_eq!(a, Checkpoint::open(fixture("dev-h64"))?.config().digest());
    assert_ne!(a, b);
    Ok(())
}
