//! Tests of the plan verifier on small hand-written plans.

use super::*;
use crate::ckks::scheme::{ParamsLiteral, SecretDistribution, Security};
use crate::plan::layout::Layout;
use crate::plan::op::{Instr, PlainId, ValueId, ValueType, WeightId};
use crate::plan::recipe::{InputSignature, OutputSignature, PlainRecipe, Region, WeightRef};
use crate::plan::{ModelRef, PlanParams};

const Q: [u64; 3] = [1_125_899_906_826_241, 1_099_511_480_321, 1_099_511_922_689];

fn layout() -> Layout {
    Layout {
        slots: 64,
        block: 16,
        tokens: 8,
        columns: 8,
        group: 1,
    }
}

/// input -> mul_plain(gain) -> rescale -> add to itself.
pub(crate) fn tiny_plan() -> Plan {
    let layout = layout();
    let top = 2;
    let scale = 2f64.powi(40);
    let ty = |level, scale| ValueType {
        count: 2,
        level,
        scale,
        layout,
        zero_padding: true,
    };
    Plan {
        compiler_version: "test".into(),
        model: ModelRef {
            name: "tiny".into(),
            config_digest: [0; 32],
            tokens: 8,
            hidden: 8,
            vocab: 16,
        },
        params: PlanParams {
            literal: ParamsLiteral {
                log_n: 7,
                log_q: vec![50, 40, 40],
                log_p: vec![50],
                log_scale: 40,
                digit_primes: 1,
                secret: SecretDistribution::UniformTernary,
            },
            q: Q.to_vec(),
            p: vec![1_125_899_906_839_937],
            hash: [7; 32],
            security: Security::InsecureForTesting,
        },
        galois_elements: vec![],
        needs_relinearization: false,
        needs_bootstrapping: false,
        weights: vec![WeightRef {
            name: "model.embed_tokens.weight".into(),
            kind: WeightKind::Matrix,
            shape: [16, 8],
            digest: [0; 32],
        }],
        plains: vec![PlainRecipe::ColumnValues {
            values: vec![0.5; 8],
            layout,
        }],
        approximations: vec![],
        regions: vec![Region {
            layer: Some(0),
            block: "test".into(),
        }],
        values: vec![
            ty(top, scale),
            ty(top, scale * Q[2] as f64),
            ty(top - 1, scale),
            ty(top - 1, scale),
        ],
        instrs: vec![
            Instr {
                op: Op::Input { index: 0 },
                result: ValueId(0),
                frees: vec![],
                region: 0,
            },
            Instr {
                op: Op::MulPlain {
                    a: ValueId(0),
                    plain: PlainId(0),
                    scale: Q[2] as f64,
                },
                result: ValueId(1),
                frees: vec![ValueId(0)],
                region: 0,
            },
            Instr {
                op: Op::Rescale { a: ValueId(1) },
                result: ValueId(2),
                frees: vec![ValueId(1)],
                region: 0,
            },
            Instr {
                op: Op::Add {
                    a: ValueId(2),
                    b: ValueId(2),
                },
                result: ValueId(3),
                frees: vec![ValueId(2)],
                region: 0,
            },
        ],
        inputs: vec![InputSignature {
            name: "embeddings".into(),
            embedding: WeightId(0),
            layout,
            level: top,
            scale,
        }],
        outputs: vec![OutputSignature {
            name: "hidden".into(),
            value: ValueId(3),
        }],
        provenance: vec![],
    }
}

#[test]
fn a_well_typed_plan_passes() {
    let info = check(&tiny_plan()).unwrap();
    assert_eq!(info.min_level, 1);
    assert_eq!(info.last_use[0], 1);
    assert_eq!(info.bootstraps, (0, 0));
}

#[test]
fn a_wrong_scale_after_rescale_is_reported() {
    let mut plan = tiny_plan();
    plan.values[2].scale *= 1.5;
    let message = check(&plan).unwrap_err().to_string();
    assert!(
        message.starts_with("instruction 2 (rescale) defines v2 as 2×ct @L1 scale 2^40.5850"),
        "{message}"
    );
}

