//! The client's side of an encrypted run: the plan's parameters rebuilt and checked, its evaluation keys, inputs encrypted in their layouts, outputs decrypted and decoded.
//!
//! Everything here that takes a [`SecretKey`](crate::ckks::scheme::SecretKey) (through a
//! [`KeyGenerator`], [`Encryptor`] or [`Decryptor`]) runs on the client; the server needs
//! only [`plan_params`] and the [`EvaluationKeys`] made by [`evaluation_keys`].

use crate::ckks::scheme::{
    Ciphertext, Decryptor, Encryptor, EvaluationKeys, KeyGenerator, Params, Security,
};
use crate::exec::codec::{Activation, check_shape, decode_with_spread, encode_input};
use crate::exec::{DecodedOutput, ExecError, SlotVectors};
use crate::plan::{Layout, Plan, ValueId};

/// The first 8 bytes of a parameter hash in hex (as [`Params::short_hash`] prints them).
pub fn short_hash(hash: &[u8; 32]) -> String {
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The checked CKKS parameters of `plan`, rebuilt from its literal and primes; their hash
/// must be the one the plan states (keys, ciphertexts and files carry it).
pub fn plan_params(plan: &Plan) -> Result<Params, ExecError> {
    let stated = &plan.params;
    let params = match stated.security {
        Security::Bits128 => Params::with_primes(&stated.literal, &stated.q, &stated.p)?,
        Security::InsecureForTesting => {
            Params::insecure_with_primes(&stated.literal, &stated.q, &stated.p)?
        }
        Security::StatedEstimate { bits } => {
            return Err(ExecError::PlanParams {
                reason: format!(
                    "a sparse secret accepted on a stated {bits}-bit estimate cannot be rebuilt \
                     from a plan yet"
                ),
            });
        }
    };
    if params.hash() != stated.hash {
        return Err(ExecError::PlanParams {
            reason: format!(
                "rebuilt from the plan's literal and primes they hash to {}, the plan states {}",
                params.short_hash(),
                short_hash(&stated.hash)
            ),
        });
    }
    Ok(params)
}

/// The evaluation keys `plan` needs: relinearization (if it multiplies ciphertexts) and
/// exactly the plan's Galois elements, plus the keys of its bootstrappers when it bootstraps.
///
/// The plan's own rotations act on its values, so their keys are truncated to the highest
/// level a value sits at: with bootstrapping that is the top of the user levels, about half
/// the chain, and a truncated key has half the limbs and half the digits (a quarter of the
/// memory). The bootstrappers' rotations (CoeffsToSlots at the top of the chain) bring
/// their own keys, each at its highest level of use; an element both use is generated once,
/// at the higher level.
pub fn evaluation_keys(
    plan: &Plan,
    keygen: &mut KeyGenerator,
) -> Result<EvaluationKeys, ExecError> {
    let scheme = |source| ExecError::Scheme {
        instr: usize::MAX,
        op: "keygen",
        source,
    };
    check_params(plan, keygen.params().hash(), "the key generator")?;
    let ring = keygen.params().ring().clone();
    let elements = plan
        .galois_elements
        .iter()
        .map(|&g| ring.galois_element(g))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| scheme(e.into()))?;
    let mut keys = keygen
        .evaluation_keys_for(&[], plan.needs_relinearization)
        .map_err(scheme)?;
    if plan.needs_bootstrapping {
        // The bootstrappers' key lists come from planning their circuits (the server plans
        // the same ones from the same parameters).
        let params = keygen.params().clone();
        super::Bootstrappers::for_plan(plan, &params)?.add_keys(keygen, &mut keys)?;
    }
    let top = plan.max_value_level();
    for g in elements {
        if g.value() == 1 || keys.galois(g.value()).is_some_and(|k| k.level() >= top) {
            continue;
        }
        let key = keygen.galois_key_at_level(g, top).map_err(scheme)?;
        keys.insert_galois(g.value(), key);
    }
    Ok(keys)
}

