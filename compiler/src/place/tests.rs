//! Tests of the placement policies: brute force against the exact program on seeded random graphs, policy order, layer reuse, twin folding, fallback and errors.

use super::exact::folded_members;
use super::*;
use crate::cost::Latency;

/// SplitMix64: a seeded generator, so every case is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn lat(v: u64) -> Latency {
    Latency::from_nanos(v)
}

/// A random bootstrap table: infinite below a minimum input level, growing with the target,
/// with some dependence on the input level.
fn bootstrap_table(rng: &mut Rng, max_level: u32) -> Vec<Latency> {
    let levels = max_level + 1;
    let min_input = u32::from(rng.chance(15));
    let base = 40 + rng.below(60);
    let slope = 5 + rng.below(20);
    let mut table = Vec::new();
    for input in 0..levels {
        for target in 0..levels {
            table.push(if input < min_input {
                Latency::INFINITE
            } else {
                lat(base + slope * u64::from(target) + u64::from(input) * rng.below(3))
            });
        }
    }
    table
}

/// Node parameters drawn once (twins reuse them).
#[derive(Clone)]
struct Shape {
    depth: u32,
    count: u32,
    costs: Vec<Latency>,
    site: BootstrapSite,
}

fn shape(rng: &mut Rng, max_level: u32) -> Shape {
    let depth = [0, 0, 1, 1, 1, 2][rng.below(6) as usize].min(max_level);
    let base = rng.below(20);
    let slope = 1 + rng.below(8);
    let costs = (0..=max_level)
        .map(|e| {
            if e < depth || rng.chance(2) {
                Latency::INFINITE
            } else {
                lat(base + slope * u64::from(e) + rng.below(5))
            }
        })
        .collect();
    let site = match rng.below(10) {
        0..=1 => BootstrapSite::Never,
        2..=5 => BootstrapSite::Any,
        _ => BootstrapSite::Norm,
    };
    Shape {
        depth,
        count: 1 + rng.below(3) as u32,
        costs,
        site,
    }
}

struct Builder {
    graph: LevelGraph,
}

impl Builder {
    fn new(rng: &mut Rng, max_level: u32) -> Builder {
        let table = bootstrap_table(rng, max_level);
        Builder {
            graph: LevelGraph::new(BootstrapCosts::uniform(max_level, table).unwrap()),
        }
    }

    fn add(&mut self, s: &Shape, operands: &[NodeId]) -> NodeId {
        let name = format!("v{}", self.graph.len());
        let mut spec = NodeSpec::new(
            name,
            operands.to_vec(),
            s.depth,
            s.count,
            16,
            s.costs.clone(),
        )
        .site(s.site);
        if operands.is_empty() {
            spec.depth = 0;
            spec.op_cost = vec![Latency::ZERO; s.costs.len()];
        }
        self.graph.add(spec).unwrap()
    }

    fn input(&mut self, rng: &mut Rng) -> NodeId {
        let level = self.graph.max_level() - u32::from(rng.chance(30));
        let s = Shape {
            depth: 0,
            count: 1,
            costs: vec![Latency::ZERO; self.graph.max_level() as usize + 1],
            site: BootstrapSite::Any,
        };
        let name = format!("v{}", self.graph.len());
        let spec = NodeSpec::new(name, vec![], 0, s.count, 16, s.costs).input_level(level);
        self.graph.add(spec).unwrap()
    }
}

