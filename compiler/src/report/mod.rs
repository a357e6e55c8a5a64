//! Reports: a plan in (everything is read from it and its provenance, so `ensi report` needs nothing else), per-block and per-op-kind tables of levels, rescales, bootstraps, rotations, ciphertexts and estimated latency, key memory, the bootstrapping share, approximation errors and the predicted error out, as text, JSON or DOT.

mod dot;
mod text;

use std::collections::BTreeMap;

use ensi_runtime::exec::Repacking;
use ensi_runtime::plan::{LinearMethod, Op, Plan};
use serde::Serialize;

use crate::estimate::{CostOp, Estimator};
use crate::lower::region_label;

pub use dot::render_dot;

/// The output formats of `ensi report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable tables.
    Text,
    /// The [`Report`] as JSON.
    Json,
    /// The plan's dataflow as Graphviz DOT, values coloured by level.
    Dot,
}

/// The headline numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Model name.
    pub model: String,
    /// Tokens per inference.
    pub tokens: u32,
    /// Security of the parameters (an insecure plan says so loudly).
    pub security: String,
    /// Whether the parameters are insecure test parameters.
    pub insecure: bool,
    /// log2 N.
    pub log_n: u32,
    /// log2(QP) of the actual primes.
    pub log_qp: f64,
    /// Ciphertext primes minus one (the chain's top level).
    pub top_level: u32,
    /// Key-switching digits.
    pub dnum: usize,
    /// Highest level a plan value runs at.
    pub max_value_level: u32,
    /// Instructions.
    pub instructions: usize,
    /// Ciphertext operations (an instruction on `c` ciphertexts counts `c`).
    pub ciphertext_ops: u64,
    /// Estimated seconds of the whole plan (one thread).
    pub estimated_seconds: f64,
    /// Estimated seconds spent bootstrapping.
    pub bootstrap_seconds: f64,
    /// Share of estimated time in bootstrapping.
    pub bootstrap_time_share: f64,
    /// Share of ciphertext operations that are bootstraps.
    pub bootstrap_op_share: f64,
    /// Bootstrap instructions.
    pub bootstraps: usize,
    /// Ciphertexts bootstrapped.
    pub bootstrapped_ciphertexts: u64,
    /// Rescaled ciphertexts.
    pub rescales: u64,
    /// Key-switched rotations.
    pub rotations: u64,
    /// Galois keys.
    pub galois_keys: usize,
    /// Bytes of all switching keys.
    pub key_bytes: u64,
    /// Predicted `max |plan − exact| / max |exact|` of the output (NaN if not predicted).
    pub predicted_error: f64,
    /// The precision target.
    pub target_error: f64,
    /// Encoding of each layer.
    pub encodings: String,
    /// Placement policy.
    pub policy: String,
}

/// One row of a per-block or per-kind table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    /// The block (`layer 0 / attention`) or op kind (`mul`).
    pub name: String,
    /// Instructions.
    pub instructions: u64,
    /// Ciphertext operations.
    pub ciphertext_ops: u64,
    /// Highest level of a value entering.
    pub level_in: u32,
    /// Lowest level of a value leaving.
    pub level_out: u32,
    /// Rescaled ciphertexts.
    pub rescales: u64,
    /// Bootstrapped ciphertexts.
    pub bootstraps: u64,
    /// Key-switched rotations.
    pub rotations: u64,
    /// Estimated seconds.
    pub seconds: f64,
}

/// One bootstrap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootstrapRow {
    /// The bootstrap's value.
    pub value: u32,
    /// Where it is.
    pub region: String,
    /// Ciphertexts refreshed.
    pub ciphertexts: u32,
    /// Slots per ciphertext.
    pub slots: u32,
    /// Level before and after.
    pub levels: (u32, u32),
    /// Estimated seconds.
    pub seconds: f64,
    /// Why the placement put it there.
    pub reason: String,
}

/// One polynomial approximation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApproxRow {
    /// What it approximates and on which interval.
    pub function: String,
    /// Degree.
    pub degree: usize,
    /// Levels.
    pub depth: u32,
    /// Max error on the interval (the site's measure).
    pub max_error: f64,
    /// Instructions evaluating it.
    pub uses: usize,
}

/// Everything `ensi report` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Headline numbers.
    pub summary: Summary,
    /// Per block (region), in plan order.
    pub blocks: Vec<Row>,
    /// Per op kind.
    pub kinds: Vec<Row>,
    /// Every bootstrap.
    pub bootstraps: Vec<BootstrapRow>,
    /// Every approximation.
    pub approximations: Vec<ApproxRow>,
    /// The compiler's provenance entries, in order.
    pub provenance: Vec<(String, String)>,
}