fn check_params(plan: &Plan, found: [u8; 32], what: &str) -> Result<(), ExecError> {
    if found == plan.params.hash {
        Ok(())
    } else {
        Err(ExecError::ForeignParams {
            what: what.to_owned(),
            expected: short_hash(&plan.params.hash),
            found: short_hash(&found),
        })
    }
}

/// Encrypts `activations` (one `[T, d]` per plan input, e.g. [`super::super::embed_tokens`])
/// in each input's layout, at its level and scale.
pub fn encrypt_inputs(
    plan: &Plan,
    encryptor: &mut Encryptor<'_>,
    activations: &[Activation],
) -> Result<Vec<Vec<Ciphertext>>, ExecError> {
    if activations.len() != plan.inputs.len() {
        return Err(ExecError::InputCount {
            expected: plan.inputs.len(),
            found: activations.len(),
        });
    }
    plan.inputs
        .iter()
        .zip(activations)
        .map(|(input, x)| {
            let slots = encode_input(input, x)?;
            slots
                .iter()
                .map(|values| {
                    encryptor
                        .encrypt_real(values, input.level as usize, input.scale)
                        .map_err(|source| ExecError::Scheme {
                            instr: usize::MAX,
                            op: "encrypt",
                            source,
                        })
                })
                .collect()
        })
        .collect()
}

/// Decrypts ciphertexts of `layout` to slot vectors (checking their count and slots).
pub fn decrypt_slots(
    plan: &Plan,
    decryptor: &Decryptor<'_>,
    layout: &Layout,
    cts: &[Ciphertext],
    what: &str,
) -> Result<SlotVectors, ExecError> {
    let slots = cts
        .iter()
        .enumerate()
        .map(|(i, ct)| {
            check_params(plan, ct.params_hash(), what)?;
            if ct.slots() != layout.slots as usize {
                return Err(ExecError::CiphertextType {
                    what: what.to_owned(),
                    ciphertext: i,
                    problem: format!(
                        "has {} slots, the plan expects {}",
                        ct.slots(),
                        layout.slots
                    ),
                });
            }
            decryptor
                .decrypt_real(ct)
                .map_err(|source| ExecError::Scheme {
                    instr: usize::MAX,
                    op: "decrypt",
                    source,
                })
        })
        .collect::<Result<SlotVectors, _>>()?;
    check_shape(layout, &slots, what)?;
    Ok(slots)
}

/// Decrypts the value `value` of `plan` (an output, or any instruction's result when
/// debugging) to slot vectors.
pub fn decrypt_value(
    plan: &Plan,
    decryptor: &Decryptor<'_>,
    value: ValueId,
    cts: &[Ciphertext],
) -> Result<SlotVectors, ExecError> {
    let layout =
        plan.values
            .get(value.0 as usize)
            .map(|t| t.layout)
            .ok_or(ExecError::DeadOperand {
                instr: usize::MAX,
                value,
            })?;
    decrypt_slots(plan, decryptor, &layout, cts, &format!("value {value}"))
}

/// Decrypts and decodes the plan's outputs, given as `(name, ciphertexts)` in any order.
pub fn decrypt_outputs(
    plan: &Plan,
    decryptor: &Decryptor<'_>,
    outputs: &[(String, Vec<Ciphertext>)],
) -> Result<Vec<DecodedOutput>, ExecError> {
    plan.outputs
        .iter()
        .map(|signature| {
            let what = format!("output `{}`", signature.name);
            let cts = outputs
                .iter()
                .find(|(name, _)| *name == signature.name)
                .map(|(_, cts)| cts)
                .ok_or_else(|| ExecError::CiphertextCount {
                    what: what.clone(),
                    expected: plan.value(signature.value).count as usize,
                    found: 0,
                })?;
            let layout = plan.value(signature.value).layout;
            let slots = decrypt_slots(plan, decryptor, &layout, cts, &what)?;
            let (value, replica_spread) = decode_with_spread(&layout, &slots)?;
            Ok(DecodedOutput {
                name: signature.name.clone(),
                value,
                replica_spread,
            })
        })
        .collect()
}
