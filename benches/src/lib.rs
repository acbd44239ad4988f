//! Criterion benchmarks of every Tessera crate (in `benches/`) and the
//! baseline servers they are compared against (in `src/bin/`).
