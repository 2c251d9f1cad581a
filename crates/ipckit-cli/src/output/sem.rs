//! `ipckit sem value --json`: one [`ValueJson`] on one line.

use serde::{Deserialize, Serialize};

/// A semaphore's value.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ValueJson {
    /// The URI as given: `sem:/NAME`, `sysv-sem:KEY#INDEX`.
    pub uri: String,
    pub value: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sem_value_json_parses_into_the_typed_struct() {
        let v = ValueJson {
            uri: "sysv-sem:0x10#2".into(),
            value: 3,
        };
        let line = serde_json::to_string(&v).unwrap();
        assert_eq!(line, r#"{"uri":"sysv-sem:0x10#2","value":3}"#);
        assert_eq!(serde_json::from_str::<ValueJson>(&line).unwrap(), v);
    }
}
