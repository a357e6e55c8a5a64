//! The encrypted executor: a checked plan run on CKKS ciphertexts with public evaluation keys only, computing what the plaintext executor computes on f64 slots.
//!
//! The semantics of every op are the plaintext executor's (`exec::plaintext`); here each
//! slot vector is one [`Ciphertext`] and each slotwise operation one homomorphic operation:
//!
//! - `add`, `sub`, `neg`, `mul` (with relinearization), `square`, `rescale`, `drop_levels`,
//!   `mul_const`, `add_const`, `relabel` (the scale divided by the factor) map to the
//!   evaluator one to one; `mul` and `mul_plain` broadcast like the plaintext executor.
//! - `mul_plain` and `add_plain` materialize their recipe one ciphertext at a time and encode
//!   it at the level of use (the operand's) and the op's scale (the operand's for `add_plain`).
//! - `rotate`, `rot_sum` are key-switched rotations; `sum_cts`, `slice`, `concat` regroup.
//! - `ternary_linear`: the column method adds and subtracts whole ciphertexts; the diagonal
//!   method is [`BlockDiagonals`]' baby-step giant-step, baby rotations hoisted per input.
//! - `repack`: [`Repacking`]'s masks and rotations in the working width (a sparse source read
//!   as its periodic extension), then the fold into fewer slots.
//! - `poly`: [`PolynomialEvaluator`] landing exactly on the declared scale, then dropped to
//!   the declared level.
//! - `bootstrap`: the runtime's bootstrapper with its default circuit, one per slot count
//!   and output level ([`Bootstrappers`], planned when the executor is built), every
//!   ciphertext of the operand refreshed in parallel; a declared scale k times the
//!   bootstrapper's (the compiler keeps a range factor there) is reached by the integer k.
//!
//! After each instruction every result ciphertext is checked against the plan's declared
//! type (level, slots, scale to 1e-6 relative) and relabelled to the declared scale exactly,
//! so that scales agreeing in the plan agree bit for bit here. Values are dropped after the
//! instruction whose `frees` lists them. The ciphertexts of one op are computed in parallel
//! (rayon), as are the inputs' hoisted rotations and the outputs of a linear layer.
//!
//! The executor holds no secret: [`client`] has the client-side steps (parameters, keys,
//! encryption, decryption) that need the secret key.

mod bootstrap;
pub mod client;
pub mod debug;
pub mod files;
mod profile;

use std::time::Instant;

use rayon::prelude::*;

use super::linear::{BlockDiagonals, ColumnSums};
use super::recipe::materialize_into;
use super::repack::Repacking;
use super::{BoundWeights, ExecError};
use crate::ckks::circuits::{ChebyshevEvaluation, PolynomialEvaluator};
use crate::ckks::numerics::chebyshev::ChebyshevSeries;
use crate::ckks::scheme::{Ciphertext, Error as SchemeError, Evaluator};
use crate::plan::schedule::rot_sum_rotations;
use crate::plan::{Instr, LinearMethod, Op, Plan, PlanInfo, ValueId, ValueType};

pub use bootstrap::Bootstrappers;
pub use profile::{OpTime, Profile};

/// Relative distance between a computed scale and the declared one above which the result
/// is refused: both follow the same primes with the same f64 formulas, so any real
/// disagreement is many orders of magnitude above it.
const SCALE_DRIFT: f64 = 1e-6;

/// The outputs of an encrypted run, still encrypted, with its profile.
#[derive(Debug, Clone)]
pub struct EncryptedRun {
    /// The plan's outputs, `(name, ciphertexts)` in the plan's order.
    pub outputs: Vec<(String, Vec<Ciphertext>)>,
    /// Time and memory.
    pub profile: Profile,
}

/// Runs checked plans on ciphertexts with one evaluator (its public evaluation keys).
#[derive(Debug)]
pub struct EncryptedExecutor<'p, 'k> {
    plan: &'p Plan,
    weights: &'p BoundWeights,
    eval: &'p Evaluator<'k>,
    bootstrappers: Bootstrappers,
}

