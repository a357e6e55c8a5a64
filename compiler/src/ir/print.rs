//! Graph -> text: one line per node (`%3: [8, 64] = rms_norm %2, gain="…", eps=1e-5`), then one per output.

use std::fmt;

use super::graph::Graph;

/// The text form of `graph`; [`super::parse`] reads it back to an equal graph.
pub fn print(graph: &Graph) -> String {
    let mut out = String::new();
    for (handle, node) in graph.nodes().iter() {
        out.push_str(&format!(
            "{handle}: {} = {}",
            node.ty,
            node.op.kind().mnemonic()
        ));
        let mut separator = " ";
        for operand in node.op.operands() {
            out.push_str(separator);
            out.push_str(&operand.to_string());
            separator = ", ";
        }
        // Attributes print as `, name=value`; the first item after the mnemonic takes a space.
        let mut attributes = String::new();
        node.op.print_attributes(&mut attributes);
        if node.op.operands().is_empty() {
            if let Some(rest) = attributes.strip_prefix(", ") {
                out.push(' ');
                out.push_str(rest);
            }
        } else {
            out.push_str(&attributes);
        }
        out.push('\n');
    }
    for output in graph.outputs() {
        out.push_str(&format!("output {} = {}\n", output.name, output.value));
    }
    out
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print(self))
    }
}
