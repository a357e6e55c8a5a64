//! Ternary linear layers `y = W'x`: the column method's signed sums and the block-diagonal BSGS decomposition.
//!
//! `W'` is the weight's rows picked (and possibly negated) by the op's row map: output column
//! `j` is `sign_j · W[rows[j].row, :]`. Both methods are built once per op from the packed
//! weight and shared by the plaintext and encrypted executors; only the arithmetic differs.

use ensi_checkpoint::TernaryMatrix;

use super::slots::{SlotVectors, add_assign, sub_assign, zeros};
use crate::plan::schedule::DiagonalSchedule;
use crate::plan::{Layout, SignedRow};

/// One term of a column-method sum: an input column (ciphertext), added or subtracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignedColumn {
    /// Input column (= input ciphertext: one column per ciphertext).
    pub column: u32,
    /// Subtracted instead of added.
    pub negate: bool,
}

/// The column method: output ciphertext `j` is `Σ ± x_i` over the nonzero entries of `W'[j, :]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSums {
    /// `terms[starts[j]..starts[j + 1]]` are output `j`'s terms.
    starts: Vec<usize>,
    terms: Vec<SignedColumn>,
}

impl ColumnSums {
    /// The signed input columns of every output column of `W'` (rows `rows` of `weight`).
    ///
    /// # Panics
    /// If a row is out of range (a checked plan's rows are within the weight).
    pub fn new(weight: &TernaryMatrix, rows: &[SignedRow]) -> Self {
        let mut entries = vec![0i8; weight.cols()];
        let mut starts = Vec::with_capacity(rows.len() + 1);
        let mut terms = Vec::new();
        starts.push(0);
        for row in rows {
            weight.row_into(row.row as usize, &mut entries);
            for (column, &entry) in entries.iter().enumerate() {
                if entry != 0 {
                    terms.push(SignedColumn {
                        column: column as u32,
                        negate: (entry < 0) != row.negate,
                    });
                }
            }
            starts.push(terms.len());
        }
        Self { starts, terms }
    }

    /// Number of output columns.
    pub fn outputs(&self) -> usize {
        self.starts.len() - 1
    }

    /// The terms of output column `output`, in increasing input column order; empty for an
    /// all-zero row (the output is a zero ciphertext).
    ///
    /// # Panics
    /// If `output >= self.outputs()`.
    pub fn terms(&self, output: usize) -> &[SignedColumn] {
        &self.terms[self.starts[output]..self.starts[output + 1]]
    }

    /// Ciphertext additions and subtractions the layer costs (one fewer than the terms of
    /// each nonempty output).
    pub fn additions(&self) -> usize {
        (0..self.outputs())
            .map(|j| self.terms(j).len().saturating_sub(1))
            .sum()
    }

    /// `y_j = Σ ± x_i` on whole slot vectors (padding included: it is whatever the sums of
    /// the inputs' padding are).
    pub fn apply(&self, x: &[Vec<f64>], slots: usize) -> SlotVectors {
        let mut y = zeros(self.outputs(), slots);
        for (j, out) in y.iter_mut().enumerate() {
            for term in self.terms(j) {
                let input = &x[term.column as usize];
                if term.negate {
                    sub_assign(out, input);
                } else {
                    add_assign(out, input);
                }
            }
        }
        y
    }
}

