//! The `.levels` text format: a placement problem written as HE ops (costs from the cost model) -> a [`LevelGraph`], for `ir-examples/` and tests.
//!
//! ```text
//! # comment
//! ring log_n=16 max_level=14 special_primes=5 dnum=3 threads=1 bootstrap=ensi
//! x = input cts=20 slots=32768 site=norm
//! layers 2 {                       # the body repeated; names get the prefix `layer<i>.`
//!   sq = square x                  # `x` is the outer x, then the previous layer's
//!   for r in 1..4 {                # `{r}` is replaced by 1, 2, 3
//!     p{r} = rotate_hoisted sq
//!   }
//!   s = sum sq p{1..4}             # `p{1..4}` expands to p1 p2 p3
//!   x = add s x                    # a name defined outside the block is carried
//! }
//! ```
//!
//! A node line is `name = op operand* key=value*`. `cts` and `slots` default to the first
//! operand's; `site` is `never`, `any` (default) or `norm`; an input takes `level`. A node's
//! region is its name up to the last `.`. Ops and their keys: `input`, `add`, `sub`, `sum`
//! (n-ary), `neg`, `add_const`, `add_plain`, `mul_const` (rescaled), `mul_int`, `mul_plain`,
//! `mul`, `square`, `rotate`, `rotate_hoisted`, `mod_up` (site `never` by default),
//! `rot_sum terms=`, `sum_cts` (group = input cts / cts), `rescale`,
//! `linear_columns additions=`, `linear_diagonals diagonals= baby= giant=`, `poly degree=`,
//! `newton` (operands y, x), `repack rotations= masks=`; `add_plain` and `mul_plain` take
//! `cached=false`.

use std::collections::HashMap;

use crate::cost::{BootstrapCircuit, BootstrapEstimate, CostModel, HeOp, RingShape, Threads};

use super::GraphError;
use super::graph::{BootstrapCosts, BootstrapSite, LevelGraph, NodeId, NodeSpec};

/// A `.levels` file that does not describe a placement problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// A malformed line.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A node the graph rejects.
    #[error("line {line}: {source}")]
    Graph {
        /// 1-based line number.
        line: usize,
        /// The graph's error.
        source: GraphError,
    },
}

/// A parsed file: the graph and the cost model its costs came from.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The placement problem.
    pub graph: LevelGraph,
    /// The cost model of its `ring` line.
    pub model: CostModel,
}

#[derive(Debug)]
enum Item {
    Node {
        line: usize,
        text: String,
    },
    Layers {
        line: usize,
        count: u32,
        body: Vec<Item>,
    },
    For {
        line: usize,
        var: String,
        from: u32,
        to: u32,
        body: Vec<Item>,
    },
}

fn syntax(line: usize, message: impl Into<String>) -> TextError {
    TextError::Syntax {
        line,
        message: message.into(),
    }
}

