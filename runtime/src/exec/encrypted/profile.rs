//! Where an encrypted run spent its time and memory: seconds by op kind and by model region, bootstrap share, peak live ciphertext bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Time and count of one op kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OpTime {
    /// Instructions executed.
    pub count: u64,
    /// Ciphertexts they produced.
    pub ciphertexts: u64,
    /// Wall time spent in them.
    pub time: Duration,
}

/// The profile of one encrypted run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// Wall time of the whole run (instructions only; inputs are given, outputs returned).
    pub total: Duration,
    /// Time by op mnemonic.
    pub by_op: BTreeMap<&'static str, OpTime>,
    /// Time by model region (`layer 0 attention`), in the order regions first ran.
    pub by_region: Vec<(String, Duration)>,
    /// Time spent in bootstraps.
    pub bootstrap: Duration,
    /// Most ciphertext bytes live at once (operands and result of the busiest instruction;
    /// the temporaries inside one instruction are not counted).
    pub peak_bytes: u64,
    /// Most ciphertexts live at once (same accounting).
    pub peak_ciphertexts: u64,
    /// Worker threads the run could use (rayon's pool).
    pub threads: usize,
}

impl Profile {
    /// The share of the run spent bootstrapping (0 when nothing ran).
    pub fn bootstrap_share(&self) -> f64 {
        let total = self.total.as_secs_f64();
        if total > 0.0 {
            self.bootstrap.as_secs_f64() / total
        } else {
            0.0
        }
    }

    pub(super) fn record(
        &mut self,
        op: &'static str,
        region: String,
        ciphertexts: u64,
        time: Duration,
    ) {
        let entry = self.by_op.entry(op).or_default();
        entry.count += 1;
        entry.ciphertexts += ciphertexts;
        entry.time += time;
        match self.by_region.iter_mut().find(|(name, _)| *name == region) {
            Some((_, spent)) => *spent += time,
            None => self.by_region.push((region, time)),
        }
        if op == "bootstrap" {
            self.bootstrap += time;
        }
        self.total += time;
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total.as_secs_f64();
        let share = |t: Duration| {
            if total > 0.0 {
                100.0 * t.as_secs_f64() / total
            } else {
                0.0
            }
        };
        writeln!(
            f,
            "encrypted run: {total:.3} s on {} threads, peak {} ciphertexts ({:.1} MiB), bootstrap {:.1}%",
            self.threads,
            self.peak_ciphertexts,
            self.peak_bytes as f64 / (1024.0 * 1024.0),
            100.0 * self.bootstrap_share()
        )?;
        writeln!(f, "  by op kind:")?;
        let mut ops: Vec<_> = self.by_op.iter().collect();
        ops.sort_by(|a, b| b.1.time.cmp(&a.1.time).then(a.0.cmp(b.0)));
        for (op, time) in ops {
            writeln!(
                f,
                "    {op:<15} {:>9.3} s {:>5.1}%  {:>5} instrs {:>7} cts",
                time.time.as_secs_f64(),
                share(time.time),
                time.count,
                time.ciphertexts
            )?;
        }
        writeln!(f, "  by region:")?;
        for (region, time) in &self.by_region {
            writeln!(
                f,
                "    {region:<28} {:>9.3} s {:>5.1}%",
                time.as_secs_f64(),
                share(*time)
            )?;
        }
        Ok(())
    }
}