/// The block-diagonal method: `y_o = Σ_i Σ_r diag(o, i, r) ⊙ rot_left(x_i, r·block)`, with
/// `o` an output ciphertext, `i` an input ciphertext and `r < B` a block diagonal.
///
/// Slot (block `k`, token `t`) of `diag(o, i, r)` is `W'[o·B + k, i·B + (k + r) mod B]` for
/// `t < T` and an existing row and column, 0 elsewhere (padding, empty blocks): the result
/// has zero padding whatever the input's padding holds. Evaluated with baby-step giant-step
/// ([`DiagonalSchedule`]): with `r = g·baby + j`,
///
/// `y_o = Σ_g rot_left( Σ_i Σ_j pre(o, i, g, j) ⊙ rot_left(x_i, j·block), g·baby·block )`,
///
/// where `pre(o, i, g, j) = rot_right(diag(o, i, r), g·baby·block)` is the pre-rotated
/// diagonal ([`Self::fill_prerotated`]). The baby rotations of each input are hoisted; each
/// (output, giant step) costs one rotation. All-zero diagonals are skipped, and a giant step
/// or baby step no nonzero diagonal uses costs nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDiagonals {
    pattern: DiagonalPattern,
    tokens: u32,
    slots: u32,
    /// Signed block weights, `[output ct][input ct][diagonal][block]`, `B` per diagonal.
    weights: Vec<i8>,
}

/// Which block diagonals `diag(o, i, r)` of `W'` are nonzero (see [`BlockDiagonals`]), and so
/// which terms, rotations and plaintext products its baby-step giant-step evaluation has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagonalPattern {
    schedule: DiagonalSchedule,
    input_cts: u32,
    output_cts: u32,
    /// Whether each `[output ct][input ct][diagonal]` has a nonzero weight.
    nonzero: Vec<bool>,
}

impl DiagonalPattern {
    /// The pattern of `W'` (rows `rows` of `weight`) from layout `input` to `output` (equal
    /// slots and blocks, one column per block), with `baby_steps` baby steps.
    ///
    /// Each diagonal's entries are probed in order up to the first nonzero one, so a layer
    /// without zero diagonals costs a few probes a diagonal, not a pass over its weights.
    ///
    /// # Panics
    /// If a row is out of range (a checked plan's rows are within the weight).
    pub fn new(
        weight: &TernaryMatrix,
        rows: &[SignedRow],
        input: &Layout,
        output: &Layout,
        baby_steps: u32,
    ) -> Self {
        let mut pattern = Self::empty(input, output, baby_steps);
        let blocks = pattern.schedule.diagonals as usize;
        let (input_cts, output_cts) = (pattern.input_cts as usize, pattern.output_cts as usize);
        // Slot k of diag(o, i, r) is W'[o·B + k, i·B + (k + r) mod B]; rows and columns past
        // the matrix are zero.
        let entry = |o: usize, i: usize, r: usize, k: usize| {
            let (j, column) = (o * blocks + k, i * blocks + (k + r) % blocks);
            j < rows.len()
                && column < weight.cols()
                && weight.entry(rows[j].row as usize, column) != 0
        };
        for o in 0..output_cts {
            for i in 0..input_cts {
                for r in 0..blocks {
                    pattern.nonzero[(o * input_cts + i) * blocks + r] =
                        (0..blocks).any(|k| entry(o, i, r, k));
                }
            }
        }
        pattern
    }

    /// The schedule and shape of a layer from `input` to `output`, every diagonal zero.
    fn empty(input: &Layout, output: &Layout, baby_steps: u32) -> Self {
        let blocks = input.blocks_per_ciphertext();
        let (input_cts, output_cts) = (input.ciphertexts(), output.ciphertexts());
        Self {
            schedule: DiagonalSchedule::new(blocks, input.block, baby_steps),
            input_cts,
            output_cts,
            nonzero: vec![false; output_cts as usize * input_cts as usize * blocks as usize],
        }
    }

    /// The baby-step giant-step split.
    pub fn schedule(&self) -> &DiagonalSchedule {
        &self.schedule
    }

    /// Input ciphertexts.
    pub fn input_ciphertexts(&self) -> u32 {
        self.input_cts
    }

    /// Output ciphertexts.
    pub fn output_ciphertexts(&self) -> u32 {
        self.output_cts
    }

    fn index(&self, output: u32, input: u32, diagonal: u32) -> usize {
        (output as usize * self.input_cts as usize + input as usize)
            * self.schedule.diagonals as usize
            + diagonal as usize
    }

    /// Number of nonzero diagonals: the plaintext multiplications the layer costs.
    pub fn nonzero_diagonals(&self) -> usize {
        self.nonzero.iter().filter(|&&n| n).count()
    }

