//! Times the loader's phases on a file: `cargo run --release -p weir-model --example phases -- FILE`.
#![allow(clippy::print_stdout)]
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("a file");
    let text = std::fs::read_to_string(path).expect("readable");
    let t = Instant::now();
    let docs = weir_model::node::parse_stream(&text);
    let parse = t.elapsed();
    let t = Instant::now();
    let report = weir_model::load_str("x.yaml", &text);
    let all = t.elapsed();
    println!("{} documents: parse {parse:?}, whole load {all:?} ({} resources)", docs.len(), report.resources.len());
}
