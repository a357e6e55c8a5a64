//! Malformed checkpoints, built byte by byte in temporary folders: each gives its exact error message.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::{Path, PathBuf};

use ensi_checkpoint::synth::{SynthData, SynthSpec, SynthTensor, write_config, write_safetensors};
use ensi_checkpoint::{Checkpoint, pack_ternary};
use safetensors::Dtype;
use serde_json::{Map, Value, json};
use tempfile::TempDir;

/// A tiny valid checkpoint (hidden 8, intermediate 16, 1 layer, 2 heads / 1 KV head, vocab 16)
/// that a test breaks in one place before writing it.
struct Case {
    dir: TempDir,
    config: Value,
    tensors: Vec<SynthTensor>,
}

impl Case {
    fn new() -> Self {
        Self::from_spec(&SynthSpec::tiny())
    }

    fn from_spec(spec: &SynthSpec) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary folder"),
            config: spec.config_json(),
            tensors: spec.tensors(),
        }
    }

    fn weights(&self) -> PathBuf {
        self.dir.path().join("model.safetensors")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// Sets (or with `Value::Null`, removes) a top-level config key.
    fn set(&mut self, key: &str, value: Value) -> &mut Self {
        let object = self.config.as_object_mut().expect("config object");
        if value.is_null() {
            object.remove(key);
        } else {
            object.insert(key.to_owned(), value);
        }
        self
    }

    fn tensor(&mut self, name: &str) -> &mut SynthTensor {
        self.tensors
            .iter_mut()
            .find(|tensor| tensor.name == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
    }

    fn remove(&mut self, name: &str) -> &mut Self {
        self.tensors.retain(|tensor| tensor.name != name);
        self
    }

    fn write(&self) {
        write_config(self.dir.path(), &self.config).expect("write config");
        write_safetensors(&self.weights(), &self.tensors, 1).expect("write weights");
    }

    /// Writes the case and returns the message of the error opening it.
    fn error(&self) -> String {
        self.write();
        self.reopen_error()
    }

    /// The message of the error opening the folder as it is on disk.
    fn reopen_error(&self) -> String {
        match Checkpoint::open(self.dir.path()) {
            Ok(_) => panic!("the malformed checkpoint opened"),
            Err(error) => error.to_string(),
        }
    }

    /// `path: rest`, as messages start.
    fn at(&self, path: &Path, rest: &str) -> String {
        format!("{}: {rest}", path.display())
    }
}

/// Rewrites the JSON header of the safetensors file at `path`, keeping its data bytes.
fn edit_header(path: &Path, edit: impl FnOnce(&mut Map<String, Value>)) {
    let bytes = std::fs::read(path).expect("read weights");
    let (header, data) = split_file(&bytes);
    let mut header: Map<String, Value> = serde_json::from_slice(header).expect("header JSON");
    edit(&mut header);
    let header = serde_json::to_vec(&header).expect("serialize header");
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    std::fs::write(path, out).expect("write weights");
}

fn split_file(bytes: &[u8]) -> (&[u8], &[u8]) {
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    (&bytes[8..8 + len], &bytes[8 + len..])
}

fn offsets(header: &Map<String, Value>, name: &str) -> (u64, u64) {
    let offsets = &header[name]["data_offsets"];
    (
        offsets[0].as_u64().expect("start"),
        offsets[1].as_u64().expect("end"),
    )
}

const EMBED: &str = "model.embed_tokens.weight";
const INPUT_NORM: &str = "model.layers.0.input_layernorm.weight";
const Q: &str = "model.layers.0.self_attn.q_proj.weight";
const Q_SCALE: &str = "model.layers.0.self_attn.q_proj.weight_scale";
const FFN_SUB_NORM: &str = "model.layers.0.mlp.ffn_sub_norm.weight";
const FINAL_NORM: &str = "model.norm.weight";

#[test]
fn the_unbroken_case_opens() {
    let case = Case::new();
    case.write();
    let checkpoint = Checkpoint::open(case.dir.path()).expect("valid checkpoint");
    assert_eq!(checkpoint.config().head_dim, 4);
}

// ---- the safetensors container -------------------------------------------------------------

#[test]
fn every_truncation_is_reported_as_truncated() {
    let case = Case::new();
    case.write();
    let full = std::fs::read(case.weights()).expect("read");
    for len in 0..full.len() {
        std::fs::write(case.weights(), &full[..len]).expect("write");
        let message = case.reopen_error();
        let prefix = case.at(&case.weights(), "truncated file: ");
        assert!(message.starts_with(&prefix), "cut at {len}: {message}");
    }
}

#[test]
fn truncation_messages_say_which_bytes_are_missing() {
    let case = Case::new();
    case.write();
    let full = std::fs::read(case.weights()).expect("read");
    let (header, data) = split_file(&full);
    let header_len = header.len();

    std::fs::write(case.weights(), &full[..5]).expect("write");
    assert_eq!(
        case.reopen_error(),
        case.at(
            &case.weights(),
            "truncated file: 5 bytes, shorter than the 8-byte header length"
        )
    );

    std::fs::write(case.weights(), &full[..100]).expect("write");
    assert_eq!(
        case.reopen_error(),
        case.at(
            &case.weights(),
            &format!(
                "truncated file: the header needs {header_len} bytes after the length prefix, \
                 but the file holds only 92"
            )
        )
    );

    // One byte short: the last tensor written (the final norm) is incomplete.
    std::fs::write(case.weights(), &full[..full.len() - 1]).expect("write");
    assert_eq!(
        case.reopen_error(),
        case.at(
            &case.weights(),
            &format!(
                "truncated file: tensor `{FINAL_NORM}` needs data up to byte {} of the data \
                 section, which holds only {} bytes",
                data.len(),
                data.len() - 1
            )
        )
    );
}

// `SynthSpec` writes a layer's four norms, then its seven projections: in the data section,
// q_proj follows ffn_sub_norm.

#[test]
fn header_offsets_that_overlap_a_neighbour() {
    let case = Case::new();
    case.write();
    let mut q = (0, 0);
    edit_header(&case.weights(), |header| {
        q = offsets(header, Q);
        header[Q]["data_offsets"] = json!([q.0 - 2, q.1 - 2]);
    });
    assert_eq!(
        case.reopen_error(),
        case.at(
            &case.weights(),
            &format!(
                "tensor `{Q}`: header lies about offsets: data_offsets [{}, {}] start at {}, \
                 but it overlaps tensor `{FFN_SUB_NORM}`, which ends at {}",
                q.0 - 2,
                q.1 - 2,
                q.0 - 2,
                q.0
            )
        )
    );
}

#[test]
fn header_offsets_that_leave_a_gap() {
    let case = Case::new();
    case.write();
    let mut q = (0, 0);
    edit_header(&case.weights(), |header| {
        q = offsets(header, Q);
        header[Q]["data_offsets"] = json!([q.0 + 1, q.1]);
    });
    assert_eq!(
        case.reopen_error(),
        case.at(
            &case.weights(),
            &format!(
                "tensor `{Q}`: header lies about offsets: data_offsets [{}, {}] start at {}, \
                 but it leaves a gap of 1 bytes after tensor `{FFN_SUB_NORM}`, which ends at {}",
                q.0 + 1,
                q.1,
                q.0 + 1,
                q.0
            )
        )
    );
}

#[test]
fn header_offsets_that_end_before_they_start() {
    let case = Case::new();
    case.write();
    let mut q = (0, 0);
    edit_header(&case.weights(), |header| {
        q = offsets(header, Q);
        header[Q]["data_offsets"] = json!([q.0, q.0 - 1]);
    });
    assert_eq!(
        case.reopen_error(),
        case.at(
            &case.weights(),
            &format!(
                "tensor `{Q}`: header lies about offsets: data_offsets [{}, {}] end before they start",
                q.0,
                q.0 - 1
            )
        )
    );
}

#[test]
fn header_shape_that_disagrees_with_the_offsets() {
    let case = Case::new();
    case.write();
    let mut norm = (0, 0);
    edit_header(&case.weights(), |header| {
        norm = offsets(header, INPUT_NORM);
        header[INPUT_NORM]["shape"] = json!([9]);
    });
    assert_eq!(
        case.reopen_error(),
        case.at(
            &case.weights(),
            &format!(
                "tensor `{INPUT_NORM}`: header lies about offsets: data_offsets [{}, {}] span 16 \
                 bytes, but shape [9] of BF16 needs 18",
                norm.0, norm.1
            )
        )
    );
}

#[test]
fn bytes_after_the_last_tensor() {
    let case = Case::new();
    case.write();
    let mut bytes = std::fs::read(case.weights()).expect("read");
    let data_len = split_file(&bytes).1.len();
    bytes.extend_from_slice(&[0, 0, 0]);
    std::fs::write(case.weights(), bytes).expect("write");
    assert_eq!(
        case.reopen_error(),
        case.at(
            &case.weights(),
            &format!(
                "invalid safetensors header: the tensors cover {data_len} bytes of data, but the \
                 file holds {} (the last 3 bytes belong to no tensor)",
                data_len + 3
            )
        )
    );
}

#[test]
fn header_length_beyond_the_limit() {
    let case = Case::new();
    case.write();
    let mut bytes = std::fs::read(case.weights()).expect("read");
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(case.weights(), bytes).expect("write");
    assert_eq!(
        case.reopen_error(),
        case.at(
            &case.weights(),
            "invalid safetensors header: header length 18446744073709551615 exceeds the limit of \
             100000000 bytes"
        )
    );
}

#[test]
fn header_that_is_not_json() {
    let case = Case::new();
    let mut bytes = 4u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{x}!");
    write_config(case.dir.path(), &case.config).expect("config");
    std::fs::write(case.weights(), bytes).expect("write");
    assert_eq!(
        case.reopen_error(),
        case.at(
            &case.weights(),
            "invalid safetensors header: not a JSON object (key must be a string at line 1 column 2)"
        )
    );
}

#[test]
fn header_entries_that_cannot_be_read() {
    let cases: [(Value, &str); 6] = [
        (json!("U8"), "not a JSON object"),
        (
            json!({"dtype": "Q7", "shape": [2, 8], "data_offsets": [0, 16]}),
            "unknown dtype `Q7`",
        ),
        (
            json!({"dtype": 5, "shape": [2, 8], "data_offsets": [0, 16]}),
            "`dtype` is not a string",
        ),
        (
            json!({"shape": [2, 8], "data_offsets": [0, 16]}),
            "no `dtype`",
        ),
        (
            json!({"dtype": "U8", "shape": [2, -8], "data_offsets": [0, 16]}),
            "`shape` holds `-8`, not a non-negative integer",
        ),
        (
            json!({"dtype": "U8", "shape": [2, 8], "data_offsets": [0, 8, 16]}),
            "`data_offsets` has 3 entries, expected 2",
        ),
    ];
    for (entry, detail) in cases {
        let case = Case::new();
        case.write();
        edit_header(&case.weights(), |header| {
            header.insert(Q.to_owned(), entry.clone());
        });
        assert_eq!(
            case.reopen_error(),
            case.at(
                &case.weights(),
                &format!("tensor `{Q}`: invalid header entry: {detail}")
            )
        );
    }
}

#[test]
fn header_shapes_whose_size_overflows() {
    let case = Case::new();
    case.write();
    edit_header(&case.weights(), |header| {
        header[Q]["shape"] = json!([u64::MAX, 4]);
    });
    assert_eq!(
        case.reopen_error(),
        case.at(
            &case.weights(),
            &format!(
                "tensor `{Q}`: invalid header entry: shape [18446744073709551615, 4] overflows"
            )
        )
    );
}

// ---- tensors of the wrong kind -------------------------------------------------------------

#[test]
fn wrong_dtype_for_each_kind_of_tensor() {
    let float = "BF16, F16 or F32";
    let cases = [
        (EMBED, Dtype::I32, vec![16, 8], float),
        (INPUT_NORM, Dtype::U8, vec![8], float),
        (Q, Dtype::BF16, vec![2, 8], "U8 (packed ternary)"),
        (Q_SCALE, Dtype::I64, vec![1], float),
        (FINAL_NORM, Dtype::F64, vec![8], float),
    ];
    for (name, dtype, shape, expected) in cases {
        let mut case = Case::new();
        *case.tensor(name) =
            SynthTensor::new(name, dtype, shape, SynthData::Uniform { amplitude: 1.0 });
        assert_eq!(
            case.error(),
            case.at(
                &case.weights(),
                &format!("tensor `{name}` has dtype {dtype}, expected {expected}")
            ),
            "{name}"
        );
    }
}

#[test]
fn wrong_dtype_of_a_master_weight() {
    let mut case = Case::from_spec(&SynthSpec {
        packed: false,
        ..SynthSpec::tiny()
    });
    *case.tensor(Q) = SynthTensor::new(Q, Dtype::U8, vec![8, 8], SynthData::Ternary);
    assert_eq!(
        case.error(),
        case.at(
            &case.weights(),
            &format!("tensor `{Q}` has dtype U8, expected BF16, F16 or F32")
        )
    );
}

#[test]
fn wrong_shape_for_each_kind_of_tensor() {
    let cases = [
        (EMBED, Dtype::BF16, vec![16, 9], "[16, 8]"),
        (INPUT_NORM, Dtype::BF16, vec![9], "[8]"),
        (Q, Dtype::U8, vec![8, 8], "[2, 8] (packed ternary)"),
        (Q_SCALE, Dtype::BF16, vec![2], "[] or [1]"),
        (FINAL_NORM, Dtype::F32, vec![2, 4], "[8]"),
    ];
    for (name, dtype, shape, expected) in cases {
        let mut case = Case::new();
        let found = format!("{shape:?}");
        *case.tensor(name) = SynthTensor::new(name, dtype, shape, SynthData::Gain);
        assert_eq!(
            case.error(),
            case.at(
                &case.weights(),
                &format!("tensor `{name}` has shape {found}, expected {expected}")
            ),
            "{name}"
        );
    }
}

#[test]
fn wrong_shape_of_a_master_weight_and_an_untied_head() {
    let mut case = Case::from_spec(&SynthSpec {
        packed: false,
        ..SynthSpec::tiny()
    });
    case.tensor(Q).shape = vec![8, 4];
    assert_eq!(
        case.error(),
        case.at(
            &case.weights(),
            &format!("tensor `{Q}` has shape [8, 4], expected [8, 8] (master weights)")
        )
    );

    let mut case = Case::from_spec(&SynthSpec {
        tied: false,
        ..SynthSpec::tiny()
    });
    case.tensor("lm_head.weight").shape = vec![15, 8];
    assert_eq!(
        case.error(),
        case.at(
            &case.weights(),
            "tensor `lm_head.weight` has shape [15, 8], expected [16, 8]"
        )
    );
}

#[test]
fn a_scalar_weight_scale_is_accepted() {
    let mut case = Case::new();
    let scale = case.tensor(Q_SCALE);
    scale.shape = vec![];
    scale.data = SynthData::Bytes(2.0f32.to_le_bytes().to_vec());
    scale.dtype = Dtype::F32;
    case.write();
    let checkpoint = Checkpoint::open(case.dir.path()).expect("scalar scale");
    assert_eq!(
        checkpoint.ternary(Q).map(|q| q.effective_scale()),
        Some(2.0)
    );
}

#[test]
fn missing_tensor_of_each_kind() {
    for name in [EMBED, INPUT_NORM, Q, Q_SCALE, FFN_SUB_NORM, FINAL_NORM] {
        let mut case = Case::new();
        case.remove(name);
        assert_eq!(
            case.error(),
            case.at(&case.weights(), &format!("missing tensor `{name}`")),
            "{name}"
        );
    }
    let mut case = Case::from_spec(&SynthSpec {
        tied: false,
        ..SynthSpec::tiny()
    });
    case.remove("lm_head.weight");
    assert_eq!(
        case.error(),
        case.at(&case.weights(), "missing tensor `lm_head.weight`")
    );
}

#[test]
fn the_1bitllm_names_are_required_for_1bitllm_configs() {
    let mut case = Case::from_spec(&SynthSpec {
        packed: false,
        ..SynthSpec::tiny()
    });
    case.set("model_type", json!("llama"))
        .set("architectures", json!(["BitnetForCausalLM"]))
        .set("quantization_config", Value::Null);
    assert_eq!(
        case.error(),
        case.at(
            &case.weights(),
            "missing tensor `model.layers.0.self_attn.inner_attn_ln.weight`"
        )
    );
}

#[test]
fn invalid_ternary_code() {
    let mut case = Case::new();
    // q_proj: 8 logical rows in 2 packed rows of 8 bytes; packed row 1, column 5, field 2
    // holds logical row 2·2 + 1 = 5.
    let mut packed = pack_ternary(&[0; 64], 8, 8);
    packed[8 + 5] |= 0b11 << 4;
    case.tensor(Q).data = SynthData::Bytes(packed);
    assert_eq!(
        case.error(),
        case.at(
            &case.weights(),
            &format!(
                "tensor `{Q}`: invalid 2-bit code 3 for output row 5, input column 5 \
                 (codes are value + 1: 0, 1 or 2)"
            )
        )
    );
}

#[test]
fn weight_scales_that_are_not_positive_and_finite() {
    for (value, shown) in [
        (0.0f32, "0"),
        (-1.5, "-1.5"),
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
    ] {
        let mut case = Case::new();
        let scale = case.tensor(Q_SCALE);
        scale.dtype = Dtype::F32;
        scale.data = SynthData::Bytes(value.to_le_bytes().to_vec());
        assert_eq!(
            case.error(),
            case.at(
                &case.weights(),
                &format!(
                    "tensor `{Q_SCALE}`: weight scale {shown} is not a positive finite number"
                )
            )
        );
    }
}

#[test]
fn non_finite_norm_gains_and_master_weights() {
    let mut case = Case::new();
    let mut gains: Vec<u8> = [1.0f32; 8].iter().flat_map(|g| g.to_le_bytes()).collect();
    gains[12..16].copy_from_slice(&f32::NAN.to_le_bytes());
    let norm = case.tensor(INPUT_NORM);
    norm.dtype = Dtype::F32;
    norm.data = SynthData::Bytes(gains);
    assert_eq!(
        case.error(),
        case.at(
            &case.weights(),
            &format!("tensor `{INPUT_NORM}`: element 3 is not finite (NaN)")
        )
    );

    let mut case = Case::from_spec(&SynthSpec {
        packed: false,
        ..SynthSpec::tiny()
    });
    let mut weights: Vec<u8> = [0.5f32; 64].iter().flat_map(|w| w.to_le_bytes()).collect();
    weights[40..44].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes());
    let q = case.tensor(Q);
    q.dtype = Dtype::F32;
    q.data = SynthData::Bytes(weights);
    assert_eq!(
        case.error(),
        case.at(
            &case.weights(),
            &format!("tensor `{Q}`: element 10 is not finite (-inf)")
        )
    );
}

