//! IR unit tests: text round trips (property-based), parse errors and verifier errors by message.

use proptest::prelude::*;

use super::*;

fn handle() -> impl Strategy<Value = Handle<Node>> {
    (0usize..40).prop_map(Handle::from_index)
}

fn name() -> impl Strategy<Value = TensorName> {
    any::<String>().prop_map(TensorName)
}

fn real() -> impl Strategy<Value = Real> {
    // NaN has many bit patterns but one text form; every other f64 round-trips exactly.
    any::<f64>()
        .prop_filter("not NaN", |x| !x.is_nan())
        .prop_map(Real)
}

fn kind() -> impl Strategy<Value = AttentionKind> {
    prop_oneof![Just(AttentionKind::Softmax), Just(AttentionKind::Sigmoid)]
}

/// Any op of the table, with arbitrary (possibly dangling, possibly ill-typed) operands.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Tokens {}),
        (handle(), name()).prop_map(|(ids, table)| Op::Embed { ids, table }),
        (handle(), name(), real(), real()).prop_map(|(x, gain, gain_scale, eps)| Op::RmsNorm {
            x,
            gain,
            gain_scale,
            eps
        }),
        (handle(), any::<u32>()).prop_map(|(x, bits)| Op::ActQuant { x, bits }),
        (handle(), name(), real()).prop_map(|(x, weight, scale)| Op::TernaryLinear {
            x,
            weight,
            scale
        }),
        (handle(), real()).prop_map(|(x, factor)| Op::Scale { x, factor }),
        (handle(), any::<usize>(), any::<usize>(), real()).prop_map(
            |(x, heads, head_dim, theta)| Op::Rope {
                x,
                heads,
                head_dim,
                theta
            }
        ),
        (
            [handle(), handle(), handle()],
            (any::<usize>(), any::<usize>(), any::<usize>()),
            kind(),
            any::<bool>(),
            real()
        )
            .prop_map(
                |([q, k, v], (heads, kv_heads, head_dim), kind, causal, score_scale)| {
                    Op::Attention {
                        q,
                        k,
                        v,
                        heads,
                        kv_heads,
                        head_dim,
                        kind,
                        causal,
                        score_scale,
                    }
                }
            ),
        handle().prop_map(|x| Op::Relu2 { x }),
        (handle(), real()).prop_map(|(x, input_scale)| Op::Silu { x, input_scale }),
        (handle(), handle()).prop_map(|(lhs, rhs)| Op::Mul { lhs, rhs }),
        (handle(), handle()).prop_map(|(lhs, rhs)| Op::Add { lhs, rhs }),
        (handle(), name(), any::<bool>()).prop_map(|(x, weight, tied)| Op::LmHead {
            x,
            weight,
            tied
        }),
    ]
}

fn ty() -> impl Strategy<Value = Type> {
    prop_oneof![
        any::<usize>().prop_map(|len| Type::Ids { len }),
        (any::<usize>(), any::<usize>()).prop_map(|(rows, cols)| Type::Tensor { rows, cols }),
    ]
}

fn graph() -> impl Strategy<Value = Graph> {
    (
        prop::collection::vec((op(), ty()), 0..24),
        prop::collection::vec(("[A-Za-z_][A-Za-z0-9_]{0,8}", handle()), 0..4),
    )
        .prop_map(|(nodes, outputs)| {
            let mut graph = Graph::new();
            for (op, ty) in nodes {
                graph.push(op, ty);
            }
            for (name, value) in outputs {
                graph.add_output(name, value);
            }
            graph
        })
}

proptest! {
    #[test]
    fn text_round_trips(graph in graph()) {
        let text = print(&graph);
        prop_assert_eq!(parse(&text), Ok(graph), "{}", text);
    }
}

#[test]
fn the_op_table_is_consistent() {
    for &kind in OpKind::ALL {
        assert_eq!(OpKind::from_mnemonic(kind.mnemonic()), Some(kind));
        assert!(kind.operand_names().len() <= MAX_OPERANDS);
    }
    let mut mnemonics: Vec<_> = OpKind::ALL.iter().map(|kind| kind.mnemonic()).collect();
    mnemonics.sort_unstable();
    mnemonics.dedup();
    assert_eq!(mnemonics.len(), OpKind::ALL.len(), "mnemonics are unique");
}

/// A small valid graph using every op of the table.
const BLOCK: &str = include_str!("../../../ir-examples/attention-block.ir");

