//! The DOT report: every value of the plan as a node coloured by its level (blue high, red at level 0), bootstraps as boxes, regions as clusters.

use std::fmt::Write;

use ensi_runtime::plan::{Op, Plan};

use crate::lower::region_label;

/// A colour from blue (the top level) to red (level 0).
fn colour(level: u32, top: u32) -> String {
    let t = if top == 0 {
        0.0
    } else {
        f64::from(level) / f64::from(top)
    };
    // HSV hue 0 (red) .. 0.66 (blue).
    format!("{:.3} 0.55 0.95", 0.66 * t)
}

/// The plan's dataflow as Graphviz DOT.
pub fn render_dot(plan: &Plan) -> String {
    let top = plan.values.iter().map(|v| v.level).max().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "digraph plan {{");
    let _ = writeln!(
        out,
        "  rankdir=TB; node [style=filled, fontname=\"monospace\", fontsize=10];"
    );
    let _ = writeln!(
        out,
        "  label=\"{} T={} — {}\";",
        plan.model.name,
        plan.model.tokens,
        plan.params.security.label()
    );
    let mut region = u32::MAX;
    for (index, instr) in plan.instrs.iter().enumerate() {
        if instr.region != region {
            if region != u32::MAX {
                let _ = writeln!(out, "  }}");
            }
            region = instr.region;
            let _ = writeln!(
                out,
                "  subgraph cluster_{index} {{ label=\"{}\";",
                region_label(&plan.regions[region as usize])
            );
        }
        let value = &plan.values[index];
        let shape = if matches!(instr.op, Op::Bootstrap { .. }) {
            "box, penwidth=3"
        } else {
            "ellipse"
        };
        let _ = writeln!(
            out,
            "    v{index} [label=\"v{index} {}\\n{}×ct L{}\", fillcolor=\"{}\", shape={shape}];",
            instr.op.mnemonic(),
            value.count,
            value.level,
            colour(value.level, top)
        );
    }
    if region != u32::MAX {
        let _ = writeln!(out, "  }}");
    }
    for (index, instr) in plan.instrs.iter().enumerate() {
        for operand in instr.op.operands() {
            let _ = writeln!(out, "  v{} -> v{index};", operand.0);
        }
    }
    let _ = writeln!(out, "}}");
    out
}