/// Parses a `.levels` file.
///
/// # Errors
/// A [`TextError`] naming the line: a syntax error, an unknown op, name or key, a
/// missing `ring` line, or a node the graph rejects (e.g. deeper than `max_level`).
pub fn parse(text: &str) -> Result<Parsed, TextError> {
    let mut model = None;
    // Blocks under construction: (header, items).
    let mut stack: Vec<(Option<Item>, Vec<Item>)> = vec![(None, Vec::new())];
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let words: Vec<&str> = content.split_whitespace().collect();
        match words.as_slice() {
            ["ring", keys @ ..] => {
                if model.is_some() {
                    return Err(syntax(line, "a second `ring` line"));
                }
                model = Some(ring(line, keys)?);
            }
            ["layers", count, "{"] => {
                let count = number(line, "layer count", count)?;
                stack.push((
                    Some(Item::Layers {
                        line,
                        count,
                        body: Vec::new(),
                    }),
                    Vec::new(),
                ));
            }
            ["for", var, "in", range, "{"] => {
                let (from, to) = range
                    .split_once("..")
                    .ok_or_else(|| syntax(line, format!("`{range}` is not a range a..b")))?;
                let (from, to) = (
                    number(line, "range start", from)?,
                    number(line, "range end", to)?,
                );
                stack.push((
                    Some(Item::For {
                        line,
                        var: var.to_string(),
                        from,
                        to,
                        body: Vec::new(),
                    }),
                    Vec::new(),
                ));
            }
            ["}"] => {
                let (header, items) = stack.pop().unwrap_or((None, Vec::new()));
                let block = match header {
                    Some(Item::Layers { line, count, .. }) => Item::Layers {
                        line,
                        count,
                        body: items,
                    },
                    Some(Item::For {
                        line,
                        var,
                        from,
                        to,
                        ..
                    }) => Item::For {
                        line,
                        var,
                        from,
                        to,
                        body: items,
                    },
                    _ => return Err(syntax(line, "`}` without an open block")),
                };
                match stack.last_mut() {
                    Some((_, parent)) => parent.push(block),
                    None => return Err(syntax(line, "`}` without an open block")),
                }
            }
            _ => match stack.last_mut() {
                Some((_, items)) => items.push(Item::Node {
                    line,
                    text: content.to_string(),
                }),
                None => return Err(syntax(line, "unbalanced blocks")),
            },
        }
    }
    if stack.len() != 1 {
        return Err(syntax(
            text.lines().count(),
            "a block is not closed with `}`",
        ));
    }
    let model = model.ok_or_else(|| syntax(1, "no `ring` line"))?;
    let mut builder = Builder {
        graph: LevelGraph::new(BootstrapCosts::from_model(&model)),
        model: &model,
        names: HashMap::new(),
    };
    let items = stack.pop().map(|(_, items)| items).unwrap_or_default();
    builder.expand(&items, &mut Scope::default())?;
    let graph = builder.graph;
    Ok(Parsed { graph, model })
}

fn number(line: usize, what: &str, text: &str) -> Result<u32, TextError> {
    text.parse()
        .map_err(|_| syntax(line, format!("{what} `{text}` is not a number")))
}

fn keys<'a>(line: usize, words: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, TextError> {
    words
        .iter()
        .map(|w| {
            w.split_once('=')
                .ok_or_else(|| syntax(line, format!("`{w}` is not key=value")))
        })
        .collect()
}

fn ring(line: usize, words: &[&str]) -> Result<CostModel, TextError> {
    let mut shape = RingShape::N16_L14;
    let mut threads = Threads::One;
    let mut estimate = BootstrapEstimate::ENSI_TARGET;
    for (key, value) in keys(line, words)? {
        match key {
            "log_n" => shape.log_n = number(line, key, value)?,
            "max_level" => shape.max_level = number(line, key, value)?,
            "special_primes" => shape.special_primes = number(line, key, value)?,
            "dnum" => shape.dnum = number(line, key, value)?,
            "threads" => {
                threads = match value {
                    "1" => Threads::One,
                    "2" => Threads::Two,
                    _ => return Err(syntax(line, format!("threads `{value}`: 1 or 2"))),
                }
            }
            "bootstrap" => {
                estimate = match value {
                    "ensi" => BootstrapEstimate::ENSI_TARGET,
                    "lattigo" => BootstrapEstimate::LATTIGO_MEASURED,
                    "counted" => BootstrapEstimate::Counted,
                    _ => {
                        return Err(syntax(
                            line,
                            format!("bootstrap `{value}`: ensi, lattigo or counted"),
                        ));
                    }
                }
            }
            _ => return Err(syntax(line, format!("unknown ring key `{key}`"))),
        }
    }
    CostModel::with_bootstrap(shape, threads, BootstrapCircuit::LATTIGO_DEFAULT, estimate)
        .map_err(|e| syntax(line, e.to_string()))
}

/// Names visible while expanding: the outer bindings and, inside a layer, the layer's.
#[derive(Debug, Default, Clone)]
struct Scope {
    prefix: String,
    layer: Option<HashMap<String, NodeId>>,
}

struct Builder<'m> {
    graph: LevelGraph,
    model: &'m CostModel,
    /// Outer bindings (loop-carried names are rebound after each layer).
    names: HashMap<String, NodeId>,
}