#[test]
fn a_use_before_definition_is_reported() {
    let mut plan = tiny_plan();
    plan.instrs[1].op = Op::MulPlain {
        a: ValueId(3),
        plain: PlainId(0),
        scale: Q[2] as f64,
    };
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "instruction 1 (mul_plain) uses v3, which is not defined before it"
    );
}

#[test]
fn freeing_a_value_still_in_use_is_reported() {
    let mut plan = tiny_plan();
    plan.instrs[1].frees = vec![];
    plan.instrs[0].frees = vec![ValueId(0)];
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "instruction 0 frees v0, which is still used later"
    );
}

#[test]
fn a_missing_plaintext_is_reported() {
    let mut plan = tiny_plan();
    plan.plains.clear();
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "instruction 1 (mul_plain) refers to plaintext 0, but the plan has 0"
    );
}

#[test]
fn rescaling_below_level_zero_is_reported() {
    let mut plan = tiny_plan();
    plan.inputs[0].level = 0;
    for v in &mut plan.values {
        v.level = 0;
    }
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "instruction 2 (rescale): cannot rescale at level 0"
    );
}

#[test]
fn the_file_format_round_trips_and_rejects_damage() {
    use crate::plan::file::{PlanFileError, from_bytes, to_bytes};
    let plan = tiny_plan();
    let bytes = to_bytes(&plan);
    let path = std::path::Path::new("tiny.plan");
    assert_eq!(from_bytes(&bytes, path, 1 << 20).unwrap(), plan);
    // Same input, same bytes.
    assert_eq!(to_bytes(&plan), bytes);

    let mut corrupt = bytes.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert_eq!(
        from_bytes(&corrupt, path, 1 << 20).unwrap_err().to_string(),
        "tiny.plan: plan checksum mismatch (the file is corrupted)"
    );
    assert_eq!(
        from_bytes(&bytes[..bytes.len() - 3], path, 1 << 20)
            .unwrap_err()
            .to_string(),
        format!(
            "tiny.plan: truncated plan ({} bytes, header announces {})",
            bytes.len() - 3,
            bytes.len()
        )
    );
    assert!(matches!(
        from_bytes(&bytes, path, 10),
        Err(PlanFileError::TooLarge { .. })
    ));
    assert_eq!(
        from_bytes(b"GGUF....", path, 1 << 20)
            .unwrap_err()
            .to_string(),
        "tiny.plan: not an ensi plan (bad magic)"
    );
    let mut other_version = bytes.clone();
    other_version[8] = 9;
    assert_eq!(
        from_bytes(&other_version, path, 1 << 20)
            .unwrap_err()
            .to_string(),
        "tiny.plan: plan format version 9, this runtime reads version 1"
    );
}

#[test]
fn the_text_form_names_every_instruction() {
    let text = crate::plan::text::render(&tiny_plan());
    assert!(text.contains("INSECURE — FOR TESTING ONLY"), "{text}");
    for line in [
        "v0 = input #0",
        "v1 = mul_plain v0, plain#0",
        "v2 = rescale v1",
        "v3 = add v2, v2",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
}

#[test]
fn malformed_table_entries_are_reported() {
    let mut plan = tiny_plan();
    plan.plains[0] = PlainRecipe::ColumnValues {
        values: vec![0.5; 7],
        layout: layout(),
    };
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "plaintext 0: needs 8 finite values, has 7"
    );

    let mut plan = tiny_plan();
    plan.plains[0] = PlainRecipe::ColumnVector {
        weight: WeightId(0),
        factor: 1.0,
        layout: layout(),
    };
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "plaintext 0: weight `model.embed_tokens.weight` is a float matrix, not a vector"
    );

    let mut plan = tiny_plan();
    plan.plains[0] = PlainRecipe::Rope {
        layout: layout(),
        head_dim: 3,
        theta: 10000.0,
        sine: false,
        factor: 1.0,
        position_offset: 0,
    };
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "plaintext 0: head_dim 3 must be even and divide the 8 columns"
    );

    let mut plan = tiny_plan();
    plan.weights[0].shape = [16, 4];
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "input 0: embedding `model.embed_tokens.weight` has 4 columns, the layout 8"
    );
    plan.weights.clear();
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "input 0: refers to weight 0, but the plan has 0"
    );

    let mut plan = tiny_plan();
    plan.plains[0] = PlainRecipe::TokenRange {
        layout: layout(),
        from: 3,
        to: 9,
    };
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "plaintext 0: token range 3..9 is not within the 8 tokens"
    );

    let mut plan = tiny_plan();
    plan.approximations.push(crate::plan::PolyApprox {
        function: "flat".into(),
        lo: 1.0,
        hi: 1.0,
        coefficients: vec![1.0],
        depth: 0,
        max_error: 0.0,
    });
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "approximation 0: `flat` needs a finite interval lo < hi and finite coefficients"
    );
}

