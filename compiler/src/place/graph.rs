//! The placement problem: values in topological order with operands, level depth, ciphertext count, an op-cost table by level and the policies that may bootstrap them.

use std::collections::BTreeMap;
use std::fmt;

use crate::cost::{CostModel, HeOp, Latency};

use super::{GraphError, Policy};

/// A level: primes left in a ciphertext's modulus minus one (0 is the last usable level).
pub type Level = u32;

/// Index of a node (a value) in a [`LevelGraph`]; operands always have smaller ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The index into [`LevelGraph::nodes`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// Index of a named region (a layer, a norm) in [`LevelGraph::regions`], for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RegionId(pub u32);

/// Which policies may bootstrap a node's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BootstrapSite {
    /// None: the value is not a ciphertext vector the bootstrapper accepts (extended
    /// digits of a hoisted ModUp, a value outside the bootstrapping range).
    Never,
    /// `greedy` and `optimal` may bootstrap it.
    #[default]
    Any,
    /// An RMSNorm candidate (the norm's input, its statistic, its inverse square root):
    /// every policy may bootstrap it, and `rmsnorm` only such values. Scale invariance
    /// makes scaling them into the bootstrapping range free.
    Norm,
}

impl BootstrapSite {
    /// Whether `policy` may bootstrap a value with this site. `optimal` allows a superset of
    /// what `greedy` and `rmsnorm` allow, so its optimum is never worse than theirs.
    pub fn allows(self, policy: Policy) -> bool {
        match (self, policy) {
            (BootstrapSite::Never, _) => false,
            (BootstrapSite::Any, Policy::RmsNorm) => false,
            (BootstrapSite::Any | BootstrapSite::Norm, _) => true,
        }
    }

    /// The name used by the text format and the reports.
    pub fn name(self) -> &'static str {
        match self {
            BootstrapSite::Never => "never",
            BootstrapSite::Any => "any",
            BootstrapSite::Norm => "norm",
        }
    }
}

/// Bootstrap latencies per ciphertext, by slot count, input level and target level.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapCosts {
    max_level: Level,
    /// Row-major `[input][target]` tables of `(max_level + 1)²` entries by slot count.
    tables: BTreeMap<u32, Vec<Latency>>,
    /// Computes missing tables (`None`: only the tables given).
    model: Option<CostModel>,
}

impl BootstrapCosts {
    /// Tables computed from `model` as slot counts appear (`max_level` is the model's).
    pub fn from_model(model: &CostModel) -> BootstrapCosts {
        BootstrapCosts {
            max_level: model.ring().max_level,
            tables: BTreeMap::new(),
            model: Some(model.clone()),
        }
    }

    /// One row-major `[input][target]` table for every slot count (tests, hand-made
    /// problems). Entries for an illegal input or target must be [`Latency::INFINITE`].
    pub fn uniform(max_level: Level, table: Vec<Latency>) -> Result<BootstrapCosts, GraphError> {
        let expected = (max_level as usize + 1).pow(2);
        if table.len() != expected {
            return Err(GraphError::BootstrapTableSize {
                len: table.len(),
                expected,
            });
        }
        Ok(BootstrapCosts {
            max_level,
            tables: BTreeMap::from([(0, table)]),
            model: None,
        })
    }

    /// The level budget the tables are for.
    pub fn max_level(&self) -> Level {
        self.max_level
    }

    fn key(&self, slots: u32) -> u32 {
        if self.model.is_some() { slots } else { 0 }
    }

    /// Makes sure a table for `slots` exists; false if it cannot be made.
    fn prepare(&mut self, slots: u32) -> bool {
        let key = self.key(slots);
        if self.tables.contains_key(&key) {
            return true;
        }
        match &self.model {
            Some(model) => {
                self.tables.insert(key, model.bootstrap_table(slots));
                true
            }
            None => false,
        }
    }

    /// Latency of bootstrapping one `slots`-slot ciphertext from `input` to `target`
    /// ([`Latency::INFINITE`] if no table covers it).
    pub fn per_ciphertext(&self, slots: u32, input: Level, target: Level) -> Latency {
        let levels = self.max_level as usize + 1;
        let (input, target) = (input as usize, target as usize);
        if input >= levels || target >= levels {
            return Latency::INFINITE;
        }
        self.tables
            .get(&self.key(slots))
            .map_or(Latency::INFINITE, |t| t[input * levels + target])
    }
}