impl<'p, 'k> EncryptedExecutor<'p, 'k> {
    /// An executor of `plan` (checked: `info`) with `weights` bound to it, evaluating with
    /// `eval`, whose parameters must be the plan's and whose keys must hold every key the
    /// plan needs. A plan that bootstraps gets its bootstrappers planned here (at N = 2^16,
    /// seconds and GiB of encoded diagonals).
    pub fn new(
        plan: &'p Plan,
        info: &PlanInfo,
        weights: &'p BoundWeights,
        eval: &'p Evaluator<'k>,
    ) -> Result<Self, ExecError> {
        if info.last_use.len() != plan.values.len() {
            return Err(ExecError::ForeignInfo);
        }
        if !weights.is_for(plan) {
            return Err(ExecError::ForeignWeights);
        }
        let params = eval.params();
        if params.hash() != plan.params.hash {
            return Err(ExecError::ForeignParams {
                what: "the evaluation keys".into(),
                expected: client::short_hash(&plan.params.hash),
                found: params.short_hash(),
            });
        }
        let keys = eval.keys();
        let mut missing = Vec::new();
        if plan.needs_relinearization && keys.relin().is_none() {
            missing.push("the relinearization key".to_owned());
        }
        let galois: Vec<String> = plan
            .galois_elements
            .iter()
            .filter(|&&g| g != 1 && keys.galois(g).is_none())
            .map(u64::to_string)
            .collect();
        if !galois.is_empty() {
            missing.push(format!(
                "{} of the plan's {} Galois keys (elements {})",
                galois.len(),
                plan.galois_elements.len(),
                galois.join(", ")
            ));
        }
        if !missing.is_empty() {
            return Err(ExecError::MissingKeys {
                missing: missing.join(" and "),
            });
        }
        let bootstrappers = Bootstrappers::for_plan(plan, params)?;
        bootstrappers.check_keys(eval)?;
        Ok(Self {
            plan,
            weights,
            eval,
            bootstrappers,
        })
    }

    /// Runs the plan on `inputs` (one ciphertext vector per plan input, in its layout, at its
    /// level and scale).
    pub fn run(&self, inputs: Vec<Vec<Ciphertext>>) -> Result<EncryptedRun, ExecError> {
        self.run_observed(inputs, |_, _| {})
    }

    /// [`Self::run`], showing `observe` every instruction's result as soon as it is computed:
    /// `(instruction index, ciphertexts)`. A client-side debugger decrypts them there.
    pub fn run_observed(
        &self,
        inputs: Vec<Vec<Ciphertext>>,
        mut observe: impl FnMut(usize, &[Ciphertext]),
    ) -> Result<EncryptedRun, ExecError> {
        let plan = self.plan;
        if inputs.len() != plan.inputs.len() {
            return Err(ExecError::InputCount {
                expected: plan.inputs.len(),
                found: inputs.len(),
            });
        }
        let mut checked = Vec::with_capacity(inputs.len());
        for (signature, mut cts) in plan.inputs.iter().zip(inputs) {
            let declared = ValueType {
                count: signature.layout.ciphertexts(),
                level: signature.level,
                scale: signature.scale,
                layout: signature.layout,
                zero_padding: true,
            };
            check_ciphertexts(
                plan,
                &format!("input `{}`", signature.name),
                &declared,
                &mut cts,
            )?;
            checked.push(Some(cts));
        }
        let mut machine = Machine {
            plan,
            weights: self.weights,
            eval: self.eval,
            bootstrappers: &self.bootstrappers,
            inputs: checked,
            values: vec![None; plan.values.len()],
        };
        let mut profile = Profile {
            threads: rayon::current_num_threads(),
            ..Profile::default()
        };
        let (mut live_bytes, mut live_cts) = (0u64, 0u64);
        for (index, instr) in plan.instrs.iter().enumerate() {
            let op = instr.op.mnemonic();
            let start = Instant::now();
            let mut result = machine.execute(index, instr)?;
            check_result(plan, index, instr, &mut result)?;
            let time = start.elapsed();
            profile.record(
                op,
                region_name(plan, instr.region),
                result.len() as u64,
                time,
            );
            live_bytes += bytes(&result);
            live_cts += result.len() as u64;
            profile.peak_bytes = profile.peak_bytes.max(live_bytes);
            profile.peak_ciphertexts = profile.peak_ciphertexts.max(live_cts);
            observe(index, &result);
            machine.values[index] = Some(result);
            for &freed in &instr.frees {
                if let Some(value) = machine.values[freed.0 as usize].take() {
                    live_bytes -= bytes(&value);
                    live_cts -= value.len() as u64;
                }
            }
        }
        let mut outputs = Vec::with_capacity(plan.outputs.len());
        for output in &plan.outputs {
            let value = machine
                .values
                .get(output.value.0 as usize)
                .and_then(Option::as_ref)
                .ok_or(ExecError::DeadOperand {
                    instr: usize::MAX,
                    value: output.value,
                })?;
            outputs.push((output.name.clone(), value.clone()));
        }
        Ok(EncryptedRun { outputs, profile })
    }
}

