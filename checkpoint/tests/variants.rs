//! Checkpoint variants the loader accepts: config spellings, naming schemes, scale conventions, heads.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use ensi_checkpoint::synth::{SynthData, SynthSpec, SynthTensor, write_config, write_safetensors};
use ensi_checkpoint::{
    Activation, Checkpoint, FloatDtype, LinearClass, LmHead, Naming, Projection, Quantization,
    WeightOrigin,
};
use safetensors::Dtype;
use serde_json::{Value, json};

fn open(config: &Value, tensors: &[SynthTensor]) -> Checkpoint {
    let dir = tempfile::tempdir().expect("temporary folder");
    write_config(dir.path(), config).expect("config");
    write_safetensors(&dir.path().join("model.safetensors"), tensors, 11).expect("weights");
    Checkpoint::open(dir.path()).expect("valid checkpoint")
}

#[test]
fn transformers_v5_spellings_give_the_same_config() {
    let spec = SynthSpec::tiny();
    let mut v5 = spec.config_json();
    let object = v5.as_object_mut().expect("object");
    let theta = object.remove("rope_theta").expect("rope_theta");
    object.insert(
        "rope_parameters".into(),
        json!({"rope_theta": theta, "rope_type": "default"}),
    );
    let dtype = object.remove("torch_dtype").expect("torch_dtype");
    object.insert("dtype".into(), dtype);
    object.insert("an_unknown_key".into(), json!([1, 2, 3]));

    let v4 = open(&spec.config_json(), &spec.tensors());
    let v5 = open(&v5, &spec.tensors());
    assert_eq!(v4.config(), v5.config());
    assert_eq!(v5.config().rope_theta, 500_000.0);
    assert_eq!(v5.config().dtype.as_deref(), Some("bfloat16"));
}

#[test]
fn the_2024_1bitllm_layout() {
    // model_type llama + BitnetForCausalLM, SiLU, no quantization config, F16 master weights,
    // sub-norms named inner_attn_ln / ffn_layernorm, MHA (kv heads = heads).
    let spec = SynthSpec {
        packed: false,
        num_kv_heads: 2,
        ..SynthSpec::tiny()
    };
    let mut config = spec.config_json();
    let object = config.as_object_mut().expect("object");
    object.insert("model_type".into(), json!("llama"));
    object.insert("architectures".into(), json!(["BitnetForCausalLM"]));
    object.insert("hidden_act".into(), json!("silu"));
    object.insert("rope_theta".into(), json!(10000.0));
    object.remove("quantization_config");
    object.remove("num_key_value_heads");
    let tensors: Vec<SynthTensor> = spec
        .tensors()
        .into_iter()
        .map(|mut tensor| {
            tensor.name = tensor
                .name
                .replace("attn_sub_norm", "inner_attn_ln")
                .replace("ffn_sub_norm", "ffn_layernorm");
            tensor.dtype = Dtype::F16;
            tensor
        })
        .collect();
    let checkpoint = open(&config, &tensors);
    let config = checkpoint.config();
    assert_eq!(config.naming, Naming::OneBitLlm);
    assert_eq!(config.activation, Activation::Silu);
    assert_eq!(config.quantization, Quantization::Unspecified);
    assert_eq!((config.num_heads, config.num_kv_heads), (2, 2));
    let layer = &checkpoint.layers()[0];
    assert_eq!(
        layer.projection(Projection::Up).origin(),
        WeightOrigin::Ternarized
    );
    assert_eq!(checkpoint.embedding().dtype(), FloatDtype::F16);
    assert!(
        checkpoint
            .vector("model.layers.0.self_attn.inner_attn_ln.weight")
            .is_some()
    );
}

#[test]
fn bitlinear_scales_divide() {
    let spec = SynthSpec::tiny();
    let mut config = spec.config_json();
    config["quantization_config"]["linear_class"] = json!("bitlinear");
    let mut tensors = spec.tensors();
    for tensor in &mut tensors {
        if tensor.name.ends_with("weight_scale") {
            tensor.data = SynthData::Bytes(half::bf16::from_f32(4.0).to_le_bytes().to_vec());
        }
    }
    let checkpoint = open(&config, &tensors);
    assert_eq!(
        checkpoint.config().quantization,
        Quantization::Offline {
            linear_class: LinearClass::BitLinear
        }
    );
    let down = checkpoint.layers()[0].projection(Projection::Down);
    assert_eq!(down.scale().stored, 4.0);
    assert_eq!(down.effective_scale(), 0.25);
}

#[test]
fn untied_heads_read_lm_head_and_explicit_head_dims_are_used() {
    let spec = SynthSpec {
        tied: false,
        ..SynthSpec::tiny()
    };
    let mut config = spec.config_json();
    config["head_dim"] = json!(4);
    let checkpoint = open(&config, &spec.tensors());
    assert_eq!(checkpoint.config().lm_head, LmHead::Untied);
    assert_eq!(checkpoint.lm_head().name(), "lm_head.weight");
    assert_ne!(checkpoint.lm_head().row(0), checkpoint.embedding().row(0));
    assert_eq!(
        checkpoint.matrix("lm_head.weight").map(|m| m.rows()),
        Some(16)
    );
}

#[test]
fn tied_heads_ignore_a_stray_lm_head_tensor() {
    let spec = SynthSpec::tiny();
    let mut tensors = spec.tensors();
    tensors.push(SynthTensor::new(
        "lm_head.weight",
        Dtype::F32,
        vec![3],
        SynthData::Gain,
    ));
    let checkpoint = open(&spec.config_json(), &tensors);
    assert_eq!(checkpoint.lm_head().name(), "model.embed_tokens.weight");
}

#[test]
fn float_tensors_decode_exactly() {
    let spec = SynthSpec::tiny();
    let values: Vec<f32> = (0..16 * 8).map(|i| i as f32 / 8.0 - 4.0).collect();
    let bytes = values
        .iter()
        .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
        .collect();
    let mut tensors = spec.tensors();
    tensors[0] = SynthTensor::new(
        "model.embed_tokens.weight",
        Dtype::BF16,
        vec![16, 8],
        SynthData::Bytes(bytes),
    );
    let checkpoint = open(&spec.config_json(), &tensors);
    for row in 0..16 {
        assert_eq!(
            checkpoint.embedding().row(row),
            values[row * 8..row * 8 + 8]
        );
    }
    let norm = checkpoint.final_norm();
    assert_eq!(norm.to_vec().len(), 8);
    assert!(norm.to_vec().iter().all(|g| (0.5..=1.5).contains(g)));
    assert_eq!(norm.get(3), norm.to_vec()[3]);
}
