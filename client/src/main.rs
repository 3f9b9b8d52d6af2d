//! Thin entry point of the `speedlayer` CLI; the logic lives in the library.

fn main() {
    eprintln!("speedlayer: not built yet");
    std::process::exit(2);
}
