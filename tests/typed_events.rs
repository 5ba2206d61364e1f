//! Feature `serde`: typed events as JSON payloads, their round trips, and errors naming the
//! event.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use annals::{Error, EventData, ExpectedVersion, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderPlaced {
    order: u64,
    customer: String,
    lines: Vec<(String, u32)>,
    note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Shipment {
    Packed { boxes: u8 },
    Shipped { carrier: String, tracking: String },
}

fn order(n: u64) -> OrderPlaced {
    OrderPlaced {
        order: n,
        customer: format!("customer \"{n}\" — ünïcode"),
        lines: (0..n % 4)
            .map(|i| (format!("sku-{i}"), i as u32 + 1))
            .collect(),
        note: n.is_multiple_of(2).then(|| "leave at the door".to_string()),
    }
}

#[test]
fn typed_events_round_trip_on_every_read_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for n in 0..20 {
        let events = [
            EventData::json("OrderPlaced", &order(n))
                .unwrap()
                .id(u128::from(n) + 1),
            EventData::json("Shipment", &Shipment::Packed { boxes: n as u8 }).unwrap(),
            EventData::json(
                "Shipment",
                &Shipment::Shipped {
                    carrier: "post".into(),
                    tracking: format!("T{n}"),
                },
            )
            .unwrap(),
        ];
        store
            .append(&format!("order-{n}"), ExpectedVersion::NoStream, events)
            .unwrap();
    }
    // The payload is plain JSON, readable by anything.
    let first = store.read_stream("order-3", 0).next().unwrap().unwrap();
    let plain: serde_json::Value = serde_json::from_slice(first.payload()).unwrap();
    assert_eq!(plain["order"], 3);
    // Owned events, both ways, and the log.
    for n in 0..20 {
        let evs: Vec<_> = store
            .read_stream(&format!("order-{n}"), 0)
            .map(Result::unwrap)
            .collect();
        assert_eq!(evs[0].json::<OrderPlaced>().unwrap(), order(n));
        assert_eq!(
            evs[1].json::<Shipment>().unwrap(),
            Shipment::Packed { boxes: n as u8 }
        );
        let last = store
            .read_stream_backward(&format!("order-{n}"), None)
            .next()
            .unwrap()
            .unwrap();
        assert!(
            matches!(last.json::<Shipment>().unwrap(), Shipment::Shipped { tracking, .. } if tracking == format!("T{n}"))
        );
    }
    let orders: Vec<OrderPlaced> = store
        .read_by_type("OrderPlaced", 0)
        .map(|ev| ev.unwrap().json().unwrap())
        .collect();
    assert_eq!(orders, (0..20).map(order).collect::<Vec<_>>());
    // Zero-copy events too.
    let mut boxes = 0u64;
    store
        .scan_all(0, |ev| {
            if let Ok(Shipment::Packed { boxes: b }) = ev.json::<Shipment>() {
                boxes += u64::from(b);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(boxes, (0..20).sum::<u64>());
    // Generic JSON values work as well.
    let value = serde_json::json!({"a": [1, 2, {"b": null}]});
    store
        .append(
            "misc",
            ExpectedVersion::Any,
            [EventData::json("Misc", &value).unwrap()],
        )
        .unwrap();
    let back = store.read_stream("misc", 0).next().unwrap().unwrap();
    assert_eq!(back.json::<serde_json::Value>().unwrap(), value);
}

#[test]
fn a_payload_of_another_shape_fails_naming_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append(
            "other-1",
            ExpectedVersion::Any,
            [EventData::new("Noise", b"{}".to_vec())],
        )
        .unwrap();
    store
        .append(
            "order-7",
            ExpectedVersion::Any,
            [
                EventData::json("OrderPlaced", &order(7)).unwrap(),
                EventData::new("OrderPlaced", b"{\"order\": \"seven\"}".to_vec()),
                EventData::new("OrderPlaced", b"not json at all".to_vec()),
            ],
        )
        .unwrap();
    let evs: Vec<_> = store
        .read_stream("order-7", 0)
        .map(Result::unwrap)
        .collect();
    assert!(evs[0].json::<OrderPlaced>().is_ok());
    // A field of the wrong type: the event and serde_json's reason.
    match evs[1].json::<OrderPlaced>() {
        Err(e @ Error::Json { .. }) => {
            let text = e.to_string();
            for part in [
                "\"OrderPlaced\"",
                "position 2",
                "\"order-7\"",
                "version 1",
                "invalid type",
            ] {
                assert!(text.contains(part), "{part} missing from: {text}");
            }
        }
        other => panic!("{other:?}"),
    }
    match evs[2].json::<serde_json::Value>() {
        Err(Error::Json { event, reason }) => {
            assert!(event.contains("position 3"), "{event}");
            assert!(reason.contains("line 1 column"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The wrong type of event for the struct.
    let noise = store.read_stream("other-1", 0).next().unwrap().unwrap();
    assert!(
        matches!(noise.json::<OrderPlaced>(), Err(Error::Json { event, .. }) if event.contains("\"Noise\""))
    );
}

#[test]
fn a_value_that_cannot_be_json_fails_naming_the_type() {
    // JSON object keys must be strings.
    let mut by_pair = BTreeMap::new();
    by_pair.insert((1u8, 2u8), "x");
    match EventData::json("PairsCounted", &by_pair) {
        Err(e @ Error::Json { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("\"PairsCounted\"") && text.contains("key must be a string"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}
