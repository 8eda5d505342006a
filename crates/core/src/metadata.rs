//! Documents' metadata, and filters on it.
//!
//! A publisher attaches free JSON metadata to a document
//! ([`IngestRequest::metadata`](crate::IngestRequest::metadata)); every
//! chunk keeps it, and a search may be narrowed to documents whose metadata
//! has given values. A filter compares top-level values that are strings,
//! integers or booleans, under keys of 1 to [`MAX_KEY_BYTES`] ASCII
//! letters, digits, `_` or `-`; other values (floats, lists, objects) and
//! other keys are kept but never indexed for filters, so a filter naming
//! one matches no document.

use serde_json::Value;

/// A document's metadata, as its publisher gave it.
pub type Metadata = serde_json::Map<String, Value>;

/// Most bytes of a document's metadata, as JSON: every chunk of the
/// document stores it (ten thousand chunks of 8 KiB each are 80 MB).
pub const MAX_METADATA_BYTES: usize = 8192;

/// Most keys one filter may name.
pub const MAX_FILTER_KEYS: usize = 32;
/// Most values one key of a filter may accept.
pub const MAX_FILTER_VALUES: usize = 100;
/// Longest key a filter may name, in bytes.
pub const MAX_KEY_BYTES: usize = 64;

/// A value a filter compares: a string, an integer or a boolean.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MetadataValue {
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Bool(bool),
}

impl MetadataValue {
    /// The value, if a filter can compare it.
    pub fn of(value: &Value) -> Option<Self> {
        match value {
            Value::String(text) => Some(Self::String(text.clone())),
            Value::Bool(flag) => Some(Self::Bool(*flag)),
            Value::Number(number) => number.as_i64().map(Self::Integer),
            _ => None,
        }
    }

    /// The value as a JSON literal (`"en"`, `2024`, `true`): strings are
    /// quoted and escaped, so the literal is safe inside a filter
    /// expression.
    pub fn literal(&self) -> String {
        match self {
            Self::String(text) => Value::String(text.clone()).to_string(),
            Self::Integer(number) => number.to_string(),
            Self::Bool(flag) => flag.to_string(),
        }
    }
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A value is not a string, an integer or a boolean (or a list of them).
    #[error(
        "metadata filter on {0:?}: give a string, an integer, a boolean, or a list of them (any of)"
    )]
    Value(String),
    /// Too many keys or values.
    #[error(
        "metadata filter is too large: at most {MAX_FILTER_KEYS} keys of at most {MAX_FILTER_VALUES} values each"
    )]
    TooLarge,
}

/// Documents whose metadata has, for every key, one of the key's values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataFilter {
    conditions: Vec<(String, Vec<MetadataValue>)>,
    /// Whether a condition names a key no document has filterable values
    /// under (keys are spliced into store expressions, so only plain ones
    /// are indexed).
    unsatisfiable: bool,
}

impl MetadataFilter {
    /// The filter a JSON object describes: `{"lang": "en", "team": ["a",
    /// "b"]}` keeps documents whose `lang` is `"en"` and whose `team` is
    /// `"a"` or `"b"`. An empty list matches nothing.
    pub fn from_json(object: &Metadata) -> Result<Self, FilterError> {
        if object.len() > MAX_FILTER_KEYS {
            return Err(FilterError::TooLarge);
        }
        let mut conditions = Vec::with_capacity(object.len());
        let mut unsatisfiable = false;
        for (key, accepted) in object {
            let accepted = match accepted {
                Value::Array(values) if values.len() > MAX_FILTER_VALUES => {
                    return Err(FilterError::TooLarge);
                }
                Value::Array(values) => values.iter().map(MetadataValue::of).collect(),
                single => MetadataValue::of(single).map(|value| vec![value]),
            }
            .ok_or_else(|| FilterError::Value(key.clone()))?;
            if is_filterable_key(key) {
                conditions.push((key.clone(), accepted));
            } else {
                unsatisfiable = true;
            }
        }
        Ok(Self {
            conditions,
            unsatisfiable,
        })
    }

    /// Whether no document can pass: a condition names a key that cannot
    /// be filtered on. Stores answer such searches with nothing at once.
    pub fn is_unsatisfiable(&self) -> bool {
        self.unsatisfiable
    }

    /// Whether the filter keeps every document.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty() && !self.unsatisfiable
    }

    /// Each key with the values it accepts (any of).
    pub fn conditions(&self) -> impl Iterator<Item = (&str, &[MetadataValue])> {
        self.conditions
            .iter()
            .map(|(key, values)| (key.as_str(), values.as_slice()))
    }
}

/// Whether a filter may name `key`: keys are spliced into store filter
/// expressions, so they are kept to a plain alphabet.
fn is_filterable_key(key: &str) -> bool {
    (1..=MAX_KEY_BYTES).contains(&key.len())
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// The indexed terms of a document's metadata: `key=literal` for each
/// top-level value a filter can compare (stores without a JSON filter
/// index these).
pub fn metadata_terms(metadata: &Metadata) -> Vec<String> {
    metadata
        .iter()
        .filter(|(key, _)| is_filterable_key(key))
        .filter_map(|(key, value)| Some(term(key, &MetadataValue::of(value)?)))
        .collect()
}

/// The indexed term for `key` having `value`.
pub fn term(key: &str, value: &MetadataValue) -> String {
    format!("{key}={}", value.literal())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Metadata {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_filter_accepts_for_each_key_one_value_or_any_of_a_list() {
        let filter =
            MetadataFilter::from_json(&object(json!({"lang": "en", "year": [2024, 2025]})))
                .unwrap();
        let conditions: Vec<_> = filter.conditions().collect();
        assert_eq!(
            conditions,
            [
                ("lang", &[MetadataValue::String("en".into())][..]),
                (
                    "year",
                    &[MetadataValue::Integer(2024), MetadataValue::Integer(2025)][..]
                ),
            ]
        );
        assert!(!filter.is_empty() && !filter.is_unsatisfiable());
        assert!(
            MetadataFilter::from_json(&Metadata::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn terms_tell_types_apart_and_skip_what_a_filter_cannot_compare() {
        let terms = metadata_terms(&object(json!({
            "year": 2024, "label": "2024", "draft": false,
            "tags": ["a"], "score": 0.5, "nested": {"a": 1}, "bad key": "x",
        })));
        assert_eq!(terms, ["draft=false", "label=\"2024\"", "year=2024"]);
        assert_eq!(
            term("q", &MetadataValue::String("say \"hi\"".into())),
            r#"q="say \"hi\"""#
        );
    }

    #[test]
    fn a_key_a_store_expression_could_not_hold_safely_matches_nothing() {
        for key in ["", "a b", "a\"]", "é", &"k".repeat(65)] {
            let filter = MetadataFilter::from_json(&object(json!({ key: "x" }))).unwrap();
            assert!(filter.is_unsatisfiable() && !filter.is_empty());
            assert_eq!(
                filter.conditions().count(),
                0,
                "never spliced into an expression"
            );
        }
    }

    #[test]
    fn values_a_filter_cannot_compare_are_refused() {
        for value in [json!(1.5), json!({"a": 1}), json!([["a"]]), json!(null)] {
            let error = MetadataFilter::from_json(&object(json!({ "k": value }))).unwrap_err();
            assert_eq!(error, FilterError::Value("k".into()));
        }
        let many: Vec<u32> = (0..101).collect();
        assert_eq!(
            MetadataFilter::from_json(&object(json!({ "k": many }))).unwrap_err(),
            FilterError::TooLarge
        );
    }
}
