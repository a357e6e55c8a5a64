//! Seeded random mutations of real checkpoints (bytes, header fields, config keys): the loader never panics.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]
//!
//! The stable-Rust companion of the cargo-fuzz target in `fuzz/`. The default run is small
//! enough for the suite; `ENSI_MUTATIONS=200000 cargo test -p ensi-checkpoint --release
//! --test mutation` runs longer (the seed is `ENSI_MUTATION_SEED`, default 1).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use ensi_checkpoint::Checkpoint;
use serde_json::{Map, Value, json};

/// Mutations per run unless `ENSI_MUTATIONS` says otherwise.
const DEFAULT_MUTATIONS: u64 = 2000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A value of a random JSON type, biased towards what a header or config could plausibly hold.
fn random_value(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => json!(rng.next() as i64),
        1 => json!(rng.below(5) as i64 - 2),
        2 => json!(rng.below(300)),
        3 => json!(*rng.pick(&["U8", "BF16", "F16", "F32", "F64", "I64", "F4", "BOOL", "??"])),
        4 => json!([rng.below(40), rng.below(40)]),
        5 => json!([]),
        6 => json!([u64::MAX, rng.below(10)]),
        7 => json!(*rng.pick(&[
            "relu2", "silu", "gelu", "bitnet", "llama", "offline", "online"
        ])),
        _ => Value::Null,
    }
}

fn split(bytes: &[u8]) -> Option<(Map<String, Value>, &[u8])> {
    let len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header = serde_json::from_slice(bytes.get(8..8usize.checked_add(len)?)?).ok()?;
    Some((header, &bytes[8 + len..]))
}

fn join(header: &Map<String, Value>, data: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(header).unwrap_or_default();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

/// One random mutation of the weights file or the config.
fn mutate(rng: &mut Rng, weights: &mut Vec<u8>, config: &mut Map<String, Value>) {
    match rng.below(8) {
        // Flip random bytes anywhere.
        0 => {
            for _ in 0..=rng.below(4) {
                let at = rng.below(weights.len());
                weights[at] ^= 1 << rng.below(8);
            }
        }
        // Overwrite a byte of the JSON header with a structural character.
        1 => {
            if let Some((header, _)) = split(weights) {
                let len = serde_json::to_vec(&header).map_or(0, |h| h.len());
                let at = 8 + rng.below(len);
                if at < weights.len() {
                    weights[at] = *rng.pick(b"{}[]\",:0123456789-e ");
                }
            }
        }
        // Change one field of one tensor's header entry.
        2 | 3 => {
            if let Some((mut header, data)) = split(weights) {
                let names: Vec<String> = header.keys().cloned().collect();
                let name = rng.pick(&names).clone();
                let field = *rng.pick(&["dtype", "shape", "data_offsets"]);
                let value = random_value(rng);
                if let Some(Value::Object(entry)) = header.get_mut(&name) {
                    entry.insert(field.to_owned(), value);
                }
                *weights = join(&header, data);
            }
        }
        // Cut or extend the file.
        4 => {
            let len = rng.below(weights.len() + 16);
            weights.resize(len, rng.next() as u8);
        }
        // Overwrite a packed weight byte with code 3s, or any byte of the data section.
        5 => {
            if let Some((_, data)) = split(weights) {
                let (data_start, data_len) = (weights.len() - data.len(), data.len());
                if data_len > 0 {
                    let at = data_start + rng.below(data_len);
                    weights[at] = rng.next() as u8 | 0b11 << (2 * rng.below(4));
                }
            }
        }
        // Remove or change a config key, or a nested one.
        6 => {
            let keys: Vec<String> = config.keys().cloned().collect();
            let key = rng.pick(&keys).clone();
            if rng.below(3) == 0 {
                config.remove(&key);
            } else {
                config.insert(key, random_value(rng));
            }
        }
        _ => {
            let nested = *rng.pick(&["quantization_config", "rope_parameters"]);
            let inner = *rng.pick(&[
                "linear_class",
                "quantization_mode",
                "quant_method",
                "rope_theta",
                "use_rms_norm",
            ]);
            let value = random_value(rng);
            match config.get_mut(nested) {
                Some(Value::Object(object)) => {
                    object.insert(inner.to_owned(), value);
                }
                _ => {
                    config.insert(nested.to_owned(), json!({ inner: value }));
                }
            }
        }
    }
}

/// Opens the folder and, if it loads, reads every tensor the way later stages do; returns
/// the error variant's name, or "opened".
fn open_and_touch(dir: &Path) -> String {
    let checkpoint = match Checkpoint::open(dir) {
        Ok(checkpoint) => checkpoint,
        Err(error) => {
            let debug = format!("{error:?}");
            return debug
                .split([' ', '{', '('])
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };
    for row in 0..checkpoint.embedding().rows() {
        checkpoint.embedding().row(row);
    }
    for layer in checkpoint.layers() {
        for projection in ensi_checkpoint::Projection::ALL {
            let matrix = layer.projection(projection);
            for row in 0..matrix.rows() {
                matrix.row(row);
            }
            assert!(matrix.effective_scale().is_finite());
        }
    }
    checkpoint.final_norm().to_vec();
    "opened".to_owned()
}

#[test]
fn random_mutations_never_panic() {
    let mutations = env_u64("ENSI_MUTATIONS", DEFAULT_MUTATIONS);
    let seed = env_u64("ENSI_MUTATION_SEED", 1);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temporary folder");
    let sources: Vec<(Vec<u8>, Map<String, Value>)> = ["dev-h32", "dev-h64-online"]
        .iter()
        .map(|name| {
            let weights = std::fs::read(fixture(name).join("model.safetensors")).expect("weights");
            let config = std::fs::read(fixture(name).join("config.json")).expect("config");
            (
                weights,
                serde_json::from_slice(&config).expect("config JSON"),
            )
        })
        .collect();

    let mut outcomes = std::collections::BTreeMap::<String, u64>::new();
    let started = std::time::Instant::now();
    for iteration in 0..mutations {
        let (weights, config) = rng.pick(&sources);
        let (mut weights, mut config) = (weights.clone(), config.clone());
        for _ in 0..=rng.below(3) {
            mutate(&mut rng, &mut weights, &mut config);
        }
        std::fs::write(dir.path().join("model.safetensors"), &weights).expect("write weights");
        let config = serde_json::to_vec(&config).expect("config JSON");
        std::fs::write(dir.path().join("config.json"), config).expect("write config");
        let outcome = catch_unwind(AssertUnwindSafe(|| open_and_touch(dir.path())));
        let Ok(outcome) = outcome else {
            panic!("seed {seed}, iteration {iteration}: the loader panicked");
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!(
        "{mutations} mutations (seed {seed}) in {:.1?}: {outcomes:?}",
        started.elapsed()
    );
}
