//! Which role each HTTP route and gRPC method needs (pure): the one table
//! of the API's access rules.

use axum::http::Method;

use super::role::Role;

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: liveness (`/healthz`, gRPC health), gRPC reflection and the
    /// dashboard's static page and assets (they hold no data).
    Public,
    /// Signed webhooks (`POST /hooks/{name}`): the HMAC signature of the
    /// workflow's secret is their authentication.
    Webhook,
    /// Any valid token (`GET /whoami`).
    Authenticated,
    /// A token with this role (or one that includes it).
    Role(Role),
}

/// The segments of an HTTP path (`/runs/x/events` -> `runs`, `x`, `events`).
pub(super) fn path_segments(path: &str) -> Vec<&str> {
    path.trim_matches('/').split('/').collect()
}

/// The access rule of an HTTP request.
pub fn http_access(method: &Method, path: &str) -> Access {
    let segments = path_segments(path);
    let read = method == Method::GET || method == Method::HEAD;
    match segments.as_slice() {
        ["healthz"] => Access::Public,
        [""] | ["ui"] if read => Access::Public,
        ["ui", "runs", _] | ["ui", "assets", _] if read => Access::Public,
        ["hooks", _] if method == Method::POST => Access::Webhook,
        ["whoami"] if read => Access::Authenticated,
        ["experts"] | ["metrics"] | ["runs"] | ["runs", _] | ["runs", _, "events"] if read => {
            Access::Role(Role::Viewer)
        }
        ["runs"] | ["runs", _, "cancel"] | ["workflows", "validate"] if method == Method::POST => {
            Access::Role(Role::Operator)
        }
        ["runs", _, "approvals", _] if method == Method::POST => Access::Role(Role::Approver),
        ["tokens", ..] | ["audit", ..] => Access::Role(Role::Admin),
        // Anything else (unknown routes, other methods): a token is needed
        // before the answer (404, 405) is given.
        _ => Access::Authenticated,
    }
}

/// The access rule of a gRPC call, from its path `/<package.Service>/<Method>`.
pub fn grpc_access(path: &str) -> Access {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Access::Role(Role::Admin);
    };
    match (service, method) {
        ("grpc.health.v1.Health", _)
        | ("grpc.reflection.v1.ServerReflection", _)
        | ("grpc.reflection.v1alpha.ServerReflection", _) => Access::Public,
        ("synod.orchestrator.v1.Runs", "GetRun" | "ListRuns" | "WatchRun") => {
            Access::Role(Role::Viewer)
        }
        ("synod.orchestrator.v1.Runs", "StartRun" | "CancelRun") => Access::Role(Role::Operator),
        ("synod.orchestrator.v1.Runs", "Decide") => Access::Role(Role::Approver),
        ("synod.orchestrator.v1.Workflows", "List") => Access::Role(Role::Viewer),
        ("synod.orchestrator.v1.Workflows", "Validate" | "Put") => Access::Role(Role::Operator),
        ("synod.orchestrator.v1.Registry", "ListExperts") => Access::Role(Role::Viewer),
        ("synod.orchestrator.v1.Registry", "Register" | "Heartbeat" | "Deregister") => {
            Access::Role(Role::Expert)
        }
        // A method this table does not know (added later): admin only,
        // until someone decides who may call it.
        _ => Access::Role(Role::Admin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_routes() {
        let get = Method::GET;
        let post = Method::POST;
        let id = "0190a1b2-0000-7000-8000-000000000000";
        let cases = [
            (&get, "/healthz".to_owned(), Access::Public),
            (&get, "/".to_owned(), Access::Public),
            (&get, "/ui/assets/dashboard.js".to_owned(), Access::Public),
            (&get, format!("/ui/runs/{id}"), Access::Public),
            (&post, "/hooks/siem".to_owned(), Access::Webhook),
            (&get, "/whoami".to_owned(), Access::Authenticated),
            (&get, "/runs".to_owned(), Access::Role(Role::Viewer)),
            (&get, format!("/runs/{id}"), Access::Role(Role::Viewer)),
            (
                &get,
                format!("/runs/{id}/events"),
                Access::Role(Role::Viewer),
            ),
            (&get, "/experts".to_owned(), Access::Role(Role::Viewer)),
            (&get, "/metrics".to_owned(), Access::Role(Role::Viewer)),
            (&post, "/runs".to_owned(), Access::Role(Role::Operator)),
            (
                &post,
                format!("/runs/{id}/cancel"),
                Access::Role(Role::Operator),
            ),
            (
                &post,
                "/workflows/validate".to_owned(),
                Access::Role(Role::Operator),
            ),
            (
                &post,
                format!("/runs/{id}/approvals/block"),
                Access::Role(Role::Approver),
            ),
            (&get, "/tokens".to_owned(), Access::Role(Role::Admin)),
            (&post, "/healthz/../runs".to_owned(), Access::Authenticated),
            (&Method::DELETE, "/runs".to_owned(), Access::Authenticated),
            (&get, "/hooks/siem".to_owned(), Access::Authenticated),
            (&post, "/ui".to_owned(), Access::Authenticated),
        ];
        for (method, path, access) in cases {
            assert_eq!(http_access(method, &path), access, "{method} {path}");
        }
    }

    #[test]
    fn grpc_methods() {
        let cases = [
            ("Runs/GetRun", Access::Role(Role::Viewer)),
            ("Runs/WatchRun", Access::Role(Role::Viewer)),
            ("Runs/StartRun", Access::Role(Role::Operator)),
            ("Runs/CancelRun", Access::Role(Role::Operator)),
            ("Runs/Decide", Access::Role(Role::Approver)),
            ("Workflows/Put", Access::Role(Role::Operator)),
            ("Workflows/List", Access::Role(Role::Viewer)),
            ("Registry/Register", Access::Role(Role::Expert)),
            ("Registry/Heartbeat", Access::Role(Role::Expert)),
            ("Registry/ListExperts", Access::Role(Role::Viewer)),
            ("Runs/Unknown", Access::Role(Role::Admin)),
        ];
        for (method, access) in cases {
            let path = format!("/synod.orchestrator.v1.{method}");
            assert_eq!(grpc_access(&path), access, "{path}");
        }
        assert_eq!(grpc_access("/grpc.health.v1.Health/Check"), Access::Public);
        assert_eq!(grpc_access("nonsense"), Access::Role(Role::Admin));
    }
}
