//! The bootstrappers a plan's `bootstrap` instructions need: one per (slot count, output level, level-0 input scale), planned from the plan's parameters with the runtime's default circuit (`BootstrapConfig::new`, whose depth the compiler reserves above the user levels). Server side, no secret; the client generates their keys with [`Bootstrappers::add_keys`].

use std::collections::BTreeMap;

use crate::ckks::circuits::bootstrap::{BootstrapConfig, Bootstrapper, generate_bootstrap_keys};
use crate::ckks::scheme::{EvaluationKeys, Evaluator, KeyGenerator, Params};
use crate::plan::{Op, Plan};

use super::super::ExecError;

/// Smallest message ratio q0/Δ0 (in bits) given to level-0 inputs whose scale does not divide
/// the default Δ0: the sine's cubic bias grows as the ratio shrinks.
const MIN_MESSAGE_RATIO_BITS: u32 = 8;

/// What a bootstrapper is planned for: the slot count, the output level, and the scale of a
/// level-0 input (f64 bits; `None` for inputs at level >= 1, which reach any Δ0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Shape {
    slots: usize,
    level: usize,
    level0_scale: Option<u64>,
}

/// The plan's bootstrappers, keyed by their shape (slot count, output level, level-0 input
/// scale).
#[derive(Debug, Default)]
pub struct Bootstrappers {
    by_shape: BTreeMap<Shape, Bootstrapper>,
}

impl Bootstrappers {
    /// Plans (and encodes) the circuit of every distinct shape the plan bootstraps; empty
    /// for a plan without bootstraps.
    pub fn for_plan(plan: &Plan, params: &Params) -> Result<Self, ExecError> {
        let mut by_shape = BTreeMap::new();
        for (index, instr) in plan.instrs.iter().enumerate() {
            let Op::Bootstrap { a, level } = instr.op else {
                continue;
            };
            let input = plan.value(a);
            let slots = input.layout.slots as usize;
            let level = level as usize;
            let shape = Shape {
                slots,
                level,
                level0_scale: (input.level == 0).then(|| input.scale.to_bits()),
            };
            if by_shape.contains_key(&shape) {
                continue;
            }
            let error = |source| ExecError::Bootstrap {
                instr: index,
                source,
            };
            let mut config = BootstrapConfig {
                output_level: Some(level),
                ..BootstrapConfig::new(slots)
            };
            // A level-0 input must reach Δ0 by an integer product; one whose scale does not
            // divide the default Δ0 (a range factor kept in the scale) gets a Δ0 of its own:
            // the largest multiple of its scale at most q0 / 2^MIN_MESSAGE_RATIO_BITS.
            if input.level == 0 {
                let factor = config.level0_scale_on(params) / input.scale;
                if factor < 1.0 || (factor - factor.round()).abs() > 1e-9 * factor {
                    let ceiling = params.q()[0] as f64 / f64::from(MIN_MESSAGE_RATIO_BITS).exp2();
                    let multiple = (ceiling / input.scale).floor().max(1.0);
                    config.level0_scale = Some(input.scale * multiple);
                }
            }
            // Shapes of one slot count share CoeffsToSlots (it ignores the output level and
            // the level-0 scale).
            let bootstrapper = match by_shape
                .values()
                .find(|b: &&Bootstrapper| b.slots() == slots)
            {
                Some(existing) => Bootstrapper::new_sharing(params, config, existing),
                None => Bootstrapper::new(params, config),
            }
            .map_err(error)?;
            by_shape.insert(shape, bootstrapper);
        }
        Ok(Self { by_shape })
    }

    /// True when the plan does not bootstrap.
    pub fn is_empty(&self) -> bool {
        self.by_shape.is_empty()
    }

    /// The bootstrapper refreshing `slots`-slot ciphertexts at `input_level` and
    /// `input_scale` to `level`.
    pub fn get(
        &self,
        slots: usize,
        level: usize,
        input_level: usize,
        input_scale: f64,
    ) -> Option<&Bootstrapper> {
        self.by_shape.get(&Shape {
            slots,
            level,
            level0_scale: (input_level == 0).then(|| input_scale.to_bits()),
        })
    }

    /// Client side: adds the keys every bootstrapper uses (rotations truncated to their
    /// highest level of use, relinearization, the encapsulation pair) to `keys`.
    pub fn add_keys(
        &self,
        keygen: &mut KeyGenerator,
        keys: &mut EvaluationKeys,
    ) -> Result<(), ExecError> {
        // Keys already there at a high enough level are kept; the encapsulation pair is
        // regenerated per bootstrapper (cheap: it lives in the ring of q0 and p0).
        for bootstrapper in self.by_shape.values() {
            generate_bootstrap_keys(keygen, bootstrapper, keys).map_err(|source| {
                ExecError::Scheme {
                    instr: usize::MAX,
                    op: "bootstrap keygen",
                    source,
                }
            })?;
        }
        Ok(())
    }

    /// Server side: every bootstrapper finds its keys in `eval`'s evaluation keys.
    pub fn check_keys(&self, eval: &Evaluator<'_>) -> Result<(), ExecError> {
        for bootstrapper in self.by_shape.values() {
            bootstrapper
                .check_keys(eval)
                .map_err(|source| ExecError::MissingKeys {
                    missing: format!("bootstrapping keys ({source})"),
                })?;
        }
        Ok(())
    }
}
