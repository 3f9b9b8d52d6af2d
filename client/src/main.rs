//! Thin entry point of the `speedlayer` CLI; the logic lives in `speedlayer_client::cli`.

use clap::Parser;
use speedlayer_client::cli::{Cli, run};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Err(e) = run(cli, &mut out).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
