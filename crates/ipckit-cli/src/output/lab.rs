//! `ipckit lab --json`: the list of scenarios ([`ScenarioJson`]), or what each run showed
//! ([`OutcomeJson`]).

use serde::{Deserialize, Serialize};

/// A scenario, as `ipckit lab --json` without names lists it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ScenarioJson {
    pub name: String,
    pub lesson: String,
}

/// One scenario's run.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct OutcomeJson {
    pub name: String,
    pub lesson: String,
    /// The lesson showed.
    pub passed: bool,
    pub verdict: String,
    /// The narration, one line each.
    pub transcript: Vec<String>,
    pub seconds: f64,
}

impl From<&ipckit_lab::Scenario> for ScenarioJson {
    fn from(s: &ipckit_lab::Scenario) -> ScenarioJson {
        ScenarioJson {
            name: s.name.to_string(),
            lesson: s.lesson.to_string(),
        }
    }
}

impl From<&ipckit_lab::Outcome> for OutcomeJson {
    fn from(o: &ipckit_lab::Outcome) -> OutcomeJson {
        OutcomeJson {
            name: o.name.to_string(),
            lesson: o.lesson.to_string(),
            passed: o.passed,
            verdict: o.verdict.clone(),
            transcript: o.transcript.clone(),
            seconds: o.seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lab_json_parses_into_the_typed_structs() {
        let all = ipckit_lab::scenarios();
        let list: Vec<ScenarioJson> = all.iter().map(ScenarioJson::from).collect();
        let text = serde_json::to_string_pretty(&list).unwrap();
        let back: Vec<ScenarioJson> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, list);
        let first: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            first[0],
            json!({"name": all[0].name, "lesson": all[0].lesson})
        );

        let outcome = ipckit_lab::Outcome {
            name: "pipe-eof",
            lesson: "a lesson",
            passed: true,
            verdict: "EOF after the last close".into(),
            transcript: vec!["    0 ms  parent  pipe2".into()],
            seconds: 0.25,
        };
        let v = serde_json::to_value(OutcomeJson::from(&outcome)).unwrap();
        assert_eq!(
            v,
            json!({
                "name": "pipe-eof", "lesson": "a lesson", "passed": true,
                "verdict": "EOF after the last close",
                "transcript": ["    0 ms  parent  pipe2"], "seconds": 0.25,
            })
        );
        let back: OutcomeJson = serde_json::from_value(v).unwrap();
        assert_eq!(back, OutcomeJson::from(&outcome));
    }
}