fn bytes(cts: &[Ciphertext]) -> u64 {
    cts.iter().map(|c| c.size_bytes() as u64).sum()
}

/// `layer 0 attention`, `embedding`, ... for region `region`.
fn region_name(plan: &Plan, region: u32) -> String {
    match plan.regions.get(region as usize) {
        Some(r) => match r.layer {
            Some(layer) => format!("layer {layer} {}", r.block),
            None => r.block.clone(),
        },
        None => format!("region {region}"),
    }
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}

/// Checks that `cts` have the count, parameters, level, slots and (to [`SCALE_DRIFT`])
/// scale of `declared`, and relabels them to the declared scale exactly.
fn check_ciphertexts(
    plan: &Plan,
    what: &str,
    declared: &ValueType,
    cts: &mut [Ciphertext],
) -> Result<(), ExecError> {
    if cts.len() != declared.count as usize {
        return Err(ExecError::CiphertextCount {
            what: what.to_owned(),
            expected: declared.count as usize,
            found: cts.len(),
        });
    }
    for (i, ct) in cts.iter_mut().enumerate() {
        let problem = if ct.params_hash() != plan.params.hash {
            Some(format!(
                "was made for CKKS parameters {}, the plan's are {}",
                client::short_hash(&ct.params_hash()),
                client::short_hash(&plan.params.hash)
            ))
        } else if ct.level() != declared.level as usize {
            Some(format!(
                "is at level {}, the plan expects {}",
                ct.level(),
                declared.level
            ))
        } else if ct.slots() != declared.layout.slots as usize {
            Some(format!(
                "has {} slots, the plan expects {}",
                ct.slots(),
                declared.layout.slots
            ))
        } else if relative(ct.scale(), declared.scale) > SCALE_DRIFT {
            Some(format!(
                "has scale 2^{:.6}, the plan expects 2^{:.6}",
                ct.scale().log2(),
                declared.scale.log2()
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ExecError::CiphertextType {
                what: what.to_owned(),
                ciphertext: i,
                problem,
            });
        }
        ct.set_scale(declared.scale);
    }
    Ok(())
}

/// [`check_ciphertexts`] for an instruction's result: a mismatch is a drift.
fn check_result(
    plan: &Plan,
    index: usize,
    instr: &Instr,
    result: &mut [Ciphertext],
) -> Result<(), ExecError> {
    let declared = plan.value(instr.result);
    check_ciphertexts(plan, "", declared, result).map_err(|error| {
        let problem = match error {
            ExecError::CiphertextType {
                ciphertext,
                problem,
                ..
            } => format!("a ciphertext {ciphertext} that {problem}"),
            ExecError::CiphertextCount { found, .. } => format!("{found} ciphertexts"),
            other => other.to_string(),
        };
        ExecError::TypeDrift {
            instr: index,
            op: instr.op.mnemonic(),
            problem,
            declared: format!(
                "{} ciphertexts at level {}, scale 2^{:.6}, {} slots",
                declared.count,
                declared.level,
                declared.scale.log2(),
                declared.layout.slots
            ),
        }
    })
}

/// The state of one run.
struct Machine<'r, 'k> {
    plan: &'r Plan,
    weights: &'r BoundWeights,
    eval: &'r Evaluator<'k>,
    bootstrappers: &'r Bootstrappers,
    inputs: Vec<Option<Vec<Ciphertext>>>,
    values: Vec<Option<Vec<Ciphertext>>>,
}

/// Maps a scheme error of instruction `instr` to an [`ExecError`].
fn scheme(instr: usize, op: &'static str) -> impl Fn(SchemeError) -> ExecError + Sync + Send {
    move |source| ExecError::Scheme { instr, op, source }
}

fn live(
    values: &[Option<Vec<Ciphertext>>],
    instr: usize,
    value: ValueId,
) -> Result<&[Ciphertext], ExecError> {
    values
        .get(value.0 as usize)
        .and_then(Option::as_ref)
        .map(Vec::as_slice)
        .ok_or(ExecError::DeadOperand { instr, value })
}

impl<'k> Machine<'_, 'k> {
    fn operand(&self, instr: usize, value: ValueId) -> Result<&[Ciphertext], ExecError> {
        live(&self.values, instr, value)
    }

    /// The value `value` to update in place: moved out when `instr` frees it and uses it
    /// once, copied otherwise.
    fn owned(
        &mut self,
        index: usize,
        instr: &Instr,
        value: ValueId,
    ) -> Result<Vec<Ciphertext>, ExecError> {
        let uses = instr.op.operands().iter().filter(|&&v| v == value).count();
        if uses == 1 && instr.frees.contains(&value) {
            self.values
                .get_mut(value.0 as usize)
                .and_then(Option::take)
                .ok_or(ExecError::DeadOperand {
                    instr: index,
                    value,
                })
        } else {
            self.operand(index, value).map(<[Ciphertext]>::to_vec)
        }
    }

    /// `owned(a)` with `f` applied to every ciphertext, in parallel.
    fn map(
        &mut self,
        index: usize,
        instr: &Instr,
        a: ValueId,
        f: impl Fn(&Evaluator<'k>, &mut Ciphertext) -> Result<(), SchemeError> + Sync,
    ) -> Result<Vec<Ciphertext>, ExecError> {
        let mut x = self.owned(index, instr, a)?;
        let eval = self.eval;
        x.par_iter_mut()
            .try_for_each(|ct| f(eval, ct))
            .map_err(scheme(index, instr.op.mnemonic()))?;
        Ok(x)
    }

    /// `owned(a) ∘= b` ciphertext by ciphertext, `b` broadcast over groups when it has fewer
    /// ciphertexts (the plaintext executor's rule); `b`'s scale is aligned with `a`'s when
    /// the plan calls them equal.
    fn zip(
        &mut self,
        index: usize,
        instr: &Instr,
        a: ValueId,
        b: ValueId,
        f: impl Fn(&Evaluator<'k>, &mut Ciphertext, &Ciphertext) -> Result<(), SchemeError> + Sync,
    ) -> Result<Vec<Ciphertext>, ExecError> {
        let mut x = self.owned(index, instr, a)?;
        let y = self.operand(index, b)?;
        let group = (x.len() / y.len().max(1)).max(1);
        let eval = self.eval;
        x.par_iter_mut()
            .enumerate()
            .try_for_each(|(i, ct)| f(eval, ct, &y[i / group]))
            .map_err(scheme(index, instr.op.mnemonic()))?;
        Ok(x)
    }

    fn execute(&mut self, index: usize, instr: &Instr) -> Result<Vec<Ciphertext>, ExecError> {
        let plan = self.plan;
        let eval = self.eval;
        let op = instr.op.mnemonic();
        let err = scheme(index, op);
        Ok(match &instr.op {
            Op::Input { index: input } => {
                // Moved out on its last use, cloned before.
                let again = plan.instrs[index + 1..]
                    .iter()
                    .any(|later| later.op == Op::Input { index: *input });
                let slot = self.inputs.get_mut(*input as usize);
                let value = if again {
                    slot.and_then(|s| s.clone())
                } else {
                    slot.and_then(Option::take)
                };
                value.ok_or(ExecError::InputCount {
                    expected: plan.inputs.len(),
                    found: *input as usize,
                })?
            }
            Op::Add { a, b } => self.zip(index, instr, *a, *b, |e, x, y| {
                e.add_assign(x, &aligned(x, y))
            })?,
            Op::Sub { a, b } => self.zip(index, instr, *a, *b, |e, x, y| {
                e.sub_assign(x, &aligned(x, y))
            })?,
            Op::Neg { a } => self.map(index, instr, *a, |e, x| e.neg_assign(x))?,
            Op::MulCt { a, b } => {
                let wide = if plan.value(*a).count >= plan.value(*b).count {
                    (*a, *b)
                } else {
                    (*b, *a)
                };
                self.zip(index, instr, wide.0, wide.1, |e, x, y| {
                    *x = e.mul_relin(x, y)?;
                    Ok(())
                })?
            }
            Op::Square { a } => self.map(index, instr, *a, |e, x| {
                *x = e.square(x)?;
                Ok(())
            })?,
            Op::Rescale { a } => self.map(index, instr, *a, |e, x| e.rescale_assign(x))?,
            Op::DropLevels { a, levels } => {
                let levels = *levels as usize;
                self.map(index, instr, *a, |e, x| e.drop_levels_assign(x, levels))?
            }
            Op::Bootstrap { a, level } => {
                let input = plan.value(*a);
                let bootstrapper = self
                    .bootstrappers
                    .get(
                        input.layout.slots as usize,
                        *level as usize,
                        input.level as usize,
                        input.scale,
                    )
                    .ok_or(ExecError::BootstrapUnavailable { instr: index })?;
                // The bootstrapper lands on the default scale of its level with the input's
                // value; a plan declaring an integer multiple k of that scale (a range factor
                // kept in the scale) gets the message times k, exactly, without a level.
                let declared = plan.value(instr.result).scale;
                let ratio = declared / bootstrapper.output_scale();
                let k = ratio.round();
                if k < 1.0 || k > f64::from(1u32 << 30) || relative(ratio, k) > SCALE_DRIFT {
                    return Err(ExecError::TypeDrift {
                        instr: index,
                        op: instr.op.mnemonic(),
                        problem: format!(
                            "a bootstrap output at scale 2^{:.6}",
                            bootstrapper.output_scale().log2()
                        ),
                        declared: format!(
                            "scale 2^{:.6}, not an integer multiple of it",
                            declared.log2()
                        ),
                    });
                }
                let eval = self.eval;
                self.operand(index, *a)?
                    .par_iter()
                    .map(|ct| {
                        let refreshed = bootstrapper.bootstrap(eval, ct).map_err(|source| {
                            ExecError::Bootstrap {
                                instr: index,
                                source,
                            }
                        })?;
                        if k == 1.0 {
                            return Ok(refreshed);
                        }
                        let mut scaled = eval.mul_int(&refreshed, k as i64).map_err(|source| {
                            ExecError::Scheme {
                                instr: index,
                                op: "bootstrap",
                                source,
                            }
                        })?;
                        scaled.set_scale(declared);
                        Ok(scaled)
                    })
                    .collect::<Result<Vec<_>, ExecError>>()?
            }
            Op::MulPlain { a, plain, scale } => {
                let recipe = &plan.plains[plain.0 as usize];
                let slots = recipe.layout().slots as usize;
                let count = recipe.layout().ciphertexts();
                let x = self.operand(index, *a)?;
                let weights = self.weights;
                (0..count)
                    .into_par_iter()
                    .map(|i| {
                        let ct = &x[if x.len() == 1 { 0 } else { i as usize }];
                        let mut values = vec![0.0; slots];
                        materialize_into(recipe, weights, i, &mut values)?;
                        let pt = eval
                            .encoder()
                            .encode_real(&values, ct.level(), *scale)
                            .map_err(&err)?;
                        eval.mul_plain(ct, &pt).map_err(&err)
                    })
                    .collect::<Result<Vec<_>, ExecError>>()?
            }
            Op::AddPlain { a, plain } => {
                let recipe = &plan.plains[plain.0 as usize];
                let slots = recipe.layout().slots as usize;
                let weights = self.weights;
                let mut x = self.owned(index, instr, *a)?;
                x.par_iter_mut().enumerate().try_for_each(|(i, ct)| {
                    let mut values = vec![0.0; slots];
                    materialize_into(recipe, weights, i as u32, &mut values)?;
                    let pt = eval
                        .encoder()
                        .encode_real(&values, ct.level(), ct.scale())
                        .map_err(&err)?;
                    eval.add_plain_assign(ct, &pt).map_err(&err)
                })?;
                x
            }
            Op::MulConst { a, value, scale } => {
                let (value, scale) = (*value, *scale);
                self.map(index, instr, *a, |e, x| e.mul_const_assign(x, value, scale))?
            }
            Op::AddConst { a, value } => {
                let value = *value;
                self.map(index, instr, *a, |e, x| e.add_const_assign(x, value))?
            }
            Op::Relabel { a, factor } => {
                let factor = *factor;
                self.map(index, instr, *a, |_, x| {
                    x.set_scale(x.scale() / factor);
                    Ok(())
                })?
            }
            Op::Rotate { a, steps } => {
                let steps = i64::from(*steps);
                self.map(index, instr, *a, |e, x| {
                    if steps.rem_euclid(x.slots() as i64) != 0 {
                        *x = e.rotate(x, steps)?;
                    }
                    Ok(())
                })?
            }
            Op::RotSum {
                a,
                step,
                count: terms,
            } => {
                let strides: Vec<i64> = rot_sum_rotations(*step, *terms).map(i64::from).collect();
                self.map(index, instr, *a, |e, x| {
                    for &stride in &strides {
                        let rotated = e.rotate(x, stride)?;
                        e.add_assign(x, &rotated)?;
                    }
                    Ok(())
                })?
            }
            Op::SumCiphertexts { a, group } => {
                let x = self.operand(index, *a)?;
                x.par_chunks(*group as usize)
                    .map(|run| {
                        let mut sum = run[0].clone();
                        for ct in &run[1..] {
                            let term = aligned(&sum, ct);
                            eval.add_assign(&mut sum, &term)?;
                        }
                        Ok(sum)
                    })
                    .collect::<Result<Vec<_>, SchemeError>>()
                    .map_err(&err)?
            }
            Op::Slice { a, start, count } => {
                let range = *start as usize..(*start + *count) as usize;
                if instr.frees.contains(a) {
                    let mut x = self.owned(index, instr, *a)?;
                    x.drain(range).collect()
                } else {
                    self.operand(index, *a)?[range].to_vec()
                }
            }
            Op::Concat { parts } => {
                let mut out = Vec::new();
                for &part in parts {
                    out.extend(self.owned(index, instr, part)?);
                }
                out
            }
            Op::TernaryLinear {
                x,
                weight,
                rows,
                out,
                method,
                plain_scale,
            } => {
                let matrix = self.weights.ternary(*weight)?;
                let input = self.operand(index, *x)?;
                match method {
                    LinearMethod::Columns => {
                        let sums = ColumnSums::new(matrix, rows);
                        column_sums(eval, &sums, input).map_err(&err)?
                    }
                    LinearMethod::Diagonals { baby_steps } => {
                        let layout = plan.value(*x).layout;
                        let diagonals =
                            BlockDiagonals::new(matrix, rows, &layout, out, *baby_steps);
                        block_diagonals(eval, &diagonals, input, *plain_scale).map_err(&err)?
                    }
                }
            }
            Op::Poly { a, approx } => {
                let poly = &plan.approximations[approx.0 as usize];
                let series = ChebyshevSeries::new(poly.lo, poly.hi, poly.coefficients.clone())
                    .map_err(|e| {
                        err(SchemeError::InvalidArgument(format!(
                            "approximation `{}`: {e}",
                            poly.function
                        )))
                    })?;
                let evaluation = ChebyshevEvaluation::new(series, None);
                let declared = plan.value(instr.result);
                let (level, scale) = (declared.level as usize, declared.scale);
                let x = self.operand(index, *a)?;
                let polys = PolynomialEvaluator::new(eval);
                x.par_iter()
                    .map(|ct| {
                        let y = polys.evaluate(ct, &evaluation, Some(scale))?;
                        if y.level() > level {
                            eval.drop_to_level(&y, level)
                        } else {
                            Ok(y)
                        }
                    })
                    .collect::<Result<Vec<_>, SchemeError>>()
                    .map_err(&err)?
            }
            Op::Repack { a, to, mask_scale } => {
                let repacking = Repacking::new(&plan.value(*a).layout, to);
                let x = self.operand(index, *a)?;
                repack(eval, &repacking, x, to.ciphertexts(), to.slots, *mask_scale)
                    .map_err(&err)?
            }
        })
    }
}

/// `y` relabelled to `x`'s scale when the two differ by rounding only (the plan calls them
/// equal; results are relabelled to the plan's scales, which agree to 1e-9).
fn aligned<'c>(x: &Ciphertext, y: &'c Ciphertext) -> std::borrow::Cow<'c, Ciphertext> {
    if x.scale() == y.scale() || relative(x.scale(), y.scale()) > SCALE_DRIFT {
        std::borrow::Cow::Borrowed(y)
    } else {
        let mut y = y.clone();
        y.set_scale(x.scale());
        std::borrow::Cow::Owned(y)
    }
}