/// What one instruction costs and does.
#[derive(Debug, Clone, Copy, Default)]
struct InstrFacts {
    seconds: f64,
    rotations: u64,
    rescales: u64,
    bootstraps: u64,
    ciphertext_ops: u64,
}

fn provenance<'p>(plan: &'p Plan, key: &str) -> Option<&'p str> {
    plan.provenance
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `additions=…;diagonals=…;rotations=…` of a ternary layer, from the provenance.
fn ternary_stats(plan: &Plan, value: u32) -> (u64, u64, u64) {
    let mut stats = (0, 0, 0);
    if let Some(text) = provenance(plan, &format!("ternary.v{value}")) {
        for part in text.split(';') {
            let (key, number) = part.split_once('=').unwrap_or(("", "0"));
            let number = number.parse().unwrap_or(0);
            match key {
                "additions" => stats.0 = number,
                "diagonals" => stats.1 = number,
                "rotations" => stats.2 = number,
                _ => {}
            }
        }
    }
    stats
}

fn facts(plan: &Plan, index: usize, estimator: &Estimator) -> InstrFacts {
    let instr = &plan.instrs[index];
    let result = plan.values[index];
    let operand = instr.op.operands().first().map(|&v| *plan.value(v));
    let level = operand.map_or(result.level, |o| o.level);
    let count = result.count;
    let seconds = |op: CostOp| estimator.seconds(&op, level, count);
    let mut facts = InstrFacts {
        ciphertext_ops: u64::from(count),
        ..InstrFacts::default()
    };
    facts.seconds = match &instr.op {
        Op::Input { .. }
        | Op::Relabel { .. }
        | Op::DropLevels { .. }
        | Op::Slice { .. }
        | Op::Concat { .. } => {
            facts.ciphertext_ops = 0;
            0.0
        }
        Op::Add { .. } | Op::Sub { .. } | Op::Neg { .. } => seconds(CostOp::Adds { count: 1.0 }),
        Op::AddConst { .. } => seconds(CostOp::AddConst),
        Op::AddPlain { .. } => seconds(CostOp::AddPlain),
        Op::MulConst { .. } => seconds(CostOp::MulConst),
        Op::MulPlain { .. } => seconds(CostOp::MulPlain),
        Op::MulCt { .. } | Op::Square { .. } => seconds(CostOp::MulCt),
        Op::Rescale { .. } => {
            facts.rescales = u64::from(count);
            seconds(CostOp::Rescale)
        }
        Op::Rotate { steps, .. } => {
            if steps.rem_euclid(result.layout.slots as i32) == 0 {
                0.0
            } else {
                facts.rotations = u64::from(count);
                seconds(CostOp::Rotations { count: 1.0 })
            }
        }
        Op::RotSum { count: terms, .. } => {
            let rounds = terms.trailing_zeros();
            facts.rotations = u64::from(count * rounds);
            seconds(CostOp::Rotations {
                count: f64::from(rounds),
            })
        }
        Op::SumCiphertexts { group, .. } => {
            let inputs = operand.map_or(count, |o| o.count);
            facts.ciphertext_ops = u64::from(inputs);
            seconds(CostOp::Adds {
                count: f64::from(group.saturating_sub(1)),
            })
        }
        Op::TernaryLinear { method, .. } => {
            let (additions, diagonals, rotations) = ternary_stats(plan, index as u32);
            match method {
                LinearMethod::Columns => {
                    facts.ciphertext_ops = additions;
                    seconds(CostOp::TernaryColumns { additions })
                }
                LinearMethod::Diagonals { .. } => {
                    facts.rotations = rotations;
                    facts.ciphertext_ops = diagonals + rotations;
                    seconds(CostOp::TernaryDiagonals {
                        diagonals,
                        rotations,
                    })
                }
            }
        }
        Op::Poly { approx, .. } => {
            let degree = plan.approximations[approx.0 as usize].degree() as u32;
            seconds(CostOp::Poly { degree })
        }
        Op::Bootstrap { .. } => {
            facts.bootstraps = u64::from(count);
            seconds(CostOp::Bootstrap {
                slots: result.layout.slots,
            })
        }
        Op::Repack { a, to, .. } => {
            let repacking = Repacking::new(&plan.value(*a).layout, to);
            facts.rotations = repacking.rotations() as u64;
            let outputs = f64::from(count.max(1));
            seconds(CostOp::Repack {
                masks: repacking.moves().len() as f64 / outputs,
                rotations: repacking.rotations() as f64 / outputs,
            })
        }
        _ => 0.0,
    };
    facts
}

