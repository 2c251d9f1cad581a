//! `ipckit gc --json`: one [`RemovalJson`] per orphan or stale file acted on, in one array.

use serde::{Deserialize, Serialize};

use super::ls::ObjectJson;

/// What `gc` did with an object.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Removed,
    /// `--dry-run`.
    WouldRemove,
    Failed,
}

impl Action {
    /// `removed`, `would remove`, `failed`: as the text lines say it.
    pub fn words(self) -> &'static str {
        match self {
            Action::Removed => "removed",
            Action::WouldRemove => "would remove",
            Action::Failed => "failed",
        }
    }
}

/// The object as `ls --json` gives it, with what was done and the error of a failed removal.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RemovalJson {
    #[serde(flatten)]
    pub object: ObjectJson,
    pub action: Action,
    /// Why the removal failed; null unless `action` is `failed`.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_json_is_the_ls_object_with_action_and_error() {
        let object: ObjectJson = serde_json::from_value(serde_json::json!({
            "kind": "unix", "uri": "unix:/tmp/x.sock", "key": null, "id": null,
            "name": "/tmp/x.sock", "name_hex": null, "owner": "root", "uid": 0, "perms": "rwxr-xr-x",
            "mode": "0755", "size": null, "nattch": null, "msgs": null, "usedbytes": null,
            "nsems": null, "cpid": null, "lpid": null, "lspid": null, "lrpid": null,
            "ctime": 1700000000, "last_used": null, "command": null, "detail": null,
            "pids": [], "holders": [], "creator": null, "state": "stale",
            "reason": "no socket is bound to it",
        }))
        .unwrap();
        for (action, name, error) in [
            (Action::Removed, "removed", None),
            (Action::WouldRemove, "would-remove", None),
            (Action::Failed, "failed", Some("EPERM".to_string())),
        ] {
            let row = RemovalJson {
                object: object.clone(),
                action,
                error: error.clone(),
            };
            let v = serde_json::to_value(&row).unwrap();
            // Flat: the object's fields beside action and error, as gc has always printed.
            assert_eq!(v["uri"], "unix:/tmp/x.sock");
            assert_eq!(v["state"], "stale");
            assert_eq!(v["action"], name);
            assert_eq!(v["error"], serde_json::to_value(&error).unwrap());
            assert_eq!(v.as_object().unwrap().len(), 30);
            let back: RemovalJson = serde_json::from_value(v).unwrap();
            assert_eq!(back, row);
        }
    }
}