/// A ciphertext of zeros shaped like `like` (level, scale, slots): `like · 0`.
fn zero_like(eval: &Evaluator<'_>, like: &Ciphertext) -> Result<Ciphertext, SchemeError> {
    eval.mul_int(like, 0)
}

/// The column method: output `j` is `Σ ± x_i` (a zero ciphertext for an all-zero row).
fn column_sums(
    eval: &Evaluator<'_>,
    sums: &ColumnSums,
    x: &[Ciphertext],
) -> Result<Vec<Ciphertext>, SchemeError> {
    (0..sums.outputs())
        .into_par_iter()
        .map(|j| {
            let terms = sums.terms(j);
            let Some((first, rest)) = terms.split_first() else {
                return zero_like(eval, &x[0]);
            };
            let mut acc = x[first.column as usize].clone();
            if first.negate {
                eval.neg_assign(&mut acc)?;
            }
            for term in rest {
                let input = &x[term.column as usize];
                if term.negate {
                    eval.sub_assign(&mut acc, input)?;
                } else {
                    eval.add_assign(&mut acc, input)?;
                }
            }
            Ok(acc)
        })
        .collect()
}

/// The block-diagonal method ([`BlockDiagonals`]): for each input, its baby-step rotations
/// from one hoisted decomposition; for each output and giant step, the products with the
/// pre-rotated diagonals (encoded at the input's level and `plain_scale`), summed and
/// rotated once.
fn block_diagonals(
    eval: &Evaluator<'_>,
    diagonals: &BlockDiagonals,
    x: &[Ciphertext],
    plain_scale: f64,
) -> Result<Vec<Ciphertext>, SchemeError> {
    let pattern = diagonals.pattern();
    let schedule = pattern.schedule().clone();
    let block = i64::from(schedule.block);
    let slots = x[0].slots();
    let level = x[0].level();
    // baby[i][j]: rotation of input i by j blocks, if some nonzero diagonal uses it.
    let baby: Vec<Vec<Option<Ciphertext>>> = (0..pattern.input_ciphertexts())
        .into_par_iter()
        .map(|input| {
            let used: Vec<u32> = (0..schedule.baby)
                .filter(|&j| {
                    (0..pattern.output_ciphertexts()).any(|output| {
                        (0..schedule.giant).any(|g| {
                            schedule
                                .diagonal(g, j)
                                .is_some_and(|r| pattern.is_nonzero(output, input, r))
                        })
                    })
                })
                .collect();
            let mut rotated = vec![None; schedule.baby as usize];
            let steps: Vec<i64> = used.iter().map(|&j| i64::from(j) * block).collect();
            let cts = eval.rotate_hoisted(&x[input as usize], &steps)?;
            for (&j, ct) in used.iter().zip(cts) {
                rotated[j as usize] = Some(ct);
            }
            Ok(rotated)
        })
        .collect::<Result<_, SchemeError>>()?;
    (0..pattern.output_ciphertexts())
        .into_par_iter()
        .map(|output| {
            let mut y: Option<Ciphertext> = None;
            let mut values = vec![0.0; slots];
            for giant in 0..schedule.giant {
                let mut acc: Option<Ciphertext> = None;
                for (input, j) in pattern.giant_step_terms(output, giant) {
                    let Some(rotated) = &baby[input as usize][j as usize] else {
                        continue;
                    };
                    diagonals.fill_prerotated(output, input, giant, j, &mut values);
                    let pt = eval.encoder().encode_real(&values, level, plain_scale)?;
                    let term = eval.mul_plain(rotated, &pt)?;
                    match &mut acc {
                        None => acc = Some(term),
                        Some(acc) => eval.add_assign(acc, &term)?,
                    }
                }
                let Some(mut acc) = acc else { continue };
                let shift = i64::from(giant * schedule.baby) * block;
                if shift.rem_euclid(slots as i64) != 0 {
                    acc = eval.rotate(&acc, shift)?;
                }
                match &mut y {
                    None => y = Some(acc),
                    Some(y) => eval.add_assign(y, &acc)?,
                }
            }
            match y {
                Some(y) => Ok(y),
                None => {
                    let mut zero = zero_like(eval, &x[0])?;
                    zero.set_scale(x[0].scale() * plain_scale);
                    Ok(zero)
                }
            }
        })
        .collect()
}