/// The families of the brute-force tests.
fn random_graph(seed: u64) -> LevelGraph {
    let mut rng = Rng(seed);
    let family = seed % 6;
    let max_level = if family == 3 || family == 5 {
        3
    } else {
        3 + rng.below(2) as u32
    };
    let mut b = Builder::new(&mut rng, max_level);
    let x = b.input(&mut rng);
    match family {
        // Chain.
        0 => {
            let mut prev = x;
            for _ in 0..5 + rng.below(3) {
                let s = shape(&mut rng, max_level);
                prev = b.add(&s, &[prev]);
            }
        }
        // Diamonds in series.
        1 => {
            let mut prev = x;
            for _ in 0..2 {
                let (s1, s2, s3) = (
                    shape(&mut rng, max_level),
                    shape(&mut rng, max_level),
                    shape(&mut rng, max_level),
                );
                let a = b.add(&s1, &[prev]);
                let c = b.add(&s2, &[prev]);
                prev = b.add(&s3, &[a, c]);
            }
        }
        // Residual block: a norm-like statistic path, a product, a skip connection.
        2 => {
            let mut prev = x;
            for _ in 0..2 {
                let (s1, s2, s3, s4) = (
                    shape(&mut rng, max_level),
                    shape(&mut rng, max_level),
                    shape(&mut rng, max_level),
                    shape(&mut rng, max_level),
                );
                let stat = b.add(&s1, &[prev]);
                let inv = b.add(&s2, &[stat]);
                let y = b.add(&s3, &[prev, inv]);
                prev = b.add(&s4, &[prev, y]);
            }
        }
        // Attention-like fan-out: q, k, v into T identical shifts, summed by one n-ary node.
        3 | 5 => {
            let (sq, sk, sv) = (
                shape(&mut rng, max_level),
                shape(&mut rng, max_level),
                shape(&mut rng, max_level),
            );
            let q = b.add(&sq, &[x]);
            let k = b.add(&sk, &[x]);
            let v = b.add(&sv, &[x]);
            let shifts: Vec<Shape> = (0..4).map(|_| shape(&mut rng, max_level)).collect();
            let mut outs = Vec::new();
            let chained = family == 5;
            let mut sum_shape = shape(&mut rng, max_level);
            if chained && rng.chance(50) {
                // Partial sums no policy bootstraps, cheaper at lower levels: absorbed.
                sum_shape.depth = 0;
                sum_shape.site = BootstrapSite::Never;
                sum_shape.costs = (0..=u64::from(max_level)).map(|e| lat(3 + 2 * e)).collect();
            }
            for _ in 0..2 {
                let kr = b.add(&shifts[0], &[k]);
                let p = b.add(&shifts[1], &[q, kr]);
                let a = b.add(&shifts[2], &[p]);
                let o = b.add(&shifts[3], &[a, v]);
                outs.push(o);
                if chained && outs.len() >= 2 {
                    let acc = b.add(&sum_shape, &outs[outs.len() - 2..]);
                    outs.pop();
                    outs.pop();
                    outs.push(acc);
                }
            }
            if !chained {
                b.add(&sum_shape, &outs);
            }
        }
        // Random DAG.
        _ => {
            let mut nodes = vec![x];
            for _ in 0..6 + rng.below(2) {
                let s = shape(&mut rng, max_level);
                let arity = 1 + rng.below(2) as usize;
                let ops: Vec<NodeId> = (0..arity)
                    .map(|_| {
                        let back = rng.below(3.min(nodes.len() as u64)) as usize;
                        nodes[nodes.len() - 1 - back]
                    })
                    .collect();
                nodes.push(b.add(&s, &ops));
            }
        }
    }
    b.graph
}

/// The exhaustive minimum over every execution level and bootstrap choice of every node:
/// `(bootstraps, latency)` for `rmsnorm` (fewest bootstraps first), `(0, latency)` else.
fn brute_force(graph: &LevelGraph, policy: Policy) -> Option<(u64, Latency)> {
    struct Search<'g> {
        graph: &'g LevelGraph,
        policy: Policy,
        available: Vec<Level>,
        best: Option<(u64, Latency)>,
        /// Cheapest op of every node from here on (an admissible bound).
        rest: Vec<Latency>,
    }
    impl Search<'_> {
        fn key(&self, bootstraps: u64, latency: Latency) -> (u64, Latency) {
            if self.policy == Policy::RmsNorm {
                (bootstraps, latency)
            } else {
                (0, latency)
            }
        }
        fn go(&mut self, i: usize, bootstraps: u64, latency: Latency) {
            let bound = self.key(bootstraps, latency + self.rest[i]);
            if self.best.is_some_and(|best| bound >= best) {
                return;
            }
            if i == self.graph.len() {
                self.best = Some(self.key(bootstraps, latency));
                return;
            }
            let id = NodeId(i as u32);
            let node = self.graph.node(id);
            let ceiling = self.graph.operand_level(id, |o| self.available[o.index()]);
            let top = self.graph.max_level();
            for e in node.depth()..=ceiling.min(top) {
                let op = node.op_cost(e);
                if op.is_infinite() {
                    continue;
                }
                let output = e - node.depth();
                self.available[i] = output;
                self.go(i + 1, bootstraps, latency + op);
                if !node.site().allows(self.policy) {
                    continue;
                }
                for t in 0..=top {
                    if t == output || (self.policy == Policy::RmsNorm && t != top) {
                        continue;
                    }
                    let boot = self.graph.bootstrap_cost(id, output, t);
                    if boot.is_infinite() {
                        continue;
                    }
                    self.available[i] = t;
                    self.go(i + 1, bootstraps + 1, latency + op + boot);
                }
            }
        }
    }
    let mut rest = vec![Latency::ZERO; graph.len() + 1];
    for i in (0..graph.len()).rev() {
        let cheapest = graph.nodes()[i]
            .op_costs()
            .iter()
            .copied()
            .min()
            .unwrap_or(Latency::ZERO);
        rest[i] = rest[i + 1] + cheapest;
    }
    let mut search = Search {
        graph,
        policy,
        available: vec![0; graph.len()],
        best: None,
        rest,
    };
    search.go(0, 0, Latency::ZERO);
    search.best
}