    /// Whether `diag(output, input, diagonal)` has a nonzero entry.
    pub fn is_nonzero(&self, output: u32, input: u32, diagonal: u32) -> bool {
        self.nonzero[self.index(output, input, diagonal)]
    }

    /// The nonzero `(input ciphertext, baby step)` terms of giant step `giant` of output
    /// ciphertext `output`, in evaluation order.
    pub fn giant_step_terms(&self, output: u32, giant: u32) -> impl Iterator<Item = (u32, u32)> {
        (0..self.input_cts).flat_map(move |input| {
            (0..self.schedule.baby).filter_map(move |baby| {
                let diagonal = self.schedule.diagonal(giant, baby)?;
                self.is_nonzero(output, input, diagonal)
                    .then_some((input, baby))
            })
        })
    }

    /// Key-switched rotations the layer costs: baby steps `j ≥ 1` some nonzero diagonal of
    /// each input uses, plus giant steps `g ≥ 1` with a nonzero term for each output.
    pub fn rotations(&self) -> usize {
        let schedule = &self.schedule;
        let baby = (0..self.input_cts)
            .map(|input| {
                (1..schedule.baby)
                    .filter(|&j| {
                        (0..self.output_cts).any(|output| {
                            (0..schedule.giant).any(|g| {
                                schedule
                                    .diagonal(g, j)
                                    .is_some_and(|r| self.is_nonzero(output, input, r))
                            })
                        })
                    })
                    .count()
            })
            .sum::<usize>();
        let giant = (0..self.output_cts)
            .map(|output| {
                (1..schedule.giant)
                    .filter(|&g| self.giant_step_terms(output, g).next().is_some())
                    .count()
            })
            .sum::<usize>();
        baby + giant
    }
}

impl BlockDiagonals {
    /// The diagonals of `W'` (rows `rows` of `weight`) from layout `input` to `output`
    /// (equal slots and blocks, one column per block), with `baby_steps` baby steps.
    ///
    /// # Panics
    /// If a row is out of range (a checked plan's rows are within the weight).
    pub fn new(
        weight: &TernaryMatrix,
        rows: &[SignedRow],
        input: &Layout,
        output: &Layout,
        baby_steps: u32,
    ) -> Self {
        let mut pattern = DiagonalPattern::empty(input, output, baby_steps);
        let blocks = pattern.schedule.diagonals as usize;
        let input_cts = pattern.input_cts as usize;
        let mut weights = vec![0i8; pattern.nonzero.len() * blocks];
        let mut entries = vec![0i8; weight.cols()];
        for (j, row) in rows.iter().enumerate() {
            weight.row_into(row.row as usize, &mut entries);
            let (o, k) = (j / blocks, j % blocks);
            for (column, &entry) in entries.iter().enumerate() {
                if entry == 0 {
                    continue;
                }
                let (i, m) = (column / blocks, column % blocks);
                let r = (m + blocks - k) % blocks;
                let diagonal = (o * input_cts + i) * blocks + r;
                weights[diagonal * blocks + k] = if row.negate { -entry } else { entry };
                pattern.nonzero[diagonal] = true;
            }
        }
        Self {
            pattern,
            tokens: input.tokens,
            slots: input.slots,
            weights,
        }
    }

    /// Which diagonals are nonzero, and the schedule.
    pub fn pattern(&self) -> &DiagonalPattern {
        &self.pattern
    }

    /// The signed weights of `diag(output, input, diagonal)`, one per block: entry `k` is
    /// `W'[output·B + k, input·B + (k + diagonal) mod B]` (0 for a missing row or column).
    pub fn block_weights(&self, output: u32, input: u32, diagonal: u32) -> &[i8] {
        let blocks = self.pattern.schedule.diagonals as usize;
        let start = self.pattern.index(output, input, diagonal) * blocks;
        &self.weights[start..start + blocks]
    }