/// A node as the lowering describes it (see [`LevelGraph::add`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// Name for reports and errors (e.g. `layer3.attn_norm.stat`).
    pub name: String,
    /// Region for reports.
    pub region: RegionId,
    /// Operands (earlier nodes). The op runs at the minimum of their levels or lower
    /// (dropping levels is free); none for an input.
    pub operands: Vec<NodeId>,
    /// Levels the op consumes: its result is at (execution level − depth).
    pub depth: u32,
    /// Ciphertexts in the value (bootstraps cost this many times one ciphertext's).
    pub count: u32,
    /// Slots per ciphertext (sparse-slot bootstraps are cheaper).
    pub slots: u32,
    /// Latency of the whole op by execution level `0..=max_level` (every ciphertext of
    /// it); [`Latency::INFINITE`] where the op may not run.
    pub op_cost: Vec<Latency>,
    /// Which policies may bootstrap the result.
    pub site: BootstrapSite,
    /// For an input: the level the client encrypts at (default: `max_level`).
    pub input_level: Option<Level>,
}

impl NodeSpec {
    /// A node with the default site ([`BootstrapSite::Any`]) in region 0.
    pub fn new(
        name: impl Into<String>,
        operands: Vec<NodeId>,
        depth: u32,
        count: u32,
        slots: u32,
        op_cost: Vec<Latency>,
    ) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            region: RegionId::default(),
            operands,
            depth,
            count,
            slots,
            op_cost,
            site: BootstrapSite::default(),
            input_level: None,
        }
    }

    /// A node computing `op` with costs from `model` (depth from the op).
    pub fn from_op(
        model: &CostModel,
        name: impl Into<String>,
        op: &HeOp,
        operands: Vec<NodeId>,
        count: u32,
        slots: u32,
    ) -> NodeSpec {
        NodeSpec::new(
            name,
            operands,
            op.depth(),
            count,
            slots,
            model.op_table(op, count, slots),
        )
    }

    /// With a bootstrap site.
    pub fn site(mut self, site: BootstrapSite) -> NodeSpec {
        self.site = site;
        self
    }

    /// In a region.
    pub fn region(mut self, region: RegionId) -> NodeSpec {
        self.region = region;
        self
    }

    /// An input encrypted at `level`.
    pub fn input_level(mut self, level: Level) -> NodeSpec {
        self.input_level = Some(level);
        self
    }
}

/// A checked node of a [`LevelGraph`].
#[derive(Debug, Clone, PartialEq)]
pub struct LevelNode {
    spec: NodeSpec,
}

impl LevelNode {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
    /// Its region.
    pub fn region(&self) -> RegionId {
        self.spec.region
    }
    /// Its operands.
    pub fn operands(&self) -> &[NodeId] {
        &self.spec.operands
    }
    /// Levels the op consumes.
    pub fn depth(&self) -> u32 {
        self.spec.depth
    }
    /// Ciphertexts in the value.
    pub fn count(&self) -> u32 {
        self.spec.count
    }
    /// Slots per ciphertext.
    pub fn slots(&self) -> u32 {
        self.spec.slots
    }
    /// Latency of the op at execution level `level` ([`Latency::INFINITE`] out of range).
    pub fn op_cost(&self, level: Level) -> Latency {
        self.spec
            .op_cost
            .get(level as usize)
            .copied()
            .unwrap_or(Latency::INFINITE)
    }
    /// The op-cost table by execution level.
    pub fn op_costs(&self) -> &[Latency] {
        &self.spec.op_cost
    }
    /// Which policies may bootstrap it.
    pub fn site(&self) -> BootstrapSite {
        self.spec.site
    }
    /// For an input (no operands): the level it is encrypted at.
    pub fn input_level(&self) -> Option<Level> {
        self.spec.input_level
    }
    /// Whether it has no operands.
    pub fn is_input(&self) -> bool {
        self.spec.operands.is_empty()
    }
}

/// The placement problem: a DAG of values in topological order (operands before users),
/// each with its level depth, ciphertext count, slots, op-cost table and bootstrap site,
/// under a level budget `max_level` and a bootstrap cost table.
///
/// Only [`LevelGraph::add`] creates nodes, and it checks each one, so a `LevelGraph` is
/// always well formed: the certificate the placement policies take.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelGraph {
    max_level: Level,
    bootstrap: BootstrapCosts,
    nodes: Vec<LevelNode>,
    regions: Vec<String>,
}