// ---- config.json ---------------------------------------------------------------------------

#[test]
fn missing_config_keys() {
    for key in [
        "model_type",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "vocab_size",
        "hidden_act",
        "rms_norm_eps",
        "rope_theta",
    ] {
        let mut case = Case::new();
        case.set(key, Value::Null);
        assert_eq!(
            case.error(),
            case.at(&case.config_path(), &format!("missing config key `{key}`")),
            "{key}"
        );
    }
}

#[test]
fn missing_nested_config_keys() {
    let mut case = Case::new();
    case.set("rope_theta", Value::Null)
        .set("rope_parameters", json!({"rope_type": "default"}));
    assert_eq!(
        case.error(),
        case.at(
            &case.config_path(),
            "missing config key `rope_parameters.rope_theta`"
        )
    );

    let mut case = Case::new();
    case.set(
        "quantization_config",
        json!({"linear_class": "autobitlinear"}),
    );
    assert_eq!(
        case.error(),
        case.at(
            &case.config_path(),
            "missing config key `quantization_config.quant_method`"
        )
    );
}

#[test]
fn unknown_activation() {
    let mut case = Case::new();
    case.set("hidden_act", json!("gelu"));
    assert_eq!(
        case.error(),
        case.at(
            &case.config_path(),
            "unknown activation `gelu` in `hidden_act` (supported: `relu2`, `silu`)"
        )
    );
}

