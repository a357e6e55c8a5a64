//! The keys of bootstrapping: which Galois elements the circuit uses and at which highest level (so keys used only low, by SlotsToCoeffs, are generated truncated), and the client-side helper that generates them with the encapsulation keys into `EvaluationKeys`.

use std::collections::BTreeMap;

use crate::ckks::scheme::{Error, EvaluationKeys, KeyGenerator};

use super::Bootstrapper;
use super::mod_raise::trace_steps;

/// One key the bootstrapping circuit uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootstrapKeyRequirement {
    /// A Galois key, used at levels up to `level`.
    Galois {
        /// The Galois element.
        element: u64,
        /// The highest level it is used at.
        level: usize,
    },
    /// The relinearization key (EvalMod).
    Relinearization,
    /// The two encapsulation keys (dense -> sparse at level 0, sparse -> dense at the top).
    Encapsulation {
        /// Hamming weight of the ephemeral secret.
        hamming_weight: u32,
    },
}

/// Every key of `b`'s circuit: Galois elements with their highest level of use, sorted by
/// element, then relinearization and encapsulation.
pub(crate) fn requirements(b: &Bootstrapper) -> Vec<BootstrapKeyRequirement> {
    let ring = b.params.ring();
    let mut galois: BTreeMap<u64, usize> = BTreeMap::new();
    let mut need = |g: u64, level: usize| {
        if g != 1 {
            let e = galois.entry(g).or_insert(level);
            *e = (*e).max(level);
        }
    };
    let slots = b.config.slots;
    if slots < b.params.max_slots() {
        for step in trace_steps(b.params.max_slots(), slots) {
            need(ring.rotation(step).value(), b.levels.raise);
        }
    }
    for step in b.cts.iter().chain(&b.stc) {
        for g in step.transform.galois_elements(ring) {
            need(g.value(), step.transform.level());
        }
    }
    need(ring.conjugation().value(), b.levels.raise - b.levels.cts);
    let mut out: Vec<BootstrapKeyRequirement> = galois
        .into_iter()
        .map(|(element, level)| BootstrapKeyRequirement::Galois { element, level })
        .collect();
    out.push(BootstrapKeyRequirement::Relinearization);
    out.push(BootstrapKeyRequirement::Encapsulation {
        hamming_weight: b.config.hamming_weight,
    });
    out
}

/// Client side: generates every key `bootstrapper` uses from `keygen`'s secret into
/// `keys` (relinearization if absent, each Galois key truncated to its highest level of
/// use unless a key of that element at a level at least as high is already there, the two
/// encapsulation keys).
pub fn generate_bootstrap_keys(
    keygen: &mut KeyGenerator,
    bootstrapper: &Bootstrapper,
    keys: &mut EvaluationKeys,
) -> Result<(), Error> {
    let ring = keygen.params().ring().clone();
    for r in bootstrapper.key_requirements() {
        match *r {
            BootstrapKeyRequirement::Galois { element, level } => {
                if keys.galois(element).is_some_and(|k| k.level() >= level) {
                    continue;
                }
                let g = ring.galois_element(element)?;
                let key = keygen.galois_key_at_level(g, level)?;
                keys.insert_galois(element, key);
            }
            BootstrapKeyRequirement::Relinearization => {
                if keys.relin().is_none() {
                    keys.set_relin(keygen.relin_key());
                }
            }
            BootstrapKeyRequirement::Encapsulation { hamming_weight } => {
                keys.set_encapsulation(keygen.encapsulation_keys(hamming_weight)?);
            }
        }
    }
    Ok(())
}
