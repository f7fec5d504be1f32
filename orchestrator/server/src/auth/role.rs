//! The roles a token can hold and what each one allows (pure).
//!
//! | role | allows |
//! |---|---|
//! | `viewer` | read runs, events, experts, workflows, metrics, the dashboard's data |
//! | `operator` | what `viewer` allows, plus start and cancel runs, validate and store workflows |
//! | `approver` | what `viewer` allows, plus approve or reject bindings awaiting approval |
//! | `expert` | register, heartbeat and deregister expert instances (nothing else) |
//! | `admin` | everything |
//!
//! A token may also hold other role names (e.g. `soc-lead`): they allow no
//! API call by themselves, but a workflow's `approval: { roles: [...] }`
//! can require them of the approver.

use std::fmt;

/// A built-in role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read-only access.
    Viewer,
    /// Starts and cancels runs, manages workflows.
    Operator,
    /// Decides on approvals.
    Approver,
    /// An expert service registering itself.
    Expert,
    /// Everything, including tokens.
    Admin,
}

impl Role {
    /// Every built-in role, least privileged first.
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Operator,
        Role::Approver,
        Role::Expert,
        Role::Admin,
    ];

    /// The role's name as written in tokens and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Expert => "expert",
            Role::Admin => "admin",
        }
    }

    /// The built-in role named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// True when holding `self` allows what `needed` allows.
    pub fn includes(self, needed: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::Operator | Role::Approver => needed == self || needed == Role::Viewer,
            Role::Viewer | Role::Expert => needed == self,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True when a token holding the role names `held` may do what `needed`
/// allows. Names that are not built-in roles grant nothing here.
pub fn grants(held: &[String], needed: Role) -> bool {
    held.iter()
        .filter_map(|name| Role::parse(name))
        .any(|role| role.includes(needed))
}

/// Checks a role name for a new token: built-in roles and approval group
/// names alike are 1 to 64 characters of `a-z`, `0-9`, `-`, `_`, `.`.
pub fn check_role_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid role name; use one of {} or an approval group name \
             (lowercase letters, digits, `-`, `_`, `.`, at most 64 characters)",
            Role::ALL.map(Role::as_str).join(", ")
        ))
    }
}

/// Whether a token may decide on a binding whose workflow requires one of
/// `required` (the binding's `approval.roles`): it must hold `approver`
/// (or `admin`), and, when `required` is not empty, one of those roles or
/// have one of them as its subject. `Err` says what is missing.
pub fn may_approve(held: &[String], subject: &str, required: &[String]) -> Result<(), String> {
    if !grants(held, Role::Approver) {
        return Err(
            "deciding on approvals needs the `approver` role; ask an admin for a token: \
             `synod token create --subject <you> --role approver`"
                .to_owned(),
        );
    }
    let matches =
        |name: &String| name == subject || held.contains(name) || name == Role::Approver.as_str();
    if required.is_empty() || required.iter().any(matches) {
        return Ok(());
    }
    Err(format!(
        "this binding's workflow requires an approver with one of the roles [{}]; \
         token subject `{subject}` holds [{}]; ask an admin for a token with one of them \
         (`synod token create --subject {subject} --role approver --role {}`)",
        required.join(", "),
        held.join(", "),
        required[0],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(roles: &[&str]) -> Vec<String> {
        roles.iter().map(|r| (*r).to_owned()).collect()
    }

    #[test]
    fn the_role_table() {
        use Role::*;
        // (held, needed, allowed)
        let table = [
            (Viewer, Viewer, true),
            (Viewer, Operator, false),
            (Viewer, Approver, false),
            (Viewer, Expert, false),
            (Operator, Viewer, true),
            (Operator, Operator, true),
            (Operator, Approver, false),
            (Operator, Expert, false),
            (Approver, Viewer, true),
            (Approver, Approver, true),
            (Approver, Operator, false),
            (Expert, Expert, true),
            (Expert, Viewer, false),
            (Expert, Operator, false),
            (Admin, Viewer, true),
            (Admin, Operator, true),
            (Admin, Approver, true),
            (Admin, Expert, true),
            (Admin, Admin, true),
            (Operator, Admin, false),
        ];
        for (held, needed, allowed) in table {
            assert_eq!(held.includes(needed), allowed, "{held} -> {needed}");
            assert_eq!(grants(&names(&[held.as_str()]), needed), allowed);
        }
    }

    #[test]
    fn names_round_trip_and_groups_grant_nothing() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("soc-lead"), None);
        assert!(!grants(&names(&["soc-lead"]), Role::Viewer));
        assert!(check_role_name("soc-lead").is_ok());
        assert!(check_role_name("SOC lead").is_err());
        assert!(check_role_name("").is_err());
    }

    #[test]
    fn approval_needs_the_approver_role_and_a_required_group() {
        let required = names(&["soc-lead"]);
        let error = may_approve(&names(&["operator"]), "bob", &required).unwrap_err();
        assert!(error.contains("`approver` role"), "{error}");
        let error = may_approve(&names(&["approver"]), "bob", &required).unwrap_err();
        assert!(error.contains("[soc-lead]"), "{error}");
        assert!(may_approve(&names(&["approver", "soc-lead"]), "bob", &required).is_ok());
        assert!(may_approve(&names(&["approver"]), "soc-lead", &required).is_ok());
        assert!(may_approve(&names(&["approver"]), "bob", &[]).is_ok());
        assert!(may_approve(&names(&["approver"]), "bob", &names(&["approver"])).is_ok());
        assert!(may_approve(&names(&["admin", "soc-lead"]), "root", &required).is_ok());
    }
}