fn objective(p: &Placement) -> (u64, Latency) {
    match p.policy {
        Policy::RmsNorm => (u64::from(p.cost.bootstrap_count), p.total()),
        _ => (0, p.total()),
    }
}

const CASES: u64 = 360;

#[test]
fn exact_policies_equal_brute_force_on_random_graphs() {
    let mut agreed = [0u32; 2];
    let mut infeasible = [0u32; 2];
    // Cases that exercised absorption, twin folding, several segments, steps wider than
    // a series-parallel one.
    let mut exercised = [0u32; 4];
    for seed in 0..CASES {
        let graph = random_graph(seed);
        for (k, policy) in [Policy::Optimal, Policy::RmsNorm].into_iter().enumerate() {
            let brute = brute_force(&graph, policy);
            match (place(&graph, policy), brute) {
                (Ok(p), Some(best)) => {
                    assert_eq!(objective(&p), best, "seed {seed} {policy}");
                    assert_eq!(p.exactness, Exactness::Optimal);
                    agreed[k] += 1;
                    let s = p.stats;
                    let levels = u64::from(graph.max_level()) + 1;
                    exercised[0] += u32::from(s.absorbed_nodes > 0);
                    exercised[1] += u32::from(s.folded_nodes + s.absorbed_nodes < s.nodes);
                    exercised[2] += u32::from(s.segments > 2);
                    exercised[3] += u32::from(s.largest_table > levels.pow(3));
                }
                (Err(PlaceError::Infeasible { .. }), None) => infeasible[k] += 1,
                (got, want) => panic!("seed {seed} {policy}: {got:?} vs brute force {want:?}"),
            }
        }
    }
    eprintln!(
        "brute force agreement over {CASES} graphs: optimal {} (+{} infeasible), rmsnorm {} (+{} infeasible); \
         exercised absorption {}, twin folding {}, 3+ segments {}, steps over (L+1)^3 {}",
        agreed[0],
        infeasible[0],
        agreed[1],
        infeasible[1],
        exercised[0],
        exercised[1],
        exercised[2],
        exercised[3]
    );
    assert!(agreed[0] >= 300 && agreed[1] >= 100, "{agreed:?}");
    assert!(exercised.iter().all(|&n| n >= 20), "{exercised:?}");
}

#[test]
fn every_solver_option_gives_the_same_optimum() {
    let variants = [
        PlaceOptions {
            absorb_nodes: false,
            ..PlaceOptions::default()
        },
        PlaceOptions {
            merge_twins: false,
            ..PlaceOptions::default()
        },
        PlaceOptions {
            split_segments: false,
            ..PlaceOptions::default()
        },
        PlaceOptions {
            reuse_segments: false,
            ..PlaceOptions::default()
        },
        PlaceOptions {
            absorb_nodes: false,
            merge_twins: false,
            split_segments: false,
            reuse_segments: false,
            ..PlaceOptions::default()
        },
    ];
    for seed in 0..120 {
        let graph = random_graph(seed);
        for policy in [Policy::Optimal, Policy::RmsNorm] {
            let Ok(reference) = place(&graph, policy) else {
                continue;
            };
            for options in &variants {
                let p = place_with(&graph, policy, options).unwrap();
                assert_eq!(
                    objective(&p),
                    objective(&reference),
                    "seed {seed} {policy} {options:?}"
                );
            }
        }
    }
}

#[test]
fn optimal_is_never_worse_than_rmsnorm_or_greedy() {
    let (mut vs_rmsnorm, mut vs_greedy, mut greedy_worse) = (0, 0, 0);
    for seed in 0..CASES {
        let graph = random_graph(seed);
        let Ok(optimal) = place(&graph, Policy::Optimal) else {
            continue;
        };
        if let Ok(rmsnorm) = place(&graph, Policy::RmsNorm) {
            assert!(optimal.total() <= rmsnorm.total(), "seed {seed}");
            vs_rmsnorm += 1;
        }
        if let Ok(greedy) = place(&graph, Policy::Greedy) {
            assert!(optimal.total() <= greedy.total(), "seed {seed}");
            vs_greedy += 1;
            greedy_worse += u32::from(optimal.total() < greedy.total());
        }
    }
    assert!(
        vs_rmsnorm > 50 && vs_greedy > 200,
        "{vs_rmsnorm} {vs_greedy}"
    );
    assert!(
        greedy_worse > 50,
        "greedy was optimal too often: {greedy_worse}"
    );
}

