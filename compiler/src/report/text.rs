//! The text report: summary, per-block and per-kind tables, bootstraps, approximations, provenance.

use std::fmt::Write;

use super::{Report, Row};

fn seconds(s: f64) -> String {
    let s = s.max(0.0);
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= f64::from(1u32 << 30) {
        format!("{:.2} GiB", b / f64::from(1u32 << 30))
    } else {
        format!("{:.2} MiB", b / f64::from(1u32 << 20))
    }
}

fn table(out: &mut String, title: &str, rows: &[Row], total: f64) {
    let width = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(5);
    let _ = writeln!(out, "\n{title}");
    let _ = writeln!(
        out,
        "  {:<width$}  {:>7}  {:>9}  {:>7}  {:>8}  {:>6}  {:>9}  {:>10}  {:>6}",
        "", "instrs", "ct ops", "levels", "rescales", "boots", "rotations", "est. time", "share"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "  {:<width$}  {:>7}  {:>9}  {:>7}  {:>8}  {:>6}  {:>9}  {:>10}  {:>5.1}%",
            row.name,
            row.instructions,
            row.ciphertext_ops,
            format!("{}→{}", row.level_in, row.level_out),
            row.rescales,
            row.bootstraps,
            row.rotations,
            seconds(row.seconds),
            if total > 0.0 {
                100.0 * row.seconds / total
            } else {
                0.0
            }
        );
    }
}

/// Renders `report` as text.
pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::new();
    if s.insecure {
        let _ = writeln!(out, "!!! INSECURE TEST PARAMETERS — NOT FOR REAL DATA !!!");
    }
    let _ = writeln!(
        out,
        "ensi plan report — model `{}`, T = {}",
        s.model, s.tokens
    );
    let _ = writeln!(out, "security: {}", s.security);
    let _ = writeln!(
        out,
        "ring: N = 2^{}, log2(QP) = {:.1}, top level {}, dnum {}; values use levels 0..={}",
        s.log_n, s.log_qp, s.top_level, s.dnum, s.max_value_level
    );
    let _ = writeln!(out, "encodings: {}; placement: {}", s.encodings, s.policy);
    if let Some((_, how)) = report.provenance.iter().find(|(k, _)| k == "placement") {
        let _ = writeln!(out, "placement: {how}");
    }
    let _ = writeln!(
        out,
        "work: {} instructions, {} ciphertext ops, {} rescales, {} rotations, {} bootstraps ({} ciphertexts)",
        s.instructions,
        s.ciphertext_ops,
        s.rescales,
        s.rotations,
        s.bootstraps,
        s.bootstrapped_ciphertexts
    );
    let _ = writeln!(
        out,
        "estimated latency: {} (one thread); bootstrapping {} = {:.2}% of the time, {:.3}% of the ciphertext ops",
        seconds(s.estimated_seconds),
        seconds(s.bootstrap_seconds),
        100.0 * s.bootstrap_time_share.max(0.0),
        100.0 * s.bootstrap_op_share
    );
    let _ = writeln!(
        out,
        "keys: {} Galois elements, {} of switching keys",
        s.galois_keys,
        bytes(s.key_bytes)
    );
    if s.predicted_error.is_nan() {
        let _ = writeln!(
            out,
            "precision: target {:.3e}; no end-to-end prediction",
            s.target_error
        );
    } else {
        let _ = writeln!(
            out,
            "precision: predicted max |error| / max |output| = {:.3e} (target {:.3e})",
            s.predicted_error, s.target_error
        );
    }
    table(&mut out, "per block", &report.blocks, s.estimated_seconds);
    table(&mut out, "per op kind", &report.kinds, s.estimated_seconds);
    let _ = writeln!(out, "\nbootstraps");
    if report.bootstraps.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for b in &report.bootstraps {
        let _ = writeln!(
            out,
            "  v{} in {}: {} ct × {} slots, level {} → {}, {}: {}",
            b.value,
            b.region,
            b.ciphertexts,
            b.slots,
            b.levels.0,
            b.levels.1,
            seconds(b.seconds),
            b.reason
        );
    }
    let _ = writeln!(out, "\napproximations");
    for a in &report.approximations {
        let _ = writeln!(
            out,
            "  {}: degree {}, depth {}, max error {:.3e}, {} uses",
            a.function, a.degree, a.depth, a.max_error, a.uses
        );
    }
    let _ = writeln!(out, "\nprovenance");
    for (key, value) in &report.provenance {
        if key.starts_with("ternary.") {
            continue;
        }
        let _ = writeln!(out, "  {key}: {value}");
    }
    out
}