impl LevelGraph {
    /// An empty graph with levels `0..=max_level` (L_max: the most a bootstrap returns and
    /// the default input level) and bootstrap costs. Region 0 is `""`.
    pub fn new(bootstrap: BootstrapCosts) -> LevelGraph {
        LevelGraph {
            max_level: bootstrap.max_level(),
            bootstrap,
            nodes: Vec::new(),
            regions: vec![String::new()],
        }
    }

    /// Adds (or finds) a region by name.
    pub fn region(&mut self, name: &str) -> RegionId {
        if let Some(i) = self.regions.iter().position(|r| r == name) {
            return RegionId(i as u32);
        }
        self.regions.push(name.to_string());
        RegionId(self.regions.len() as u32 - 1)
    }

    /// Checks and appends a node.
    ///
    /// # Errors
    /// An operand that is not an earlier node, a depth above `max_level` (no placement can
    /// run the op), a cost table of the wrong length, a zero count or slot count, an input
    /// level on a non-input or above `max_level`, an unknown region, or a bootstrappable
    /// node whose slot count has no bootstrap table.
    pub fn add(&mut self, spec: NodeSpec) -> Result<NodeId, GraphError> {
        let id = NodeId(self.nodes.len() as u32);
        let name = || spec.name.clone();
        if let Some(&operand) = spec.operands.iter().find(|o| o.0 >= id.0) {
            return Err(GraphError::ForwardOperand {
                node: name(),
                operand,
            });
        }
        if spec.depth > self.max_level {
            return Err(GraphError::TooDeep {
                node: name(),
                depth: spec.depth,
                max_level: self.max_level,
            });
        }
        let levels = self.max_level as usize + 1;
        if spec.op_cost.len() != levels {
            return Err(GraphError::CostTableSize {
                node: name(),
                len: spec.op_cost.len(),
                expected: levels,
            });
        }
        if spec.count == 0 || spec.slots == 0 {
            return Err(GraphError::Empty { node: name() });
        }
        if let Some(level) = spec.input_level
            && (!spec.operands.is_empty() || level > self.max_level)
        {
            return Err(GraphError::BadInputLevel {
                node: name(),
                level,
                max_level: self.max_level,
            });
        }
        if spec.region.0 as usize >= self.regions.len() {
            return Err(GraphError::UnknownRegion {
                node: name(),
                region: spec.region.0,
            });
        }
        if spec.site != BootstrapSite::Never && !self.bootstrap.prepare(spec.slots) {
            return Err(GraphError::NoBootstrapTable {
                node: name(),
                slots: spec.slots,
            });
        }
        self.nodes.push(LevelNode { spec });
        Ok(id)
    }

    /// The level budget L_max.
    pub fn max_level(&self) -> Level {
        self.max_level
    }

    /// The nodes, in topological order.
    pub fn nodes(&self) -> &[LevelNode] {
        &self.nodes
    }

    /// One node.
    ///
    /// # Panics
    /// If `id` is not a node of this graph.
    pub fn node(&self, id: NodeId) -> &LevelNode {
        &self.nodes[id.index()]
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Region names by [`RegionId`].
    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    /// The bootstrap costs.
    pub fn bootstrap_costs(&self) -> &BootstrapCosts {
        &self.bootstrap
    }

    /// Latency of bootstrapping all of `node`'s ciphertexts from `input` to `target`.
    pub fn bootstrap_cost(&self, node: NodeId, input: Level, target: Level) -> Latency {
        let n = self.node(node);
        self.bootstrap
            .per_ciphertext(n.slots(), input, target)
            .times(u64::from(n.count()))
    }

    /// The level a node's operands can give it: the minimum over its operands of their
    /// available levels, or its input level for an input.
    pub(crate) fn operand_level(&self, id: NodeId, available: impl Fn(NodeId) -> Level) -> Level {
        let node = self.node(id);
        if node.is_input() {
            node.input_level().unwrap_or(self.max_level)
        } else {
            node.operands()
                .iter()
                .map(|&o| available(o))
                .min()
                .unwrap_or(self.max_level)
        }
    }

    /// Consumers of every node, in topological order.
    pub fn consumers(&self) -> Vec<Vec<NodeId>> {
        let mut consumers = vec![Vec::new(); self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            let mut seen: Vec<NodeId> = node.operands().to_vec();
            seen.sort_unstable();
            seen.dedup();
            for o in seen {
                consumers[o.index()].push(NodeId(i as u32));
            }
        }
        consumers
    }
}
