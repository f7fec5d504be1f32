//! Approval decisions under access control: the deciding token must hold
//! `approver` and one of the binding's `approval.roles` (see
//! [`super::role::may_approve`]); every decision taken is an audit entry
//! (`approval.decided`) naming the token's subject.

use serde_json::json;
use synod_types::{RunEventKind, RunId};

use super::guard::{Authenticator, Denial, Principal};
use crate::runs::RunManager;

/// The roles the binding's workflow requires of its approver, from the
/// run's latest `ApprovalRequested` event for it (`None`: no such request).
async fn required_roles(
    manager: &RunManager,
    run_id: RunId,
    binding: &str,
) -> Result<Option<Vec<String>>, Denial> {
    let events = manager
        .store()
        .events(run_id, 0)
        .await
        .map_err(|error| Denial::Unavailable(error.to_string()))?;
    Ok(events.iter().rev().find_map(|event| match &event.kind {
        RunEventKind::ApprovalRequested {
            binding: requested,
            roles,
            ..
        } if requested == binding => Some(roles.clone()),
        _ => None,
    }))
}

/// Checks that `principal` may decide on `binding` of `run_id`, then
/// decides and audits. `Ok(false)`: nothing was waiting. With access
/// control disabled the roles are not checked, but the decision is still
/// audited.
pub async fn decide(
    auth: &Authenticator,
    manager: &RunManager,
    principal: &Principal,
    decision: Decision<'_>,
) -> Result<bool, Denial> {
    if auth.enabled()
        && let Some(required) = required_roles(manager, decision.run_id, decision.binding).await?
    {
        super::role::may_approve(&principal.roles, &principal.subject, &required)
            .map_err(Denial::Forbidden)?;
    }
    let accepted = manager
        .decide(
            decision.run_id,
            decision.binding,
            decision.approve,
            decision.comment,
        )
        .await;
    if accepted {
        auth.audit(
            principal,
            "approval.decided",
            &format!("run/{}/binding/{}", decision.run_id, decision.binding),
            json!({
                "run_id": decision.run_id.to_string(),
                "binding": decision.binding,
                "approved": decision.approve,
                "comment": decision.comment,
            }),
        )
        .await;
    }
    Ok(accepted)
}

/// One approval decision as asked.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    /// The run.
    pub run_id: RunId,
    /// The binding.
    pub binding: &'a str,
    /// True to approve.
    pub approve: bool,
    /// The decider's comment.
    pub comment: &'a str,
}