#[test]
fn inconsistent_head_counts() {
    let cases: [(&[(&str, Value)], &str); 4] = [
        (
            &[
                ("num_attention_heads", json!(4)),
                ("num_key_value_heads", json!(3)),
            ],
            "num_attention_heads 4 is not a multiple of num_key_value_heads 3",
        ),
        (
            &[("num_key_value_heads", json!(4))],
            "num_attention_heads 2 is not a multiple of num_key_value_heads 4",
        ),
        (
            &[
                ("num_attention_heads", json!(3)),
                ("num_key_value_heads", json!(1)),
            ],
            "hidden_size 8 is not a multiple of num_attention_heads 3 (and there is no head_dim)",
        ),
        (
            &[("head_dim", json!(3))],
            "head_dim 3 is odd, but rotary embeddings rotate pairs of half-dimensions",
        ),
    ];
    for (settings, detail) in cases {
        let mut case = Case::new();
        for (key, value) in settings {
            case.set(key, value.clone());
        }
        assert_eq!(
            case.error(),
            case.at(
                &case.config_path(),
                &format!("inconsistent head counts: {detail}")
            )
        );
    }
}

#[test]
fn invalid_config_values() {
    let cases: [(&str, Value, &str); 8] = [
        (
            "hidden_size",
            json!(0),
            "config key `hidden_size` must be a positive integer, found `0`",
        ),
        (
            "vocab_size",
            json!(-3),
            "config key `vocab_size` must be a positive integer, found `-3`",
        ),
        (
            "num_hidden_layers",
            json!("2"),
            "config key `num_hidden_layers` must be a positive integer, found `\"2\"`",
        ),
        (
            "rms_norm_eps",
            json!(-1e-5),
            "config key `rms_norm_eps` must be a positive number, found `-0.00001`",
        ),
        (
            "tie_word_embeddings",
            json!("yes"),
            "config key `tie_word_embeddings` must be true or false, found `\"yes\"`",
        ),
        (
            "quantization_config",
            json!({"quant_method": "bitnet", "linear_class": "fancy"}),
            "config key `quantization_config.linear_class` must be `autobitlinear` or `bitlinear`, \
             found `fancy`",
        ),
        (
            "quantization_config",
            json!({"quant_method": "bitnet", "quantization_mode": "later"}),
            "config key `quantization_config.quantization_mode` must be `offline` or `online`, \
             found `later`",
        ),
        (
            "intermediate_size",
            json!(18),
            "config key `intermediate_size` must be divisible by 4 for packed ternary weights, found 18",
        ),
    ];
    for (key, value, message) in cases {
        let mut case = Case::new();
        case.set(key, value);
        assert_eq!(case.error(), case.at(&case.config_path(), message), "{key}");
    }
}