impl Builder<'_> {
    fn lookup(&self, scope: &Scope, name: &str) -> Option<NodeId> {
        scope
            .layer
            .as_ref()
            .and_then(|l| l.get(name))
            .or_else(|| self.names.get(name))
            .copied()
    }

    fn expand(&mut self, items: &[Item], scope: &mut Scope) -> Result<(), TextError> {
        for item in items {
            match item {
                Item::Node { line, text } => self.node(*line, text, scope)?,
                Item::For {
                    line,
                    var,
                    from,
                    to,
                    body,
                } => {
                    if from > to {
                        return Err(syntax(*line, format!("empty range {from}..{to}")));
                    }
                    for value in *from..*to {
                        let body = substitute(body, var, value);
                        self.expand(&body, scope)?;
                    }
                }
                Item::Layers { line, count, body } => {
                    if scope.layer.is_some() {
                        return Err(syntax(*line, "`layers` inside `layers`"));
                    }
                    for i in 0..*count {
                        let mut inner = Scope {
                            prefix: format!("layer{i}."),
                            layer: Some(HashMap::new()),
                        };
                        self.expand(body, &mut inner)?;
                        for (name, id) in inner.layer.unwrap_or_default() {
                            if let Some(outer) = self.names.get_mut(&name) {
                                *outer = id;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn node(&mut self, line: usize, text: &str, scope: &mut Scope) -> Result<(), TextError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [name, "=", op, rest @ ..] = words.as_slice() else {
            return Err(syntax(
                line,
                format!("`{text}` is not `name = op operands key=value`"),
            ));
        };
        let twice = match &scope.layer {
            Some(layer) => layer.contains_key(*name),
            None => self.names.contains_key(*name),
        };
        if twice {
            return Err(syntax(line, format!("`{name}` is defined twice")));
        }
        let split = rest
            .iter()
            .position(|w| w.contains('='))
            .unwrap_or(rest.len());
        let mut operands = Vec::new();
        for word in &rest[..split] {
            for operand in expand_range(line, word)? {
                let id = self
                    .lookup(scope, &operand)
                    .ok_or_else(|| syntax(line, format!("unknown value `{operand}`")))?;
                operands.push(id);
            }
        }
        let keys: HashMap<&str, &str> = keys(line, &rest[split..])?.into_iter().collect();
        let get = |key: &str| -> Result<Option<u32>, TextError> {
            keys.get(key).map(|v| number(line, key, v)).transpose()
        };
        let need = |key: &str| -> Result<u32, TextError> {
            get(key)?.ok_or_else(|| syntax(line, format!("`{op}` needs `{key}=`")))
        };
        let first = operands.first().map(|&o| self.graph.node(o));
        let count = match get("cts")? {
            Some(c) => c,
            None => first
                .map(|n| n.count())
                .ok_or_else(|| syntax(line, format!("`{name}` needs `cts=`")))?,
        };
        let slots = match get("slots")? {
            Some(s) => s,
            None => first
                .map(|n| n.slots())
                .ok_or_else(|| syntax(line, format!("`{name}` needs `slots=`")))?,
        };
        let cached = match keys.get("cached") {
            None | Some(&"true") => true,
            Some(&"false") => false,
            Some(v) => return Err(syntax(line, format!("cached `{v}`: true or false"))),
        };
        let arity = |n: usize| -> Result<(), TextError> {
            if operands.len() == n {
                Ok(())
            } else {
                Err(syntax(
                    line,
                    format!("`{op}` takes {n} operand(s), got {}", operands.len()),
                ))
            }
        };
        let he = match *op {
            "input" => {
                arity(0)?;
                HeOp::Input
            }
            "add" | "sub" => {
                arity(2)?;
                HeOp::Add
            }
            "sum" => {
                if operands.is_empty() {
                    return Err(syntax(line, "`sum` needs operands"));
                }
                HeOp::Sum {
                    terms: operands.len() as u32,
                }
            }
            "neg" => HeOp::Neg,
            "add_const" => HeOp::AddConst,
            "add_plain" => HeOp::AddPlain { cached },
            "mul_const" => HeOp::MulConst { rescale: true },
            "mul_int" => HeOp::MulConst { rescale: false },
            "mul_plain" => HeOp::MulPlain { cached },
            "mul" => {
                arity(2)?;
                HeOp::MulCt
            }
            "square" => HeOp::Square,
            "rotate" => HeOp::Rotate,
            "rotate_hoisted" => HeOp::RotateHoisted,
            "mod_up" => HeOp::ModUp,
            "rot_sum" => HeOp::RotSum {
                terms: need("terms")?,
            },
            "sum_cts" => {
                let input = first.map_or(count, |n| n.count());
                HeOp::SumCiphertexts {
                    group: input.div_ceil(count.max(1)),
                }
            }
            "rescale" => HeOp::Rescale,
            "linear_columns" => HeOp::TernaryColumns {
                additions: u64::from(need("additions")?),
            },
            "linear_diagonals" => HeOp::TernaryDiagonals {
                input_cts: first.map_or(count, |n| n.count()),
                diagonals: u64::from(need("diagonals")?),
                baby_steps: need("baby")?,
                giant_steps: need("giant")?,
            },
            "poly" => HeOp::Poly {
                degree: need("degree")?,
            },
            "newton" => {
                arity(2)?;
                HeOp::NewtonInvSqrt
            }
            "repack" => HeOp::Repack {
                rotations: need("rotations")?,
                masks: need("masks")?,
            },
            _ => return Err(syntax(line, format!("unknown op `{op}`"))),
        };
        if !matches!(
            he,
            HeOp::Input | HeOp::Sum { .. } | HeOp::Add | HeOp::MulCt | HeOp::NewtonInvSqrt
        ) {
            arity(1)?;
        }
        let site = match keys.get("site") {
            None if he == HeOp::ModUp => BootstrapSite::Never,
            None | Some(&"any") => BootstrapSite::Any,
            Some(&"never") => BootstrapSite::Never,
            Some(&"norm") => BootstrapSite::Norm,
            Some(v) => return Err(syntax(line, format!("site `{v}`: never, any or norm"))),
        };
        for key in keys.keys() {
            let known = [
                "cts",
                "slots",
                "site",
                "level",
                "cached",
                "terms",
                "additions",
                "diagonals",
                "baby",
                "giant",
                "degree",
                "rotations",
                "masks",
            ];
            if !known.contains(key) {
                return Err(syntax(line, format!("unknown key `{key}`")));
            }
        }
        let full = format!("{}{name}", scope.prefix);
        let region_name = full.rsplit_once('.').map_or("", |(r, _)| r).to_string();
        let region = self.graph.region(&region_name);
        let mut spec = NodeSpec::from_op(self.model, full, &he, operands, count, slots)
            .site(site)
            .region(region);
        if let Some(level) = get("level")? {
            spec = spec.input_level(level);
        }
        let id = self
            .graph
            .add(spec)
            .map_err(|source| TextError::Graph { line, source })?;
        match scope.layer.as_mut() {
            Some(layer) => {
                layer.insert(name.to_string(), id);
            }
            None => {
                self.names.insert(name.to_string(), id);
            }
        }
        Ok(())
    }
}

/// `p{1..4}` -> `p1 p2 p3`; other words as they are.
fn expand_range(line: usize, word: &str) -> Result<Vec<String>, TextError> {
    let Some((head, rest)) = word.split_once('{') else {
        return Ok(vec![word.to_string()]);
    };
    let (range, tail) = rest
        .split_once('}')
        .ok_or_else(|| syntax(line, format!("`{word}`: unclosed `{{`")))?;
    let (from, to) = range
        .split_once("..")
        .ok_or_else(|| syntax(line, format!("`{word}`: `{{{range}}}` is not a range a..b")))?;
    let (from, to) = (
        number(line, "range start", from)?,
        number(line, "range end", to)?,
    );
    Ok((from..to).map(|i| format!("{head}{i}{tail}")).collect())
}

fn substitute(items: &[Item], var: &str, value: u32) -> Vec<Item> {
    let pattern = format!("{{{var}}}");
    items
        .iter()
        .map(|item| match item {
            Item::Node { line, text } => Item::Node {
                line: *line,
                text: text.replace(&pattern, &value.to_string()),
            },
            Item::Layers { line, count, body } => Item::Layers {
                line: *line,
                count: *count,
                body: substitute(body, var, value),
            },
            Item::For {
                line,
                var: v,
                from,
                to,
                body,
            } => Item::For {
                line: *line,
                var: v.clone(),
                from: *from,
                to: *to,
                body: substitute(body, var, value),
            },
        })
        .collect()
}