    /// Writes `diag(output, input, diagonal)` rotated right by `shift_blocks` blocks into
    /// `out` (`slots` entries): block `k` holds weight `(k − shift_blocks) mod B` on tokens
    /// `0..T`, zero on padding.
    fn fill_shifted(
        &self,
        output: u32,
        input: u32,
        diagonal: u32,
        shift_blocks: u32,
        out: &mut [f64],
    ) {
        out.fill(0.0);
        let schedule = &self.pattern.schedule;
        let blocks = schedule.diagonals;
        let (block, tokens) = (schedule.block as usize, self.tokens as usize);
        let weights = self.block_weights(output, input, diagonal);
        for k in 0..blocks {
            let weight = weights[((k + blocks - shift_blocks % blocks) % blocks) as usize];
            if weight != 0 {
                let start = k as usize * block;
                out[start..start + tokens].fill(f64::from(weight));
            }
        }
    }

    /// Writes the slot vector of `diag(output, input, diagonal)` into `out`.
    ///
    /// # Panics
    /// If an index is out of range or `out` is shorter than the slot count.
    pub fn fill_diagonal(&self, output: u32, input: u32, diagonal: u32, out: &mut [f64]) {
        self.fill_shifted(output, input, diagonal, 0, out);
    }

    /// Writes the pre-rotated diagonal of (giant step, baby step) into `out`: the diagonal
    /// `r = giant·baby_steps + baby`, rotated right by `giant·baby_steps·block` slots so that
    /// one left rotation of the giant step's sum puts it back.
    ///
    /// # Panics
    /// If `(giant, baby)` names no diagonal ([`DiagonalSchedule::diagonal`]), an index is out
    /// of range or `out` is shorter than the slot count.
    pub fn fill_prerotated(&self, output: u32, input: u32, giant: u32, baby: u32, out: &mut [f64]) {
        let schedule = &self.pattern.schedule;
        let diagonal = schedule.diagonal(giant, baby);
        let diagonal = diagonal.unwrap_or_else(|| panic!("no diagonal at ({giant}, {baby})"));
        self.fill_shifted(output, input, diagonal, giant * schedule.baby, out);
    }

    /// The BSGS evaluation on slot vectors (see the type's documentation), skipping the
    /// zero products (padding, zero weights) that cannot change the result.
    pub fn apply(&self, x: &[Vec<f64>]) -> SlotVectors {
        let pattern = &self.pattern;
        let schedule = &pattern.schedule;
        let blocks = schedule.diagonals;
        let (block, tokens) = (schedule.block as usize, self.tokens as usize);
        let at = |b: u32| b as usize * block..b as usize * block + tokens;
        let mut y = zeros(pattern.output_cts as usize, self.slots as usize);
        let mut giant_sum = vec![0.0; self.slots as usize];
        for (output, y_o) in (0..pattern.output_cts).zip(&mut y) {
            for giant in 0..schedule.giant {
                let shift = giant * schedule.baby;
                let mut any = false;
                giant_sum.fill(0.0);
                for (input, baby) in pattern.giant_step_terms(output, giant) {
                    any = true;
                    let diagonal = shift + baby;
                    let weights = self.block_weights(output, input, diagonal);
                    let x_i = &x[input as usize];
                    // Block k of pre(o, i, g, j) is weight (k − shift); block k of
                    // rot_left(x_i, j·block) is block (k + j) of x_i.
                    for k in 0..blocks {
                        let weight = weights[((k + blocks - shift % blocks) % blocks) as usize];
                        let source = &x_i[at((k + baby) % blocks)];
                        let target = &mut giant_sum[at(k)];
                        match weight {
                            1 => add_assign(target, source),
                            -1 => sub_assign(target, source),
                            _ => {}
                        }
                    }
                }
                if any {
                    // y_o += rot_left(giant_sum, shift·block): block k takes block k + shift.
                    for k in 0..blocks {
                        add_assign(&mut y_o[at(k)], &giant_sum[at((k + shift) % blocks)]);
                    }
                }
            }
        }
        y
    }
}