#[test]
fn unsupported_models() {
    let cases: [(&str, Value, &str); 5] = [
        (
            "model_type",
            json!("gpt2"),
            "model_type `gpt2` is not BitNet b1.58 (expected `bitnet`, or `llama` with \
             architecture `BitnetForCausalLM`)",
        ),
        (
            "rope_scaling",
            json!({"rope_type": "llama3"}),
            "`rope_scaling` (only plain RoPE is implemented)",
        ),
        (
            "attention_bias",
            json!(true),
            "`attention_bias: true` (BitNet has no biases)",
        ),
        (
            "quantization_config",
            json!({"quant_method": "gptq"}),
            "quantization_config.quant_method `gptq` (expected `bitnet`)",
        ),
        (
            "quantization_config",
            json!({"quant_method": "bitnet", "use_rms_norm": true}),
            "quantization_config.use_rms_norm (a norm inside BitLinear)",
        ),
    ];
    for (key, value, detail) in cases {
        let mut case = Case::new();
        case.set(key, value);
        assert_eq!(
            case.error(),
            case.at(&case.config_path(), &format!("unsupported model: {detail}")),
            "{key}"
        );
    }
    let mut case = Case::new();
    case.set("model_type", json!("llama"));
    assert_eq!(
        case.error(),
        case.at(
            &case.config_path(),
            "unsupported model: model_type `llama` without architecture `BitnetForCausalLM` is a \
             plain Llama model, not BitNet b1.58"
        )
    );
}

