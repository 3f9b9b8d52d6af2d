//! Thin entry point of `speedlayer-ingest`; the logic lives in the library.

fn main() {
    eprintln!("speedlayer-ingest: not built yet");
    std::process::exit(2);
}
