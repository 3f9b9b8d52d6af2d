//! The tansu harness itself: a broker starts, a topic is created, what is produced is read
//! back to EOF with keys, payloads and headers intact.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use speedlayer_tests::tansu::Tansu;

#[tokio::test]
async fn produced_records_are_read_back_to_eof() {
    let t = Tansu::start();
    t.create_topic("harness", 3);
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", t.brokers())
        .create()
        .unwrap();
    for i in 0..30 {
        let key = format!("k{}", i % 5);
        let payload = format!("v{i}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "reason",
            value: Some("because"),
        });
        p.send(
            FutureRecord::to("harness")
                .key(&key)
                .payload(&payload)
                .headers(headers),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }
    let recs = t.consume_all("harness", Duration::from_secs(20));
    assert_eq!(recs.len(), 30);
    let mut payloads: Vec<String> = recs
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    payloads.sort();
    let mut want: Vec<String> = (0..30).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(payloads, want);
    assert!(recs.iter().all(|r| r.header("reason") == Some("because")));
    // One key, one partition.
    for k in 0..5 {
        let key = format!("k{k}").into_bytes();
        let parts: std::collections::HashSet<i32> = recs
            .iter()
            .filter(|r| r.key.as_deref() == Some(&key[..]))
            .map(|r| r.partition)
            .collect();
        assert_eq!(parts.len(), 1);
    }
}