#[test]
fn config_that_is_not_json() {
    let case = Case::new();
    case.write();
    std::fs::write(case.config_path(), "{\"hidden_size\": 8,").expect("write");
    let error = Checkpoint::open(case.dir.path()).expect_err("broken config");
    assert_eq!(
        error.to_string(),
        case.at(&case.config_path(), "invalid JSON")
    );
    let source = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(
        source.as_deref(),
        Some("EOF while parsing a value at line 1 column 18")
    );
}

#[test]
fn folders_without_config_or_weights() {
    let case = Case::new();
    let error = Checkpoint::open(case.dir.path()).expect_err("empty folder");
    assert_eq!(
        error.to_string(),
        case.at(&case.config_path(), "cannot read file")
    );

    write_config(case.dir.path(), &case.config).expect("config");
    assert_eq!(
        case.reopen_error(),
        case.at(
            case.dir.path(),
            "no model.safetensors or model.safetensors.index.json in this folder"
        )
    );
}

// ---- sharded checkpoints -------------------------------------------------------------------

/// Writes the case as two shards and an index mapping every tensor to its shard.
fn write_sharded(case: &Case) -> Map<String, Value> {
    write_config(case.dir.path(), &case.config).expect("config");
    let (first, second) = case.tensors.split_at(case.tensors.len() / 2);
    let mut weight_map = Map::new();
    for (file, tensors) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        write_safetensors(&case.dir.path().join(file), tensors, 3).expect("shard");
        for tensor in tensors {
            weight_map.insert(tensor.name.clone(), json!(file));
        }
    }
    weight_map
}

