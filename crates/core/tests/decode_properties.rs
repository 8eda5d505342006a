//! Property tests: the message decoder takes anything without panicking,
//! and every request it accepts survives a round trip.

use docpipe_core::IngestRequest;
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[ -~]{0,24}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("schema_version".to_owned()),
                    Just("document_id".to_owned()),
                    Just("tenant".to_owned()),
                    Just("source".to_owned()),
                    Just("type".to_owned()),
                    Just("uri".to_owned()),
                    Just("base64".to_owned()),
                    Just("content_type".to_owned()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..6,
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = IngestRequest::decode(&bytes);
    }

    #[test]
    fn arbitrary_json_is_accepted_only_when_it_round_trips(value in json_value()) {
        if let Ok(request) = IngestRequest::decode(value.to_string().as_bytes()) {
            prop_assert_eq!(IngestRequest::decode(&request.encode()).unwrap(), request);
        }
    }
}
