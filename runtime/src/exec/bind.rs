//! Weight binding: every tensor a plan names, found in a checkpoint and checked by kind, shape and digest.

use ensi_checkpoint::{Checkpoint, FloatMatrix, FloatVector, TernaryMatrix};
use rayon::prelude::*;

use super::ExecError;
use crate::plan::{Plan, WeightId, WeightKind, WeightRef};

/// The checkpoint tensors of one plan, indexed like [`Plan::weights`].
///
/// Ternary matrices stay views into the checkpoint's memory map (cloning them shares the
/// bytes); norm gains are decoded to `f64` once. The embedding table is checked but not
/// kept: no op reads it (the client embeds its tokens from the checkpoint, [`super::embed_tokens`]).
#[derive(Debug, Clone)]
pub struct BoundWeights {
    refs: Vec<WeightRef>,
    tensors: Vec<BoundTensor>,
}

#[derive(Debug, Clone)]
enum BoundTensor {
    Ternary(TernaryMatrix),
    Vector(Vec<f64>),
    /// A float matrix whose digest matched; executors never read it.
    Checked,
}

impl BoundWeights {
    /// Resolves every [`WeightRef`] of `plan` in `checkpoint` by name, then checks its kind,
    /// shape and content digest; the first mismatch (in the plan's order) is the error.
    ///
    /// Digests read every byte of every tensor named (the embedding table included), on all
    /// cores.
    pub fn bind(plan: &Plan, checkpoint: &Checkpoint) -> Result<Self, ExecError> {
        if checkpoint.config().digest() != plan.model.config_digest {
            return Err(ExecError::ConfigMismatch {
                model: plan.model.name.clone(),
            });
        }
        let resolved: Vec<Result<BoundTensor, ExecError>> = plan
            .weights
            .par_iter()
            .map(|weight| resolve(weight, checkpoint, &plan.model.name))
            .collect();
        let tensors = resolved.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            refs: plan.weights.clone(),
            tensors,
        })
    }

    /// Whether these weights were bound for `plan` (the same weight table).
    pub fn is_for(&self, plan: &Plan) -> bool {
        self.refs == plan.weights
    }

    /// The references these weights were bound from.
    pub fn refs(&self) -> &[WeightRef] {
        &self.refs
    }

    /// The ternary matrix `id`.
    pub fn ternary(&self, id: WeightId) -> Result<&TernaryMatrix, ExecError> {
        match self.tensors.get(id.0 as usize) {
            Some(BoundTensor::Ternary(matrix)) => Ok(matrix),
            _ => Err(misuse(id, WeightKind::Ternary)),
        }
    }

    /// The vector `id`, widened to `f64`.
    pub fn vector(&self, id: WeightId) -> Result<&[f64], ExecError> {
        match self.tensors.get(id.0 as usize) {
            Some(BoundTensor::Vector(values)) => Ok(values),
            _ => Err(misuse(id, WeightKind::Vector)),
        }
    }
}

#[cfg(test)]
impl BoundWeights {
    /// Binds `plan`'s ternary matrices and vectors from `checkpoint` (digests checked) and
    /// takes its float matrices on trust: for tests whose inputs are not real embeddings.
    pub(crate) fn trusting_matrices(
        plan: &Plan,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<Self, ExecError> {
        let tensors = plan
            .weights
            .iter()
            .map(|weight| match (weight.kind, checkpoint) {
                (WeightKind::Matrix, _) => Ok(BoundTensor::Checked),
                (_, Some(checkpoint)) => resolve(weight, checkpoint, &plan.model.name),
                (kind, None) => Err(ExecError::MissingWeight {
                    name: weight.name.clone(),
                    kind,
                    model: plan.model.name.clone(),
                }),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            refs: plan.weights.clone(),
            tensors,
        })
    }
}

fn misuse(id: WeightId, expected: WeightKind) -> ExecError {
    ExecError::WeightUse {
        weight: id.0,
        expected,
    }
}

/// A tensor found in a checkpoint by name, whatever its kind.
enum Found<'c> {
    Ternary(&'c TernaryMatrix),
    Vector(&'c FloatVector),
    Matrix(&'c FloatMatrix),
}

impl<'c> Found<'c> {
    fn lookup(checkpoint: &'c Checkpoint, name: &str) -> Option<Self> {
        checkpoint
            .ternary(name)
            .map(Found::Ternary)
            .or_else(|| checkpoint.vector(name).map(Found::Vector))
            .or_else(|| checkpoint.matrix(name).map(Found::Matrix))
    }

    fn kind(&self) -> WeightKind {
        match self {
            Found::Ternary(_) => WeightKind::Ternary,
            Found::Vector(_) => WeightKind::Vector,
            Found::Matrix(_) => WeightKind::Matrix,
        }
    }

    fn shape(&self) -> [usize; 2] {
        match self {
            Found::Ternary(m) => [m.rows(), m.cols()],
            Found::Vector(v) => [v.len(), 1],
            Found::Matrix(m) => [m.rows(), m.cols()],
        }
    }

    fn digest(&self) -> [u8; 32] {
        match self {
            Found::Ternary(m) => m.digest(),
            Found::Vector(v) => v.digest(),
            Found::Matrix(m) => m.digest(),
        }
    }

    fn bind(self) -> BoundTensor {
        match self {
            Found::Ternary(m) => BoundTensor::Ternary(m.clone()),
            Found::Vector(v) => {
                BoundTensor::Vector(v.to_vec().into_iter().map(f64::from).collect())
            }
            Found::Matrix(_) => BoundTensor::Checked,
        }
    }
}

/// Finds `weight` in `checkpoint` and checks it, shape before digest (the digest reads it all).
fn resolve(
    weight: &WeightRef,
    checkpoint: &Checkpoint,
    model: &str,
) -> Result<BoundTensor, ExecError> {
    let name = weight.name.as_str();
    let Some(found) = Found::lookup(checkpoint, name) else {
        return Err(ExecError::MissingWeight {
            name: name.to_owned(),
            kind: weight.kind,
            model: model.to_owned(),
        });
    };
    if found.kind() != weight.kind {
        return Err(ExecError::WrongKind {
            name: name.to_owned(),
            expected: weight.kind,
            found: found.kind(),
        });
    }
    if found.shape() != weight.shape.map(|d| d as usize) {
        return Err(ExecError::WeightShape {
            name: name.to_owned(),
            expected: weight.shape,
            found: found.shape(),
        });
    }
    let digest = found.digest();
    if digest != weight.digest {
        return Err(ExecError::WeightDigest {
            name: name.to_owned(),
            expected: weight.digest,
            found: digest,
        });
    }
    Ok(found.bind())
}