#[test]
fn a_layout_claim_cannot_change_the_slot_count() {
    let mut plan = tiny_plan();
    plan.instrs[3].op = Op::Rotate {
        a: ValueId(2),
        steps: 16,
    };
    plan.values[3].layout.slots = 128;
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "instruction 3 (rotate): the result layout has 128 slots, the operand 64"
    );
}

#[test]
fn the_column_method_needs_equal_slot_counts() {
    use crate::plan::op::{LinearMethod, SignedRow};
    let mut plan = tiny_plan();
    let column = |block| Layout::columns_packed(8, 8, block);
    plan.weights.push(WeightRef {
        name: "w".into(),
        kind: WeightKind::Ternary,
        shape: [8, 8],
        digest: [0; 32],
    });
    plan.inputs[0].layout = column(16);
    plan.values[0] = ValueType {
        count: 8,
        layout: column(16),
        ..plan.values[0]
    };
    plan.instrs.truncate(1);
    plan.values.truncate(1);
    plan.outputs[0].value = ValueId(1);
    plan.instrs.push(Instr {
        op: Op::TernaryLinear {
            x: ValueId(0),
            weight: WeightId(1),
            rows: (0..8).map(|row| SignedRow { row, negate: false }).collect(),
            out: column(32),
            method: LinearMethod::Columns,
            plain_scale: 1.0,
        },
        result: ValueId(1),
        frees: vec![ValueId(0)],
        region: 0,
    });
    plan.values.push(ValueType {
        layout: column(32),
        ..plan.values[0]
    });
    assert!(
        check(&plan).unwrap_err().to_string().starts_with(
            "instruction 1 (ternary_linear): the column method needs equal slot counts"
        ),
    );
    plan.instrs[1].op = Op::TernaryLinear {
        x: ValueId(0),
        weight: WeightId(1),
        rows: (0..8).map(|row| SignedRow { row, negate: false }).collect(),
        out: column(16),
        method: LinearMethod::Columns,
        plain_scale: 1.0,
    };
    plan.values[1].layout = column(16);
    check(&plan).unwrap();
}

#[test]
fn products_broadcast_only_over_whole_groups() {
    // Inputs of 2 and 3 ciphertexts (8 and 12 columns, 4 per ciphertext): 3 is no multiple of 2.
    let mut plan = tiny_plan();
    let wide = Layout {
        columns: 12,
        ..layout()
    };
    plan.weights.push(WeightRef {
        name: "other".into(),
        kind: WeightKind::Matrix,
        shape: [16, 12],
        digest: [0; 32],
    });
    plan.inputs.push(InputSignature {
        name: "other".into(),
        embedding: WeightId(1),
        layout: wide,
        ..plan.inputs[0].clone()
    });
    let (a, b) = (
        plan.values[0],
        ValueType {
            count: 3,
            layout: wide,
            ..plan.values[0]
        },
    );
    plan.values = vec![
        a,
        b,
        ValueType {
            scale: a.scale * b.scale,
            ..b
        },
    ];
    plan.instrs = vec![
        Instr {
            op: Op::Input { index: 0 },
            result: ValueId(0),
            frees: vec![],
            region: 0,
        },
        Instr {
            op: Op::Input { index: 1 },
            result: ValueId(1),
            frees: vec![],
            region: 0,
        },
        Instr {
            op: Op::MulCt {
                a: ValueId(0),
                b: ValueId(1),
            },
            result: ValueId(2),
            frees: vec![],
            region: 0,
        },
    ];
    plan.outputs[0].value = ValueId(2);
    assert_eq!(
        check(&plan).unwrap_err().to_string(),
        "instruction 2 (mul): cannot broadcast 2 against 3 ciphertexts (the smaller count must divide the larger)"
    );
}
