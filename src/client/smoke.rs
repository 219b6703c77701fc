//! A round trip against a live cluster, ready for an integration test: create a topic,
//! produce records, fetch them back, compare, delete the topic. No test here runs it unless
//! asked: `GREGOR_BOOTSTRAP=127.0.0.1:9092 cargo test --release --bin gregor -- --ignored`.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use kafka_protocol::messages::FetchRequest;

use super::records::{decode_fetched, encode_batch, Outgoing};
use super::requests;
use super::{Client, Retry, Target};
use crate::tools::{create_topic, delete_topic, send_batches, wait_for_topic};

/// Produce `count` records to partition 0 of a new topic with acks=all and read them back.
pub async fn round_trip(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
    count: usize,
) -> Result<()> {
    let mut client = Client::new(bootstrap, super::DEFAULT_TIMEOUT);
    ensure!(
        create_topic(&mut client, topic, partitions, replication_factor, &[]).await?,
        "creating {topic} failed"
    );
    let mut info = wait_for_topic(&mut client, topic).await?;
    let values: Vec<String> = (0..count).map(|i| format!("record-{i}")).collect();
    let records: Vec<Outgoing> = values
        .iter()
        .map(|v| Outgoing {
            key: None,
            value: Some(Bytes::from(v.clone())),
        })
        .collect();
    let batch = encode_batch(&records, 0)?;
    let mut base = None;
    send_batches(
        &mut client,
        &mut info,
        vec![(0, count, batch)],
        -1,
        |_, b, _| {
            base = Some(b);
            Ok(())
        },
    )
    .await?;
    let base = base.context("no acknowledgement")?;

    let mut read = Vec::new();
    let mut offset = base;
    let mut retry = Retry::new(client.retry);
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.len() < count {
        if Instant::now() > deadline {
            bail!("read {} of {count} records in 30 s", read.len());
        }
        let leader = info.partitions[&0].leader;
        let sent = client
            .request(Target::Node(leader), |v| {
                Ok::<FetchRequest, anyhow::Error>(requests::fetch(topic, &[(0, offset)], v))
            })
            .await;
        let (response, _) = match sent {
            Ok(answer) => answer,
            Err(error) => {
                retry.wait(error).await?;
                info = wait_for_topic(&mut client, topic).await?;
                continue;
            }
        };
        let partition = &response.responses[0].partitions[0];
        ensure!(
            partition.error_code == 0,
            "fetch error {}",
            partition.error_code
        );
        for batch in decode_fetched(partition.records.clone().unwrap_or_default())? {
            for record in batch.records.iter().filter(|r| r.offset >= offset) {
                read.push(
                    String::from_utf8_lossy(record.value.as_deref().unwrap_or(b"")).to_string(),
                );
            }
            offset = offset.max(batch.last_offset + 1);
        }
    }
    ensure!(read == values, "read back {read:?}, produced {values:?}");
    ensure!(
        delete_topic(&mut client, topic).await?,
        "deleting {topic} failed"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs a broker: set GREGOR_BOOTSTRAP"]
async fn round_trip_against_a_broker() {
    let Ok(bootstrap) = std::env::var("GREGOR_BOOTSTRAP") else {
        eprintln!("GREGOR_BOOTSTRAP is not set; skipping");
        return;
    };
    let topic = format!("gregor-smoke-{}", std::process::id());
    round_trip(&bootstrap, &topic, 3, 1, 100).await.unwrap();
}
