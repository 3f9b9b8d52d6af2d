//! Thin entry point of `speedlayer-server`; the logic lives in the library.

fn main() {
    eprintln!("speedlayer-server: not built yet");
    std::process::exit(2);
}
