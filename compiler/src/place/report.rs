//! The text report of a placement: totals, the bootstrap share, a row per region and a line per bootstrap with its reason.

use std::fmt::Write as _;

use crate::cost::Latency;

use super::graph::{LevelGraph, NodeId};
use super::{BootstrapDecision, Exactness, Placement};

/// Renders `placement` of `graph` as text (deterministic: snapshot tests compare it).
pub fn report(graph: &LevelGraph, placement: &Placement) -> String {
    let mut out = String::new();
    let cost = &placement.cost;
    let exactness = match placement.exactness {
        Exactness::Optimal => String::from("exact optimum of the policy"),
        Exactness::Heuristic => String::from("heuristic"),
        Exactness::BestFound { clamped_segments } => format!(
            "best found: {clamped_segments} segment(s) too wide, clamped to a reference placement"
        ),
    };
    // Writing to a String cannot fail.
    let _ = writeln!(out, "placement `{}` ({exactness})", placement.policy);
    let s = &placement.stats;
    if s.segments > 0 {
        let _ = writeln!(
            out,
            "  solver: {} nodes ({} after absorbing and folding twin lanes), {} segments ({} solved), largest step {} entries",
            s.nodes, s.folded_nodes, s.segments, s.distinct_segments, s.largest_table
        );
    }
    let _ = writeln!(
        out,
        "  estimated time {}: ops {}, bootstraps {} ({:.2}% bootstrapping)",
        cost.total(),
        cost.ops,
        cost.bootstraps,
        100.0 * cost.bootstrap_share()
    );
    let _ = writeln!(
        out,
        "  bootstraps: {} ({} ciphertexts), L_max {}",
        cost.bootstrap_count,
        cost.bootstrapped_ciphertexts,
        graph.max_level()
    );

    // Regions in order of first appearance.
    let mut order: Vec<u32> = Vec::new();
    let mut rows: Vec<RegionRow> = vec![RegionRow::default(); graph.regions().len()];
    for (i, node) in graph.nodes().iter().enumerate() {
        let r = node.region().0;
        let row = &mut rows[r as usize];
        if row.nodes == 0 {
            order.push(r);
            row.top = 0;
            row.bottom = u32::MAX;
        }
        let p = placement.nodes[i];
        row.nodes += 1;
        row.top = row.top.max(p.level);
        row.bottom = row.bottom.min(p.available());
        row.ops += node.op_cost(p.level);
        if let Some(target) = p.bootstrap {
            row.bootstraps += 1;
            row.boot_cost += graph.bootstrap_cost(NodeId(i as u32), p.output, target);
        }
    }
    let width = order
        .iter()
        .map(|&r| region_name(graph, r).len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  per region: levels = highest execution level → lowest level left to consumers"
    );
    let _ = writeln!(
        out,
        "  {:width$}  {:>5}  {:>7}  {:>10}  {:>10}",
        "region", "nodes", "levels", "ops", "bootstraps"
    );
    for &r in &order {
        let row = &rows[r as usize];
        let boots = if row.bootstraps == 0 {
            String::from("-")
        } else {
            format!("{} × {}", row.bootstraps, row.boot_cost)
        };
        let _ = writeln!(
            out,
            "  {:width$}  {:>5}  {:>7}  {:>10}  {:>10}",
            region_name(graph, r),
            row.nodes,
            format!("{}→{}", row.top, row.bottom),
            row.ops.to_string(),
            boots
        );
    }
    if !placement.bootstraps.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "  bootstraps");
    }
    // Runs of like bootstraps in one region (the T shifts of attention) share a line.
    let mut i = 0;
    let bootstraps = &placement.bootstraps;
    while i < bootstraps.len() {
        let b = &bootstraps[i];
        let like = |c: &BootstrapDecision| {
            graph.node(c.node).region() == graph.node(b.node).region()
                && (c.count, c.slots, c.input_level, c.target, c.cost)
                    == (b.count, b.slots, b.input_level, b.target, b.cost)
        };
        let run = bootstraps[i..].iter().take_while(|c| like(c)).count();
        let names = if run > 2 {
            format!(
                "{} .. {} ({run} values)",
                graph.node(b.node).name(),
                graph.node(bootstraps[i + run - 1].node).name()
            )
        } else {
            graph.node(b.node).name().to_string()
        };
        let shown = if run > 2 { run } else { 1 };
        let _ = writeln!(
            out,
            "  {names}: {} ct × {} slots, level {} → {}, {}{}: {}",
            b.count,
            b.slots,
            b.input_level,
            b.target,
            b.cost,
            if shown > 1 { " each" } else { "" },
            b.reason
        );
        i += shown;
    }
    out
}

#[derive(Debug, Clone, Default)]
struct RegionRow {
    nodes: usize,
    top: u32,
    bottom: u32,
    ops: Latency,
    bootstraps: usize,
    boot_cost: Latency,
}

fn region_name(graph: &LevelGraph, region: u32) -> &str {
    let name = graph.regions()[region as usize].as_str();
    if name.is_empty() { "(none)" } else { name }
}
