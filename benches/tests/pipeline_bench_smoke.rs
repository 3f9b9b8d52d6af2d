//! A smoke run of `benches/pipeline_bench.sh` (issue 16): the whole pipeline (simulator,
//! collector, tansu, worker, region server, all real processes) for 20 s at a low rate,
//! with the debug binaries CI has built. The bench itself checks loss by count and
//! checksum; this test holds it to its summary: no loss, every probe read back.

use std::path::Path;
use std::process::Command;

use speedlayer_tests::bins::bin_path;

#[test]
fn a_short_low_rate_run_loses_nothing_and_reads_every_probe_back() {
    let bench = bin_path("pipeline_bench");
    // target/<profile>/pipeline_bench → target; the script picks <profile> from PROFILE.
    let profile_dir = bench.parent().unwrap();
    let target = profile_dir.parent().unwrap();
    let profile = profile_dir.file_name().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline_bench.sh");
    let out = Command::new(&script)
        .env("PROFILE", profile)
        .env("CARGO_TARGET_DIR", target)
        .env("DURATION", "20")
        .env("RATE", "1000")
        .env("CARS", "100")
        .env("DRAIN_LIMIT", "30")
        .output()
        .expect("run benches/pipeline_bench.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pipeline_bench.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let loss = stdout
        .lines()
        .find(|l| l.starts_with("loss: "))
        .unwrap_or_else(|| panic!("no loss line:\n{stdout}"));
    assert!(
        loss.starts_with("loss: 0 events") && loss.contains("checksum match"),
        "{loss}"
    );
    let latency = stdout
        .lines()
        .find(|l| l.starts_with("latency"))
        .unwrap_or_else(|| panic!("no latency line:\n{stdout}"));
    assert!(latency.contains(", 0 never readable)"), "{latency}");
    assert!(!latency.contains("(0 probes"), "{latency}");
    for name in ["worker", "server", "collector", "tansu", "simulator"] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(name)),
            "no CPU line for {name}:\n{stdout}"
        );
    }
}
