//! Identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Identifies one run. UUID v7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub Uuid);

impl RunId {
    /// A new, time-ordered run id.
    pub fn new() -> Self {
        RunId(Uuid::now_v7())
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RunId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(RunId)
    }
}

/// Identifies a step within a run: the workflow's step key (`detect`), or a
/// derived id for expanded steps (`scan[3]`, `respond/plan.trace`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepId(pub String);

impl StepId {
    /// Wraps a step id.
    pub fn new(id: impl Into<String>) -> Self {
        StepId(id.into())
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for StepId {
    fn from(value: &str) -> Self {
        StepId(value.to_owned())
    }
}

/// A skill of an expert, written `expert/skill` (e.g. `attack-detection/detect`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SkillRef {
    /// Expert name.
    pub expert: String,
    /// Skill name within the expert.
    pub skill: String,
}

/// A `uses:` value that is not `expert/skill`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a skill reference; write `expert/skill`, e.g. `attack-detection/detect`")]
pub struct SkillRefError {
    /// The text that failed to parse.
    pub value: String,
}

impl SkillRef {
    /// Builds a reference from its parts.
    pub fn new(expert: impl Into<String>, skill: impl Into<String>) -> Self {
        SkillRef {
            expert: expert.into(),
            skill: skill.into(),
        }
    }
}

fn is_name(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl FromStr for SkillRef {
    type Err = SkillRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || SkillRefError {
            value: s.to_owned(),
        };
        let (expert, skill) = s.split_once('/').ok_or_else(error)?;
        if !is_name(expert) || !is_name(skill) {
            return Err(error());
        }
        Ok(SkillRef::new(expert, skill))
    }
}

impl fmt::Display for SkillRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.expert, self.skill)
    }
}

impl Serialize for SkillRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SkillRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_skill_refs() {
        let skill: SkillRef = "attack-detection/detect".parse().unwrap();
        assert_eq!(skill, SkillRef::new("attack-detection", "detect"));
        assert_eq!(skill.to_string(), "attack-detection/detect");
        for bad in ["detect", "/detect", "a/", "a/b/c", "a b/c"] {
            assert!(bad.parse::<SkillRef>().is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn run_ids_round_trip_text() {
        let id = RunId::new();
        assert_eq!(id.to_string().parse::<RunId>().unwrap(), id);
    }
}
