//! The ternary product `x Wᵀ` of the reference forward: token rows and a packed ternary matrix in, each output's sum of `±x_i` over its row's nonzero weights out, bit for bit the plain sequential sum `Σ_i x_i·w_i`.
//!
//! Bit for bit because multiplying by ±1 is exact and adding a zero product never changes a
//! sum that starts at +0 (the sum of finite values of opposite sign that cancel is +0, so
//! the running sum is never −0): skipping the zero weights and adding or subtracting the
//! others in input order gives the same roundings.

use ensi_checkpoint::TernaryMatrix;
use rayon::prelude::*;

use super::Matrix;

/// Output features per parallel task.
const ROWS: usize = 32;

/// Input features per tile: the inputs of one tile and one lane group (64 · 32 lanes · 8
/// bytes = 16 KiB) stay in L1 while every row of a task reads them.
const TILE: usize = 64;

/// One input's values on the `L` tokens of a lane group, a whole number of cache lines.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Lanes<const L: usize>([f64; L]);

/// `x Wᵀ` (`[T, in]` times `[out, in]ᵀ`).
///
/// Tokens go in lane groups of `L` (32, or the smallest power of two from 4 up that holds a
/// short sequence; padding lanes are zero), stored input-major. A task takes [`ROWS`] output
/// rows through the inputs tile by tile: it lists each row's signed columns in the tile once
/// ([`TernaryMatrix::signed_columns`]), then adds the named inputs, sign bit flipped
/// for −1, in input order, into the running sums of every lane group.
pub(super) fn product(x: &Matrix, matrix: &TernaryMatrix) -> Matrix {
    match x.rows {
        0..=4 => product_in::<4>(x, matrix),
        5..=8 => product_in::<8>(x, matrix),
        9..=16 => product_in::<16>(x, matrix),
        _ => product_in::<32>(x, matrix),
    }
}

fn product_in<const L: usize>(x: &Matrix, matrix: &TernaryMatrix) -> Matrix {
    let (tokens, inputs, outputs) = (x.rows, x.cols, matrix.rows());
    let groups = tokens.div_ceil(L);
    let mut lanes = vec![Lanes([0.0f64; L]); groups * inputs];
    for (token, row) in x.data.chunks_exact(inputs.max(1)).enumerate() {
        let (group, lane) = (token / L, token % L);
        for (input, &value) in lanes[group * inputs..(group + 1) * inputs]
            .iter_mut()
            .zip(row)
        {
            input.0[lane] = value;
        }
    }
    // `[out, T]`, one chunk of rows per task.
    let mut sums = vec![0.0f64; outputs * tokens];
    sums.par_chunks_mut(ROWS * tokens.max(1))
        .enumerate()
        .for_each(|(block, sums)| {
            let task = Task {
                lanes: &lanes,
                matrix,
                inputs,
                tokens,
                first: block * ROWS,
            };
            task.run(sums);
        });
    let mut out = Matrix::zeros(tokens, outputs);
    for (output, row) in sums.chunks_exact(tokens.max(1)).enumerate() {
        for (token, &sum) in row.iter().enumerate() {
            out.data[token * outputs + output] = sum;
        }
    }
    out
}

/// One parallel task: the sums of [`ROWS`] output rows from `first` on.
struct Task<'a, const L: usize> {
    lanes: &'a [Lanes<L>],
    matrix: &'a TernaryMatrix,
    inputs: usize,
    tokens: usize,
    first: usize,
}

