//! `ensi`: one binary, one subcommand per step of encrypted BitNet inference.

fn main() {}
