//! Placement of the BitNet-layer examples (ir-examples/*.levels) under every policy: text-report snapshots, policy order, the 30-layer T=128 planning run, and `.levels` errors.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::time::Instant;

use ensi_compiler::place::{self, Exactness, Policy, text};

fn example(name: &str, layers: u32) -> text::Parsed {
    let path = format!("{}/../ir-examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let source = source.replace("layers 2 {", &format!("layers {layers} {{"));
    text::parse(&source).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn snapshot_all_policies(file: &str, tag: &str) {
    let parsed = example(file, 2);
    let mut totals = Vec::new();
    for policy in Policy::ALL {
        let placement = place::place(&parsed.graph, policy).unwrap();
        insta::assert_snapshot!(
            format!("{tag}-{policy}"),
            place::report(&parsed.graph, &placement)
        );
        totals.push((policy, placement.total(), placement.exactness));
    }
    let [
        (_, greedy, _),
        (_, rmsnorm, rms_exact),
        (_, optimal, opt_exact),
    ] = totals[..]
    else {
        unreachable!("three policies")
    };
    assert!(optimal <= rmsnorm && optimal <= greedy, "{totals:?}");
    assert_eq!(
        (rms_exact, opt_exact),
        (Exactness::Optimal, Exactness::Optimal)
    );
}

#[test]
fn bitnet_layers_at_t8() {
    snapshot_all_policies("bitnet-layers-t8.levels", "bitnet-t8");
}

#[test]
fn bitnet_layers_at_t128() {
    snapshot_all_policies("bitnet-layers-t128.levels", "bitnet-t128");
}

/// The 2B-4T shape: 30 layers at T = 128 (about 25,000 nodes). Planning time is printed,
/// not asserted (timings belong to benches); the structure that makes it fast is asserted:
/// one layer's two segments solved once, the 127 shifted products folded into one lane.
#[test]
fn thirty_layers_at_t128() {
    let start = Instant::now();
    let parsed = example("bitnet-layers-t128.levels", 30);
    eprintln!(
        "parse + cost tables: {:?} for {} nodes",
        start.elapsed(),
        parsed.graph.len()
    );
    for policy in Policy::ALL {
        let start = Instant::now();
        let p = place::place(&parsed.graph, policy).unwrap();
        let elapsed = start.elapsed();
        eprintln!(
            "{policy}: placed in {elapsed:?}; {} = ops {} + bootstraps {} ({:.2}%), {} bootstraps of {} ciphertexts; {:?}",
            p.total(),
            p.cost.ops,
            p.cost.bootstraps,
            100.0 * p.bootstrap_share(),
            p.cost.bootstrap_count,
            p.cost.bootstrapped_ciphertexts,
            p.stats
        );
        if policy != Policy::Greedy {
            assert_eq!(p.stats.segments, 61);
            assert_eq!(p.stats.distinct_segments, 3);
            assert_eq!(p.stats.folded_nodes, 1 + 30 * 67);
        }
    }
}

/// The same layers with attention's sum written as a chain of binary adds whose partial
/// sums no policy may bootstrap: absorption turns the chain back into one n-ary sum, so
/// the optimum and the folded size are those of the n-ary form.
#[test]
fn an_accumulation_chain_plans_like_one_sum() {
    let path = format!(
        "{}/../ir-examples/bitnet-layers-t8.levels",
        env!("CARGO_MANIFEST_DIR")
    );
    let source = std::fs::read_to_string(&path).unwrap();
    let chain: String = (1..8)
        .map(|r| {
            format!(
                "  attn.acc{r} = add attn.acc{} attn.o{r} site=never\n",
                r - 1
            )
        })
        .collect();
    let chained = source
        .replace(
            "  attn.o = sum attn.o{0..8} site=norm\n",
            &format!("  attn.acc0 = add_const attn.o0 site=never\n{chain}  attn.o = add_const attn.acc7 site=norm\n"),
        );
    assert_ne!(chained, source);
    let summed = example("bitnet-layers-t8.levels", 2);
    let chained = text::parse(&chained).unwrap();
    for policy in [Policy::Optimal, Policy::RmsNorm] {
        let a = place::place(&summed.graph, policy).unwrap();
        let b = place::place(&chained.graph, policy).unwrap();
        // The chain costs one add_const more per layer than the sum; the same bootstraps.
        assert!(b.cost.ops >= a.cost.ops, "{policy}");
        assert_eq!(b.cost.bootstraps, a.cost.bootstraps, "{policy}");
        assert_eq!(b.stats.folded_nodes, a.stats.folded_nodes, "{policy}");
    }
}

#[test]
fn levels_files_report_errors_by_line() {
    let cases = [
        ("x = input cts=1 slots=16\n", "line 1: no `ring` line"),
        (
            "ring log_n=16 max_level=4\nx = input cts=1 slots=16\ny = frobnicate x\n",
            "line 3: unknown op `frobnicate`",
        ),
        (
            "ring log_n=16 max_level=4\nx = input cts=1 slots=16\ny = square z\n",
            "line 3: unknown value `z`",
        ),
        (
            "ring log_n=16 max_level=4\nx = input cts=1 slots=16\ny = poly x degree=63\n",
            "line 3: `y` consumes 6 levels but at most 4 are available after a bootstrap (L_max)",
        ),
        (
            "ring log_n=16 max_level=4\nx = input cts=1 slots=16\nlayers 2 {\n  x = square x\n",
            "line 4: a block is not closed with `}`",
        ),
        (
            "ring log_n=16 max_level=4 color=red\n",
            "line 1: unknown ring key `color`",
        ),
        (
            "ring log_n=16 max_level=4\nx = input cts=1 slots=16\ny = mul x\n",
            "line 3: `mul` takes 2 operand(s), got 1",
        ),
    ];
    for (source, message) in cases {
        let err = text::parse(source).unwrap_err();
        assert_eq!(err.to_string(), message, "{source}");
    }
}

#[test]
fn levels_files_expand_layers_and_shifts() {
    let source = "ring log_n=16 max_level=8\n\
                  x = input cts=2 slots=16\n\
                  layers 2 {\n\
                    for r in 0..3 {\n\
                      p{r} = square x\n\
                    }\n\
                    s = sum p{0..3}\n\
                    x = add s x site=norm\n\
                  }\n";
    let parsed = text::parse(source).unwrap();
    let names: Vec<&str> = parsed.graph.nodes().iter().map(|n| n.name()).collect();
    assert_eq!(
        names,
        [
            "x",
            "layer0.p0",
            "layer0.p1",
            "layer0.p2",
            "layer0.s",
            "layer0.x",
            "layer1.p0",
            "layer1.p1",
            "layer1.p2",
            "layer1.s",
            "layer1.x"
        ]
    );
    // The second layer reads the first layer's x; the sum reads its three shifts.
    assert_eq!(parsed.graph.nodes()[6].operands(), &[place::NodeId(5)]);
    assert_eq!(parsed.graph.nodes()[4].operands().len(), 3);
    assert_eq!(parsed.graph.nodes()[5].count(), 2);
    assert_eq!(
        parsed.graph.regions()[parsed.graph.nodes()[4].region().0 as usize],
        "layer0"
    );
}