impl Row {
    fn add(&mut self, plan: &Plan, index: usize, facts: &InstrFacts) {
        let instr = &plan.instrs[index];
        let result = plan.values[index];
        self.instructions += 1;
        self.ciphertext_ops += facts.ciphertext_ops;
        self.rescales += facts.rescales;
        self.bootstraps += facts.bootstraps;
        self.rotations += facts.rotations;
        self.seconds += facts.seconds;
        for operand in instr.op.operands() {
            self.level_in = self.level_in.max(plan.value(operand).level);
        }
        if self.instructions == 1 {
            self.level_out = result.level;
        }
        self.level_out = self.level_out.min(result.level);
        if instr.op.operands().is_empty() {
            self.level_in = self.level_in.max(result.level);
        }
    }
}

impl Report {
    /// The report of `plan` (its provenance supplies what the program alone cannot say).
    pub fn from_plan(plan: &Plan) -> Self {
        let literal = &plan.params.literal;
        let estimator = Estimator::new(literal.log_n, literal.log_p.len() as u32);
        let mut blocks: Vec<Row> = plan
            .regions
            .iter()
            .map(|r| Row {
                name: region_label(r),
                ..Row::default()
            })
            .collect();
        let mut kinds: BTreeMap<&'static str, Row> = BTreeMap::new();
        let mut total = Row::default();
        let mut bootstraps = Vec::new();
        let mut uses = vec![0usize; plan.approximations.len()];
        for index in 0..plan.instrs.len() {
            let facts = facts(plan, index, &estimator);
            let instr = &plan.instrs[index];
            blocks[instr.region as usize].add(plan, index, &facts);
            kinds
                .entry(instr.op.mnemonic())
                .or_insert_with(|| Row {
                    name: instr.op.mnemonic().to_owned(),
                    ..Row::default()
                })
                .add(plan, index, &facts);
            total.add(plan, index, &facts);
            match &instr.op {
                Op::Bootstrap { a, level } => bootstraps.push(BootstrapRow {
                    value: index as u32,
                    region: region_label(&plan.regions[instr.region as usize]),
                    ciphertexts: plan.values[index].count,
                    slots: plan.values[index].layout.slots,
                    levels: (plan.value(*a).level, *level),
                    seconds: facts.seconds,
                    reason: provenance(plan, &format!("bootstrap.reason.v{index}"))
                        .unwrap_or("")
                        .to_owned(),
                }),
                Op::Poly { approx, .. } => uses[approx.0 as usize] += 1,
                _ => {}
            }
        }
        let bootstrap_seconds = bootstraps.iter().map(|b| b.seconds).fold(0.0, |a, b| a + b);
        let number = |key: &str| {
            provenance(plan, key)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let summary = Summary {
            model: plan.model.name.clone(),
            tokens: plan.model.tokens,
            security: plan.params.security.label().to_owned(),
            insecure: plan.params.security
                == ensi_runtime::ckks::scheme::Security::InsecureForTesting,
            log_n: literal.log_n,
            log_qp: plan
                .params
                .q
                .iter()
                .chain(&plan.params.p)
                .map(|&v| (v as f64).log2())
                .sum(),
            top_level: literal.max_level() as u32,
            dnum: literal.dnum(),
            max_value_level: plan.values.iter().map(|v| v.level).max().unwrap_or(0),
            instructions: plan.instrs.len(),
            ciphertext_ops: total.ciphertext_ops,
            estimated_seconds: total.seconds,
            bootstrap_seconds,
            bootstrap_time_share: if total.seconds > 0.0 {
                bootstrap_seconds / total.seconds
            } else {
                0.0
            },
            bootstrap_op_share: if total.ciphertext_ops > 0 {
                total.bootstraps as f64 / total.ciphertext_ops as f64
            } else {
                0.0
            },
            bootstraps: bootstraps.len(),
            bootstrapped_ciphertexts: total.bootstraps,
            rescales: total.rescales,
            rotations: total.rotations,
            galois_keys: plan.galois_elements.len(),
            key_bytes: number("keys.total_bytes") as u64,
            predicted_error: number("approx.predicted_error"),
            target_error: number("approx.target"),
            encodings: provenance(plan, "encoding.layers").unwrap_or("").to_owned(),
            policy: provenance(plan, "options.policy").unwrap_or("").to_owned(),
        };
        let approximations = plan
            .approximations
            .iter()
            .zip(uses)
            .map(|(a, uses)| ApproxRow {
                function: a.function.clone(),
                degree: a.degree(),
                depth: a.depth,
                max_error: a.max_error,
                uses,
            })
            .collect();
        Report {
            summary,
            blocks: blocks.into_iter().filter(|b| b.instructions > 0).collect(),
            kinds: kinds.into_values().collect(),
            bootstraps,
            approximations,
            provenance: plan.provenance.clone(),
        }
    }

    /// The report in `format` (DOT needs the plan itself).
    pub fn render(&self, plan: &Plan, format: Format) -> String {
        match format {
            Format::Text => text::render(self),
            Format::Json => serde_json::to_string_pretty(self).unwrap_or_default(),
            Format::Dot => render_dot(plan),
        }
    }
}
