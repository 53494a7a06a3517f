//! The `clusterer` command line.

fn main() {}