/// A layer: norm statistic, inverse, product, two ops, residual add.
fn layers(count: usize, seed: u64) -> LevelGraph {
    let mut rng = Rng(seed);
    let max_level = 4;
    let mut b = Builder::new(&mut rng, max_level);
    let mut x = b.input(&mut rng);
    let shapes: Vec<Shape> = (0..6)
        .map(|_| Shape {
            site: BootstrapSite::Norm,
            ..shape(&mut rng, max_level)
        })
        .collect();
    for _ in 0..count {
        let stat = b.add(&shapes[0], &[x]);
        let inv = b.add(&shapes[1], &[stat]);
        let y = b.add(&shapes[2], &[x, inv]);
        let f = b.add(&shapes[3], &[y]);
        let g = b.add(&shapes[4], &[f, y]);
        x = b.add(&shapes[5], &[x, g]);
    }
    b.graph
}

#[test]
fn identical_layers_are_solved_once_and_match_the_unrolled_program() {
    let unrolled = PlaceOptions {
        absorb_nodes: false,
        merge_twins: false,
        split_segments: false,
        reuse_segments: false,
        ..PlaceOptions::default()
    };
    let mut compared = 0;
    for seed in 0..40 {
        for count in 2..=4 {
            let graph = layers(count, seed);
            for policy in [Policy::Optimal, Policy::RmsNorm] {
                let Ok(reused) = place(&graph, policy) else {
                    assert!(place_with(&graph, policy, &unrolled).is_err());
                    continue;
                };
                let full = place_with(&graph, policy, &unrolled).unwrap();
                assert_eq!(
                    objective(&reused),
                    objective(&full),
                    "seed {seed} layers {count}"
                );
                // One segment for the input, one per layer, of which one is solved.
                assert_eq!(reused.stats.segments, count + 1);
                assert_eq!(reused.stats.distinct_segments, 2);
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "{compared}");
}

#[test]
fn twin_shifts_fold_into_one_lane() {
    let mut rng = Rng(7);
    let mut b = Builder::new(&mut rng, 3);
    let x = b.input(&mut rng);
    let s = shape(&mut rng, 3);
    let (q, k, v) = (b.add(&s, &[x]), b.add(&s, &[x]), b.add(&s, &[x]));
    let lane: Vec<Shape> = (0..3).map(|_| shape(&mut rng, 3)).collect();
    let outs: Vec<NodeId> = (0..5)
        .map(|_| {
            let kr = b.add(&lane[0], &[k]);
            let p = b.add(&lane[1], &[q, kr]);
            b.add(&lane[2], &[p, v])
        })
        .collect();
    b.add(&s, &outs);
    let graph = b.graph;
    let folded = folded_members(&graph);
    // x, the sum, q, k and v in their own classes (q, k, v differ in consumers), the three
    // lane classes of five members each.
    let sizes: Vec<usize> = folded.iter().map(Vec::len).collect();
    assert_eq!(sizes.iter().filter(|&&n| n == 5).count(), 3, "{sizes:?}");
    assert_eq!(folded.len(), 1 + 3 + 3 + 1);
    let optimal = place(&graph, Policy::Optimal).unwrap();
    let unfolded = place_with(
        &graph,
        Policy::Optimal,
        &PlaceOptions {
            merge_twins: false,
            ..PlaceOptions::default()
        },
    )
    .unwrap();
    assert_eq!(optimal.total(), unfolded.total());
    assert_eq!(
        Some(optimal.total().as_nanos()),
        brute_force(&graph, Policy::Optimal).map(|b| b.1.as_nanos())
    );
}

#[test]
fn a_too_wide_segment_falls_back_to_a_clamped_best_found() {
    let mut clamped = 0;
    for seed in 0..60 {
        let graph = random_graph(seed);
        let (Ok(optimal), Ok(greedy)) = (
            place(&graph, Policy::Optimal),
            place(&graph, Policy::Greedy),
        ) else {
            continue;
        };
        let narrow = PlaceOptions {
            work_limit: 8,
            ..PlaceOptions::default()
        };
        let p = place_with(&graph, Policy::Optimal, &narrow).unwrap();
        assert!(
            optimal.total() <= p.total() && p.total() <= greedy.total(),
            "seed {seed}"
        );
        if let Exactness::BestFound { clamped_segments } = p.exactness {
            assert!(clamped_segments > 0);
            clamped += 1;
        }
    }
    assert!(clamped > 20, "{clamped}");
}

fn deep_chain(site: BootstrapSite) -> LevelGraph {
    let mut g = LevelGraph::new(BootstrapCosts::uniform(2, vec![lat(10); 9]).unwrap());
    let x = g
        .add(NodeSpec::new("x", vec![], 0, 1, 16, vec![Latency::ZERO; 3]))
        .unwrap();
    let costs = vec![Latency::INFINITE, lat(1), lat(2)];
    let a = g
        .add(NodeSpec::new("layer0.a", vec![x], 1, 1, 16, costs.clone()).site(site))
        .unwrap();
    let b = g
        .add(NodeSpec::new("layer0.b", vec![a], 1, 1, 16, costs.clone()).site(site))
        .unwrap();
    g.add(NodeSpec::new("layer0.c", vec![b], 1, 1, 16, costs))
        .unwrap();
    g
}

#[test]
fn errors_name_the_node() {
    // An op deeper than the budget cannot even be added.
    let mut g = deep_chain(BootstrapSite::Any);
    let err = g
        .add(NodeSpec::new(
            "layer0.sigma",
            vec![NodeId(3)],
            3,
            1,
            16,
            vec![lat(1); 3],
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`layer0.sigma` consumes 3 levels but at most 2 are available after a bootstrap (L_max)"
    );
    let err = g
        .add(NodeSpec::new(
            "late",
            vec![NodeId(9)],
            0,
            1,
            16,
            vec![lat(1); 3],
        ))
        .unwrap_err();
    assert_eq!(err.to_string(), "`late`: operand n9 is not an earlier node");
    let err = g
        .add(NodeSpec::new(
            "short",
            vec![NodeId(0)],
            0,
            1,
            16,
            vec![lat(1); 2],
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`short`: op-cost table has 2 entries, expected 3 (levels 0..=L_max)"
    );

    // Three levels of depth from a level-2 input: some bootstrap is needed.
    let g = deep_chain(BootstrapSite::Any);
    let err = place(&g, Policy::RmsNorm).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rmsnorm: `layer0.c` needs level 1 but at most 0 can reach it (no value it depends on may be bootstrapped there under this policy)"
    );
    assert_eq!(place(&g, Policy::Optimal).unwrap().cost.bootstrap_count, 1);
    let g = deep_chain(BootstrapSite::Never);
    let err = place(&g, Policy::Greedy).unwrap_err();
    assert_eq!(
        err.to_string(),
        "greedy: `layer0.c` needs level 1 but its operand `layer0.b` is at 0 and may not be bootstrapped"
    );
    assert!(matches!(
        place(&g, Policy::Optimal),
        Err(PlaceError::Infeasible { .. })
    ));
}

#[test]
fn evaluate_checks_every_rule() {
    let g = deep_chain(BootstrapSite::Any);
    let p = place(&g, Policy::Optimal).unwrap();
    assert_eq!(evaluate(&g, &p.nodes).unwrap(), p.cost);
    let mut bad = p.nodes.clone();
    bad[1].level = 2;
    bad[1].output = 1;
    bad[2].level = 2;
    let err = evaluate(&g, &bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid placement: `layer0.b` runs at level 2 but its operands give at most 1"
    );
    let mut bad = p.nodes.clone();
    bad[0].bootstrap = Some(3);
    assert_eq!(
        evaluate(&g, &bad).unwrap_err().to_string(),
        "invalid placement: `x` cannot be bootstrapped from level 2 to 3"
    );
    assert!(evaluate(&g, &p.nodes[..2]).is_err());
}

#[test]
fn bootstrap_reasons_and_shares_are_reported() {
    let g = deep_chain(BootstrapSite::Any);
    let p = place(&g, Policy::Optimal).unwrap();
    let b = &p.bootstraps[0];
    assert!(b.reason.contains("runs at level"), "{}", b.reason);
    assert!(p.bootstrap_share() > 0.0 && p.bootstrap_share() < 1.0);
    let text = report(&g, &p);
    assert!(
        text.contains("placement `optimal` (exact optimum of the policy)"),
        "{text}"
    );
    assert!(text.contains("bootstraps: 1 (1 ciphertexts)"), "{text}");
}

#[test]
fn policy_names_round_trip() {
    for p in Policy::ALL {
        assert_eq!(p.name().parse::<Policy>(), Ok(p));
    }
    assert_eq!(
        "best".parse::<Policy>().unwrap_err(),
        "unknown placement policy `best` (greedy, rmsnorm, optimal)"
    );
}