fn write_index(case: &Case, index: &Value) -> PathBuf {
    let path = case.dir.path().join("model.safetensors.index.json");
    std::fs::write(&path, index.to_string()).expect("index");
    path
}

#[test]
fn sharded_checkpoints_open_like_single_files() {
    let case = Case::new();
    let weight_map = write_sharded(&case);
    write_index(
        &case,
        &json!({"metadata": {"total_size": 0}, "weight_map": weight_map}),
    );
    let checkpoint = Checkpoint::open(case.dir.path()).expect("sharded checkpoint");
    assert_eq!(checkpoint.layers().len(), 1);
    assert!(checkpoint.ternary(Q).is_some_and(|q| q.is_mapped()));
}

#[test]
fn broken_shard_indexes() {
    let case = Case::new();
    let weight_map = write_sharded(&case);

    let index = write_index(&case, &json!({"metadata": {}}));
    assert_eq!(
        case.reopen_error(),
        case.at(&index, "invalid shard index: no `weight_map` object")
    );

    let mut escaping = weight_map.clone();
    escaping.insert(Q.to_owned(), json!("../model.safetensors"));
    write_index(&case, &json!({"weight_map": escaping}));
    assert_eq!(
        case.reopen_error(),
        case.at(
            &index,
            &format!(
                "invalid shard index: tensor `{Q}` maps to `../model.safetensors`, which is not a \
                 file name in this folder"
            )
        )
    );

    // The index claims a tensor is in the second shard; it is in the first.
    let mut wrong = weight_map.clone();
    wrong.insert(EMBED.to_owned(), json!("model-00002-of-00002.safetensors"));
    write_index(&case, &json!({"weight_map": wrong}));
    let second = case.dir.path().join("model-00002-of-00002.safetensors");
    assert_eq!(
        case.reopen_error(),
        case.at(&second, &format!("missing tensor `{EMBED}`"))
    );

    let mut absent = weight_map.clone();
    absent.insert(Q.to_owned(), json!("model-00003-of-00002.safetensors"));
    write_index(&case, &json!({"weight_map": absent}));
    let third = case.dir.path().join("model-00003-of-00002.safetensors");
    assert_eq!(case.reopen_error(), case.at(&third, "cannot read file"));

    let mut unlisted = weight_map;
    unlisted.remove(FINAL_NORM);
    write_index(&case, &json!({"weight_map": unlisted}));
    assert_eq!(
        case.reopen_error(),
        case.at(&index, &format!("missing tensor `{FINAL_NORM}`"))
    );
}