/// [`Repacking`] on ciphertexts: per destination, the masked sources (read in the working
/// width), rotated and summed, then folded into the destination's slot count.
fn repack(
    eval: &Evaluator<'_>,
    repacking: &Repacking,
    x: &[Ciphertext],
    destinations: u32,
    to_slots: u32,
    mask_scale: f64,
) -> Result<Vec<Ciphertext>, SchemeError> {
    let width = repacking.width();
    let folds: Vec<i64> = repacking.fold_rotations().map(i64::from).collect();
    (0..destinations)
        .into_par_iter()
        .map(|destination| {
            let mut acc: Option<Ciphertext> = None;
            let mut mask = vec![0.0; width];
            for (index, m) in repacking.moves().iter().enumerate() {
                if m.to != destination {
                    continue;
                }
                let mut source = x[m.from as usize].clone();
                source.set_slots(width);
                repacking.fill_mask(index, &mut mask);
                let pt = eval
                    .encoder()
                    .encode_real(&mask, source.level(), mask_scale)?;
                let mut term = eval.mul_plain(&source, &pt)?;
                if i64::from(m.rotation).rem_euclid(width as i64) != 0 {
                    term = eval.rotate(&term, i64::from(m.rotation))?;
                }
                match &mut acc {
                    None => acc = Some(term),
                    Some(acc) => eval.add_assign(acc, &term)?,
                }
            }
            let mut acc = match acc {
                Some(acc) => acc,
                None => {
                    let mut zero = zero_like(eval, &x[0])?;
                    zero.set_slots(width);
                    zero.set_scale(x[0].scale() * mask_scale);
                    zero
                }
            };
            for &stride in &folds {
                let rotated = eval.rotate(&acc, stride)?;
                eval.add_assign(&mut acc, &rotated)?;
            }
            acc.set_slots(to_slots as usize);
            Ok(acc)
        })
        .collect()
}
