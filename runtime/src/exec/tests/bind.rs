//! Weight binding against the fixtures: a matching checkpoint binds, every mismatch is named.

use super::*;
use crate::exec::ExecError;

const Q: &str = "model.layers.0.self_attn.q_proj.weight";
const GAIN: &str = "model.layers.0.input_layernorm.weight";
const EMBEDDING: &str = "model.embed_tokens.weight";

/// A plan referring to dev-h64's q_proj, a norm gain and the embedding, digests included.
fn plan_for_dev_h64() -> Plan {
    let checkpoint = fixture("dev-h64");
    let mut b = Builder::new();
    b.ternary(&checkpoint, Q);
    b.vector(&checkpoint, GAIN);
    let table = checkpoint.embedding();
    b.weight(WeightRef {
        name: EMBEDDING.into(),
        kind: WeightKind::Matrix,
        shape: [table.rows() as u32, table.cols() as u32],
        digest: table.digest(),
    });
    let mut plan = b.finish().0;
    plan.model.config_digest = checkpoint.config().digest();
    plan
}

fn hex(digest: &[u8; 32]) -> String {
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_plan_binds_to_the_checkpoint_it_was_compiled_for() {
    let checkpoint = fixture("dev-h64");
    let plan = plan_for_dev_h64();
    let bound = BoundWeights::bind(&plan, &checkpoint).unwrap();
    assert!(bound.is_for(&plan));
    assert_eq!(
        bound.ternary(WeightId(0)).unwrap().digest(),
        plan.weights[0].digest
    );
    let gains: Vec<f64> = checkpoint
        .vector(GAIN)
        .unwrap()
        .to_vec()
        .into_iter()
        .map(f64::from)
        .collect();
    assert_eq!(bound.vector(WeightId(1)).unwrap(), gains.as_slice());
    assert_eq!(
        bound.vector(WeightId(0)).unwrap_err().to_string(),
        "weight 0 is used as a vector, but is bound as another kind"
    );
    assert!(
        bound.ternary(WeightId(2)).is_err(),
        "the embedding is checked, not kept"
    );
}

#[test]
fn a_modified_tensor_is_named_with_both_digests() {
    let checkpoint = fixture("dev-h64");
    let mut plan = plan_for_dev_h64();
    let expected = plan.weights[0].digest;
    plan.weights[0].digest[0] ^= 0xff;
    assert_eq!(
        BoundWeights::bind(&plan, &checkpoint)
            .unwrap_err()
            .to_string(),
        format!(
            "`{Q}` differs from the tensor the plan was compiled against (digest {}… instead of {}…): \
             a modified checkpoint, or a plan for another model",
            hex(&expected),
            hex(&plan.weights[0].digest)
        )
    );
}

#[test]
fn another_models_checkpoint_is_refused() {
    // dev-h64-online has the same q_proj shape but another configuration and other weights.
    let other = fixture("dev-h64-online");
    let plan = plan_for_dev_h64();
    assert_eq!(
        BoundWeights::bind(&plan, &other).unwrap_err().to_string(),
        "the checkpoint's config.json describes another model than the one the plan was \
         compiled for (`test-model`)"
    );
    // With the configuration check passed, the first differing tensor is named.
    let mut plan = plan;
    plan.model.config_digest = other.config().digest();
    let error = BoundWeights::bind(&plan, &other).unwrap_err();
    assert!(
        matches!(&error, ExecError::WeightDigest { name, .. } if name == Q),
        "{error}"
    );
}

#[test]
fn a_missing_tensor_a_wrong_kind_and_a_wrong_shape_are_named() {
    let checkpoint = fixture("dev-h64");
    let message = |edit: &dyn Fn(&mut Plan)| {
        let mut plan = plan_for_dev_h64();
        edit(&mut plan);
        BoundWeights::bind(&plan, &checkpoint)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        message(&|p| p.weights[0].name = "model.layers.7.self_attn.q_proj.weight".into()),
        "the checkpoint has no ternary matrix `model.layers.7.self_attn.q_proj.weight` \
         (the plan was compiled for model `test-model`)"
    );
    assert_eq!(
        message(&|p| p.weights[1].kind = WeightKind::Ternary),
        format!("`{GAIN}` is a vector in the checkpoint, but the plan uses a ternary matrix")
    );
    assert_eq!(
        message(&|p| p.weights[0].shape = [64, 32]),
        format!("`{Q}` is 64x64 in the checkpoint, but the plan was compiled for 64x32")
    );
    assert_eq!(
        message(&|p| p.weights[2].digest = [0; 32]),
        format!(
            "`{EMBEDDING}` differs from the tensor the plan was compiled against (digest {}… \
             instead of 0000000000000000…): a modified checkpoint, or a plan for another model",
            hex(&checkpoint.embedding().digest())
        )
    );
    // Two problems: the first in the plan's order is reported.
    assert!(
        message(&|p| {
            p.weights[1].shape = [1, 1];
            p.weights[0].name = "nothing".into();
        })
        .starts_with("the checkpoint has no ternary matrix `nothing`")
    );
}
