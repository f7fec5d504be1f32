//! What the planner knows about experts: the skills it may plan with.

use serde_json::Value;
use synod_types::SkillRef;

/// One skill as the planner sees it (from an expert card).
#[derive(Debug, Clone, PartialEq)]
pub struct SkillInfo {
    /// `expert/skill`.
    pub uses: SkillRef,
    /// One line for diagnostics and planners.
    pub description: String,
    /// Artifact types consumed.
    pub consumes: Vec<String>,
    /// Artifact type produced.
    pub produces: String,
    /// JSON Schema of the input object (`{}` when unknown).
    pub input_schema: Value,
    /// JSON Schema of the output object (`{}` when unknown).
    pub output_schema: Value,
    /// Relative cost per call.
    pub cost_hint: f64,
}

impl SkillInfo {
    /// The declared cost hint, or 1 (a cheap call) when it is missing,
    /// zero, negative or not finite.
    pub fn declared_cost(&self) -> f64 {
        if self.cost_hint.is_finite() && self.cost_hint > 0.0 {
            self.cost_hint
        } else {
            1.0
        }
    }
}

/// The experts and skills available for planning (the registry's view, or a
/// fixed list in tests).
pub trait SkillCatalog {
    /// The skill, if some expert offers it.
    fn skill(&self, uses: &SkillRef) -> Option<SkillInfo>;
    /// Names of every known expert, sorted.
    fn expert_names(&self) -> Vec<String>;
    /// Skill names of one expert, sorted (empty if the expert is unknown).
    fn skill_names(&self, expert: &str) -> Vec<String>;
    /// Every skill, sorted by `expert/skill`.
    fn all_skills(&self) -> Vec<SkillInfo> {
        let mut skills = Vec::new();
        for expert in self.expert_names() {
            for skill in self.skill_names(&expert) {
                if let Some(info) = self.skill(&SkillRef::new(expert.clone(), skill)) {
                    skills.push(info);
                }
            }
        }
        skills
    }
    /// What is known of the skill's expert at run time (latency, health);
    /// the default knows nothing and treats every skill as healthy.
    fn skill_stats(&self, _uses: &SkillRef) -> crate::typed::SkillStats {
        crate::typed::SkillStats::default()
    }
}

/// A fixed catalog, e.g. for tests and `synod validate --offline`.
#[derive(Debug, Clone, Default)]
pub struct StaticCatalog {
    skills: Vec<SkillInfo>,
}

impl StaticCatalog {
    /// A catalog of these skills.
    pub fn new(skills: Vec<SkillInfo>) -> Self {
        StaticCatalog { skills }
    }
}

impl SkillCatalog for StaticCatalog {
    fn skill(&self, uses: &SkillRef) -> Option<SkillInfo> {
        self.skills.iter().find(|info| &info.uses == uses).cloned()
    }

    fn expert_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .skills
            .iter()
            .map(|info| info.uses.expert.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn skill_names(&self, expert: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .skills
            .iter()
            .filter(|info| info.uses.expert == expert)
            .map(|info| info.uses.skill.clone())
            .collect();
        names.sort();
        names
    }
}