#[test]
fn a_valid_graph_verifies_and_prints_canonically() {
    let graph = parse(BLOCK).expect("parses");
    let info = verify(&graph).expect("verifies");
    assert_eq!(info.tokens(), 3);
    assert_eq!(info.input(), Handle::from_index(0));
    assert_eq!(
        info.last_use(Handle::from_index(1)),
        Some(Handle::from_index(13))
    );
    assert_eq!(info.last_use(Handle::from_index(15)), None);
    assert!(info.describes(&graph));
    let canonical = print(&graph);
    assert!(canonical.starts_with("%0: ids[3] = tokens\n%1: [3, 8] = embed %0, table=\"embed\"\n"));
    assert_eq!(parse(&canonical), Ok(graph));
}

/// `BLOCK` with the line that starts with `prefix` replaced.
fn block_with(prefix: &str, replacement: &str) -> String {
    BLOCK
        .lines()
        .map(|text| {
            if text.starts_with(prefix) {
                replacement
            } else {
                text
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn verifier_errors_name_the_node_and_the_rule() {
    let cases = [
        (
            "%3:",
            "%3: [3, 8] = act_quant %5, bits=8",
            "%3 (act_quant): operand %5 is not defined before its use",
        ),
        (
            "%3:",
            "%3: [3, 8] = act_quant %0, bits=8",
            "%3 (act_quant): operand %0 has type ids[3], expected a tensor [T, d]",
        ),
        (
            "%3:",
            "%3: [3, 8] = act_quant %2, bits=1",
            "%3 (act_quant): attribute `bits` must be in 2..=16, found 1",
        ),
        (
            "%3:",
            "%3: [3, 9] = act_quant %2, bits=8",
            "%3 (act_quant): declared type [3, 9], but the op produces [3, 8]",
        ),
        (
            "%2:",
            "%2: [3, 8] = rms_norm %1, gain=\"norm\", gain_scale=1.0, eps=-1.0",
            "%2 (rms_norm): attribute `eps` must be positive and finite, found -1.0",
        ),
        (
            "%2:",
            "%2: [3, 8] = rms_norm %1, gain=\"norm\", gain_scale=0.0, eps=1e-5",
            "%2 (rms_norm): attribute `gain_scale` must be positive and finite, found 0.0",
        ),
        (
            "%2:",
            "%2: [3, 8] = rms_norm %1, gain=\"\", gain_scale=1.0, eps=1e-5",
            "%2 (rms_norm): attribute `gain` must name a tensor",
        ),
        (
            "%4:",
            "%4: [3, 8] = ternary_linear %3, weight=\"q\", scale=inf",
            "%4 (ternary_linear): attribute `scale` must be positive and finite, found inf",
        ),
        (
            "%4:",
            "%4: [3, 0] = ternary_linear %3, weight=\"q\", scale=0.5",
            "%4 (ternary_linear): declared type [3, 0] must be a tensor [T, d] with d ≥ 1",
        ),
        (
            "%7:",
            "%7: [3, 8] = rope %4, heads=2, head_dim=3, theta=10000.0",
            "%7 (rope): attribute `head_dim` must be positive and even, found 3",
        ),
        (
            "%7:",
            "%7: [3, 8] = rope %4, heads=1, head_dim=4, theta=10000.0",
            "%7 (rope): operand %4 has type [3, 8], expected [T, 4] (heads × head_dim)",
        ),
        (
            "%9:",
            "%9: [3, 8] = attention %7, %8, %6, heads=2, kv_heads=1, head_dim=4, kind=sigmoid, causal=true, score_scale=-2.0",
            "%9 (attention): attribute `score_scale` must be positive and finite, found -2.0",
        ),
        (
            "%14:",
            "%14: [3, 8] = scale %13, factor=-0.5",
            "%14 (scale): attribute `factor` must be positive and finite, found -0.5",
        ),
        (
            "%14:",
            "%14: [3, 4] = scale %13, factor=0.5",
            "%14 (scale): declared type [3, 4], but the op produces [3, 8]",
        ),
        (
            "%11:",
            "%11: [3, 8] = silu %9, input_scale=NaN",
            "%11 (silu): attribute `input_scale` must be positive and finite, found NaN",
        ),
        (
            "%9:",
            "%9: [3, 8] = attention %7, %8, %6, heads=2, kv_heads=3, head_dim=4, kind=sigmoid, causal=true, score_scale=1.0",
            "%9 (attention): attribute `kv_heads` must be positive and divide heads = 2, found 3",
        ),
        (
            "%9:",
            "%9: [3, 8] = attention %7, %7, %6, heads=2, kv_heads=1, head_dim=4, kind=sigmoid, causal=true, score_scale=1.0",
            "%9 (attention): operand %7 has type [3, 8], expected [3, 4] (kv_heads × head_dim)",
        ),
        (
            "%12:",
            "%12: [3, 8] = mul %10, %5",
            "%12 (mul): operand %5 has type [3, 4], expected [3, 8] (the type of %10)",
        ),
        (
            "%1:",
            "%1: [3, 8] = embed %1, table=\"embed\"",
            "%1 (embed): operand %1 is not defined before its use",
        ),
        (
            "%1:",
            "%1: ids[3] = tokens",
            "graph input: %1 is a second `tokens` node (the first is %0)",
        ),
        (
            "%0:",
            "%0: ids[0] = tokens",
            "%0 (tokens): declared type ids[0] must be ids[T] with T ≥ 1",
        ),
        (
            "output hidden",
            "output hidden = %99",
            "output `hidden`: %99 is not a node",
        ),
        (
            "output hidden",
            "output logits = %13",
            "output `logits`: the name is used twice",
        ),
        (
            "output hidden",
            "output hidden.state = %13",
            "output `hidden.state`: the name is not an identifier ([A-Za-z_][A-Za-z0-9_]*)",
        ),
    ];
    for (line, replacement, message) in cases {
        let graph = parse(&block_with(line, replacement)).expect("parses");
        let error = verify(&graph).expect_err(replacement);
        assert_eq!(error.to_string(), message, "{replacement}");
    }
}

#[test]
fn graphs_without_input_or_outputs_do_not_verify() {
    let graph = parse("output x = %0").expect("parses");
    assert_eq!(
        verify(&graph).expect_err("empty").to_string(),
        "graph input: no `tokens` node"
    );
    let graph = parse("%0: ids[2] = tokens").expect("parses");
    assert_eq!(
        verify(&graph).expect_err("no outputs").to_string(),
        "graph input: the graph has no outputs"
    );
}

#[test]
fn parse_errors_give_the_line() {
    let cases = [
        (
            "%1: ids[3] = tokens",
            "line 1: expected node %0 (nodes are numbered in order), found %1",
        ),
        ("%0: ids[3] = token", "line 1: unknown op `token`"),
        ("%0: ids[3] tokens", "line 1: expected `=`, found `tokens`"),
        ("%0: [3 8] = tokens", "line 1: expected `,`, found `8`"),
        (
            "%0: ids[3] = tokens x=1",
            "line 1: `tokens` has no attribute `x`",
        ),
        (
            "%0: ids[3] = tokens %4",
            "line 1: `tokens` takes 0 operands, found 1",
        ),
        (
            "%0: [3, 8] = rms_norm %0, gain_scale=1.0, eps=1e-5",
            "line 1: `rms_norm` needs attribute `gain`",
        ),
        (
            "%0: [3, 8] = rms_norm %0, gain=\"g\", gain_scale=1.0, eps=small",
            "line 1: attribute `eps`: expected a number, found `small`",
        ),
        (
            "%0: [3, 8] = rms_norm %0, gain=g, gain_scale=1.0, eps=1.0",
            "line 1: attribute `gain`: expected a quoted tensor name, found `g`",
        ),
        (
            "%0: [3, 8] = rms_norm %0, gain=\"g\", gain_scale=1.0, eps=1.0, eps=2.0",
            "line 1: attribute `eps` is given twice",
        ),
        (
            "%0: [3, 8] = add eps=1.0, %0",
            "line 1: operand %0 after attributes; operands come first",
        ),
        (
            "%0: [3, 8] = rms_norm %0, gain=\"g, eps=1.0",
            "line 1: unterminated string starting at column 32",
        ),
        (
            "%0: [3, 8] = rms_norm %0, gain=\"\\q\", eps=1.0",
            "line 1: unknown escape `\\q` in string starting at column 32",
        ),
        (
            "\n\n%x: ids[3] = tokens",
            "line 3: `%` must be followed by a node number, at column 1",
        ),
        (
            "%0: ids[3] = tokens,",
            "line 1: expected an operand or `name=value`, found `,`",
        ),
        (
            "%0: [3, 8] = relu2 %0,",
            "line 1: expected an operand or `name=value`, found the end of the line",
        ),
        (
            "hello",
            "line 1: expected a node `%N: …` or `output`, found `hello`",
        ),
        ("output = %0", "line 1: expected an output name, found `=`"),
    ];
    for (text, message) in cases {
        assert_eq!(parse(text).expect_err(text).to_string(), message, "{text}");
    }
}
