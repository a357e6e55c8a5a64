//! The ensi compiler: BitNet checkpoint -> model IR -> HE dataflow graph -> plan + reports.