impl<const L: usize> Task<'_, L> {
    /// Writes the task's sums into `sums` (`[rows, T]`), in an AVX2 build of the same code
    /// when the processor has it (additions only: the same roundings, bit for bit).
    fn run(&self, sums: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor supports AVX2 (checked just above).
            return unsafe { self.run_avx2(sums) };
        }
        self.run_portable(sums);
    }

    /// [`Self::run_portable`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(&self, sums: &mut [f64]) {
        self.run_portable(sums);
    }

    #[inline(always)]
    fn run_portable(&self, sums: &mut [f64]) {
        let (inputs, tokens) = (self.inputs, self.tokens);
        let rows = sums.len() / tokens.max(1);
        let groups = tokens.div_ceil(L);
        let mut running = vec![Lanes([0.0f64; L]); groups * rows];
        // Row `r`'s signed columns in the tile: `columns[r * TILE..][..counts[r]]`.
        let mut columns = vec![0u32; rows * TILE];
        let mut counts = vec![0usize; rows];
        for start in (0..inputs).step_by(TILE) {
            let end = (start + TILE).min(inputs);
            for ((row, out), count) in (self.first..)
                .zip(columns.chunks_exact_mut(TILE))
                .zip(&mut counts)
            {
                *count = self.matrix.signed_columns(row, start..end, out);
            }
            for (group, running) in running.chunks_exact_mut(rows).enumerate() {
                let lanes = &self.lanes[group * inputs..(group + 1) * inputs];
                for ((sum, listed), &count) in running
                    .iter_mut()
                    .zip(columns.chunks_exact(TILE))
                    .zip(&counts)
                {
                    add_signed(&mut sum.0, lanes, &listed[..count]);
                }
            }
        }
        for (row, out) in sums.chunks_exact_mut(tokens.max(1)).enumerate() {
            for (token, sum) in out.iter_mut().enumerate() {
                *sum = running[(token / L) * rows + row].0[token % L];
            }
        }
    }
}

/// `sum ± lanes[i]` for every signed column `2i + negative` of `columns`, in order (the
/// sign bit flipped for −1: `s + (−x)` is `s − x`); the sums stay in registers.
#[inline(always)]
fn add_signed<const L: usize>(sum: &mut [f64; L], lanes: &[Lanes<L>], columns: &[u32]) {
    let mut acc = *sum;
    for &column in columns {
        let values = &lanes[(column >> 1) as usize].0;
        let sign = u64::from(column & 1) << 63;
        for lane in 0..L {
            acc[lane] += f64::from_bits(values[lane].to_bits() ^ sign);
        }
    }
    *sum = acc;
}

#[cfg(test)]
mod tests {
    use ensi_checkpoint::synth::SynthSpec;
    use ensi_checkpoint::{Checkpoint, Projection};

    use super::*;

    /// The product equals the sequential sums `Σ_i x_i·w_i` over every input, zeros
    /// included, to the bit: across tiles, row blocks and lane groups, for short and long
    /// sequences.
    #[test]
    fn product_is_the_sequential_sum_to_the_bit() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let spec = SynthSpec {
            hidden_size: 40,
            intermediate_size: 600,
            ..SynthSpec::tiny()
        };
        spec.write(dir.path()).expect("synthetic checkpoint");
        let checkpoint = Checkpoint::open(dir.path()).expect("opens");
        let layer = &checkpoint.layers()[0];
        let matrices = [
            layer.projection(Projection::Gate),
            layer.projection(Projection::Down),
        ];
        for matrix in matrices {
            for tokens in [1, 3, 8, 13, 32, 45] {
                let cols = matrix.cols();
                let data: Vec<f64> = (0..tokens * cols)
                    .map(|i| ((i * 7919) % 1013) as f64 / 97.0 - 5.2)
                    .collect();
                let x = Matrix {
                    rows: tokens,
                    cols,
                    data,
                };
                let y = product(&x, matrix);
                assert_eq!((y.rows, y.cols), (tokens, matrix.rows()));
                for output in 0..matrix.rows() {
                    let weights = matrix.row(output);
                    for token in 0..tokens {
                        let sequential = x
                            .row(token)
                            .iter()
                            .zip(&weights)
                            .fold(0.0, |s, (&xi, &w)| s + xi * f64::from(w));
                        assert_eq!(
                            y.row(token)[output].to_bits(),
                            sequential.to_bits(),
                            "{} output {output} token {token} of {tokens}",
                            matrix.name()
                        );
                    }
                }
            }
        }
    }
}
