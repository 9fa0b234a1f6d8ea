//! Text that PostgreSQL can hold. A `text` or `jsonb` value cannot contain NUL (U+0000): one NUL in
//! a job's output would make the database refuse the whole statement that carries it. Everything
//! a child writes passes through here before it reaches a database write, as invalid UTF-8 passes
//! through the lossy decoder: the NUL becomes U+FFFD and the caller tags the line.
//!
//! In a Rust `String` NUL is the only character PostgreSQL's UTF-8 text refuses (surrogates
//! cannot occur), so this is the whole rule.

/// What a NUL is replaced with: the same mark invalid UTF-8 gets.
pub const REPLACEMENT: char = '\u{FFFD}';

/// The tag a log line gets when NULs in it were replaced.
pub const NUL_TAG: &str = "nul";

/// Whether `s` can be stored as PostgreSQL text as it is.
pub fn is_storable(s: &str) -> bool {
    !s.as_bytes().contains(&0)
}

/// Replaces every NUL in `s`; returns whether anything was replaced. Allocates only then.
pub fn clean(s: &mut String) -> bool {
    if is_storable(s) {
        return false;
    }
    *s = s.replace('\0', "\u{FFFD}");
    true
}

/// [`clean`] for an optional value.
pub fn clean_opt(s: &mut Option<String>) -> bool {
    s.as_mut().is_some_and(clean)
}

/// Cleans every string and object key of a JSON value (`jsonb` refuses `\u0000` as well).
pub fn clean_json(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => clean(s),
        Value::Array(items) => items.iter_mut().fold(false, |any, v| clean_json(v) | any),
        Value::Object(map) => {
            let mut any = false;
            if map.keys().any(|k| !is_storable(k)) {
                let old = std::mem::take(map);
                for (mut k, v) in old {
                    clean(&mut k);
                    map.insert(k, v);
                }
                any = true;
            }
            map.values_mut().fold(any, |any, v| clean_json(v) | any)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_replaced_and_reported() {
        let mut s = String::from("a\0b\0");
        assert!(clean(&mut s));
        assert_eq!(s, "a\u{FFFD}b\u{FFFD}");
        let mut ok = String::from("plain ü text");
        assert!(!clean(&mut ok));
        assert_eq!(ok, "plain ü text");
        assert!(!clean_opt(&mut None));
    }

    #[test]
    fn json_strings_and_keys_are_cleaned() {
        let mut v = serde_json::json!({"k\u{0}": ["x\u{0}", 1, {"n": "ok"}], "m": "fine"});
        assert!(clean_json(&mut v));
        assert_eq!(
            v,
            serde_json::json!({"k\u{FFFD}": ["x\u{FFFD}", 1, {"n": "ok"}], "m": "fine"})
        );
        let mut clean_value = serde_json::json!({"a": [1, "b"]});
        assert!(!clean_json(&mut clean_value));
    }
}
