//! The ternary product `x Wᵀ` of the reference forward: token rows and a packed ternary matrix in, each output's sum of `±x_i` over its row's nonzero weights out, bit for bit the plain sequential sum `Σ_i x_i·w_i` of finite inputs.
//!
//! Bit for bit because multiplying by ±1 is exact and adding a zero product never changes a
//! sum that starts at +0 (the sum of finite values of opposite sign that cancel is +0, so
//! the running sum is never −0): skipping the zero weights and adding or subtracting the
//! others in input order gives the same roundings.

use ensi_checkpoint::{ROWS_PER_BYTE, TernaryMatrix};
use rayon::prelude::*;

use super::Matrix;

/// Packed rows per parallel task: `4 · 8 = 32` output rows.
const PACKED: usize = 8;

/// Output rows per task.
const ROWS: usize = ROWS_PER_BYTE * PACKED;

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
/// short sequence; padding lanes are zero), stored input-major. A task takes the [`ROWS`]
/// output rows of [`PACKED`] packed rows through the inputs tile by tile: it lists each
/// row's signed columns in the tile once ([`TernaryMatrix::signed_columns`], one pass over
/// the bytes for the four rows of a packed row), then adds the named inputs, sign bit
/// flipped for −1, in input order, into the running sums of every lane group.
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
    // Input-major within a group: each input's lanes are written whole, reading the
    // group's token rows in step.
    let mut lanes = vec![Lanes([0.0f64; L]); groups * inputs];
    for (group, lanes) in lanes.chunks_exact_mut(inputs.max(1)).enumerate() {
        let rows: Vec<&[f64]> = (group * L..tokens.min((group + 1) * L))
            .map(|token| x.row(token))
            .collect();
        for (input, values) in lanes.iter_mut().enumerate() {
            for (value, row) in values.0.iter_mut().zip(&rows) {
                *value = row[input];
            }
        }
    }
    let task = Task {
        lanes: &lanes,
        matrix,
        inputs,
        groups,
    };
    let sums: Vec<Vec<Lanes<L>>> = (0..matrix.packed_rows().div_ceil(PACKED))
        .into_par_iter()
        .map(|block| task.run(block * PACKED))
        .collect();
    let mut out = Matrix::zeros(tokens, outputs);
    for (block, sums) in sums.iter().enumerate() {
        for (slot, row) in task.rows(block * PACKED).enumerate() {
            let Some(row) = row else { continue };
            for token in 0..tokens {
                out.data[token * outputs + row] = sums[(token / L) * ROWS + slot].0[token % L];
            }
        }
    }
    out
}

/// What every task reads: the tokens' lanes and the matrix.
struct Task<'a, const L: usize> {
    lanes: &'a [Lanes<L>],
    matrix: &'a TernaryMatrix,
    inputs: usize,
    groups: usize,
}

impl<const L: usize> Task<'_, L> {
    /// The output row of each of the [`ROWS`] slots of the task from packed row `first` on
    /// (slot `4p + f`: field `f` of packed row `first + p`; `None` past the matrix).
    fn rows(&self, first: usize) -> impl Iterator<Item = Option<usize>> + use<'_, L> {
        let packed_rows = self.matrix.packed_rows();
        (0..ROWS).map(move |slot| {
            let (packed, field) = (first + slot / ROWS_PER_BYTE, slot % ROWS_PER_BYTE);
            let row = field * packed_rows + packed;
            (packed < packed_rows && row < self.matrix.rows()).then_some(row)
        })
    }

    /// The running sums `[group][slot]` of the task from packed row `first` on, in an AVX2
    /// build of the same code when the processor has it (additions only: the same
    /// roundings, bit for bit).
    fn run(&self, first: usize) -> Vec<Lanes<L>> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor supports AVX2 (checked just above).
            return unsafe { self.run_avx2(first) };
        }
        self.run_portable(first)
    }

    /// [`Self::run_portable`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(&self, first: usize) -> Vec<Lanes<L>> {
        self.run_portable(first)
    }

    #[inline(always)]
    fn run_portable(&self, first: usize) -> Vec<Lanes<L>> {
        let inputs = self.inputs;
        let packed = PACKED.min(self.matrix.packed_rows() - first);
        let mut running = vec![Lanes([0.0f64; L]); self.groups * ROWS];
        // Slot `s`'s signed columns in the tile: `columns[s][..counts[s]]`.
        let mut columns = vec![[0u32; TILE]; ROWS];
        let mut counts = [0usize; ROWS];
        for start in (0..inputs).step_by(TILE) {
            let end = (start + TILE).min(inputs);
            let (quads, _) = columns.as_chunks_mut::<ROWS_PER_BYTE>();
            for ((p, quad), counts) in quads
                .iter_mut()
                .enumerate()
                .zip(counts.as_chunks_mut::<ROWS_PER_BYTE>().0)
                .take(packed)
            {
                let out = quad.each_mut().map(|listed| &mut listed[..]);
                *counts = self.matrix.signed_columns(first + p, start..end, out);
            }
            for (group, running) in running.chunks_exact_mut(ROWS).enumerate() {
                let lanes = &self.lanes[group * inputs..(group + 1) * inputs];
                for ((sum, listed), &count) in running.iter_mut().zip(&columns).zip(&counts) {
                    add_signed(&mut sum.0, lanes, &listed[..count]);
                }
            }
        }
        running
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
    /// sequences, with packed weights and with weights ternarized at load (row counts that
    /// leave padding rows in the last packed rows).
    #[test]
    fn product_is_the_sequential_sum_to_the_bit() {
        for (packed, intermediate_size) in [(true, 600), (false, 602)] {
            let dir = tempfile::tempdir().expect("temporary directory");
            let spec = SynthSpec {
                hidden_size: 40,
                intermediate_size,
                packed,
                ..SynthSpec::tiny()
            };
            spec.write(dir.path()).expect("synthetic checkpoint");
            let checkpoint = Checkpoint::open(dir.path()).expect("opens");
            let layer = &checkpoint.layers()[0];
            for projection in [Projection::Gate, Projection::Down] {
                let matrix = layer.projection(projection);
                for tokens in [1, 3, 8, 13, 32, 45] {
                    check_product(matrix, tokens);
                }
            }
        }
    }

    fn check_product(matrix: &TernaryMatrix, tokens: usize) {
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
