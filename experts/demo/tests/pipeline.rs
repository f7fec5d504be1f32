//! The `ioc-triage` diamond (extract → {classify-ips, classify-domains} →
//! summarize) on the example incident note, through the SDK's validation,
//! and the demo experts over real gRPC.

use serde_json::{Value, json};
use synod_expert_demo::{demo_experts, ioc_expert, report_expert};
use synod_expert_sdk::proto::expert::DescribeRequest;
use synod_expert_sdk::testing::TestExpert;

fn example_text() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../workflows/examples/ioc-triage.input.json"
    );
    let input: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    input["text"].as_str().unwrap().to_owned()
}

fn values(iocs: &Value, ioc_type: &str) -> Vec<String> {
    iocs.as_array()
        .unwrap()
        .iter()
        .filter(|ioc| ioc["type"] == ioc_type)
        .map(|ioc| ioc["value"].as_str().unwrap().to_owned())
        .collect()
}

fn finding<'a>(findings: &'a Value, indicator: &str) -> &'a Value {
    findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["indicator"] == indicator)
        .unwrap_or_else(|| panic!("no finding for {indicator}: {findings:#}"))
}

#[tokio::test]
async fn ioc_triage_diamond_on_the_example_incident() {
    let ioc = TestExpert::new(ioc_expert()).unwrap();
    let report = TestExpert::new(report_expert()).unwrap();

    let extracted = ioc
        .call("extract", json!({ "text": example_text() }))
        .await
        .unwrap()
        .output;
    let iocs = &extracted["iocs"];
    assert_eq!(
        values(iocs, "url"),
        [
            "https://login-micros0ft.com/owa/auth/verify?session=7f3a9c",
            "http://bit.ly/3xQ9aZk",
            "https://secure-update.xn--pple-43d.com/id/login.php",
        ]
    );
    assert_eq!(
        values(iocs, "ipv4"),
        [
            "10.20.4.17",
            "185.220.101.47",
            "10.20.0.5",
            "192.168.56.101"
        ]
    );
    assert_eq!(values(iocs, "ipv6"), ["2001:db8:4f2a::15"]);
    assert_eq!(
        values(iocs, "email"),
        [
            "j.doe@acme-corp.example",
            "billing-notice@login-micros0ft.com",
            "soc-oncall@acme-corp.example"
        ]
    );
    assert_eq!(
        values(iocs, "domain"),
        [
            "acme-corp.example",
            "login-micros0ft.com",
            "bit.ly",
            "secure-update.xn--pple-43d.com",
            "kq3v9x7zt2wphm4d.net",
            "cdn-update.a7f3k9q2x8z1.top",
        ]
    );
    assert_eq!(values(iocs, "sha256").len(), 1);
    assert_eq!(values(iocs, "sha1").len(), 1);
    assert_eq!(values(iocs, "md5").len(), 1);
    assert_eq!(values(iocs, "cve"), ["CVE-2023-36884", "CVE-2017-11882"]);
    assert_eq!(extracted["counts"]["domain"], 6);

    let ips = ioc
        .call("classify-ips", json!({ "iocs": iocs }))
        .await
        .unwrap();
    let ip_findings = &ips.output["findings"];
    assert_eq!(finding(ip_findings, "185.220.101.47")["verdict"], "public");
    assert_eq!(finding(ip_findings, "10.20.4.17")["verdict"], "private");
    assert_eq!(
        finding(ip_findings, "2001:db8:4f2a::15")["verdict"],
        "documentation"
    );
    assert_eq!(ips.output["ignored"], iocs.as_array().unwrap().len() - 5);
    assert_eq!(
        ips.evidence.len(),
        1,
        "only the public address is worth evidence"
    );

    let domains = ioc
        .call("classify-domains", json!({ "iocs": iocs }))
        .await
        .unwrap();
    let domain_findings = &domains.output["findings"];
    assert_eq!(
        finding(domain_findings, "acme-corp.example")["verdict"],
        "reserved"
    );
    assert_eq!(
        finding(domain_findings, "login-micros0ft.com")["verdict"],
        "impersonation"
    );
    assert_eq!(
        finding(domain_findings, "secure-update.xn--pple-43d.com")["verdict"],
        "homoglyph"
    );
    assert_eq!(
        finding(domain_findings, "kq3v9x7zt2wphm4d.net")["verdict"],
        "dga-like"
    );
    assert_eq!(
        finding(domain_findings, "cdn-update.a7f3k9q2x8z1.top")["verdict"],
        "dga-like"
    );
    assert_eq!(finding(domain_findings, "bit.ly")["verdict"], "no-signal");

    let summary = report
        .call(
            "summarize",
            json!({
                "title": "IOC triage",
                "finding_sets": { "ips": ip_findings, "domains": domain_findings }
            }),
        )
        .await
        .unwrap();
    let report = &summary.output["report"];
    assert_eq!(report["highest_severity"], "high");
    assert_eq!(report["counts"]["total"], 11);
    assert_eq!(report["counts"]["by_severity"]["high"], 2);
    let markdown = report["markdown"].as_str().unwrap();
    assert!(markdown.contains("`login-micros0ft[.]com`"), "{markdown}");
    assert!(markdown.contains("`185[.]220[.]101[.]47`"), "{markdown}");
}

#[tokio::test]
async fn invalid_inputs_name_the_field() {
    let ioc = TestExpert::new(ioc_expert()).unwrap();
    let error = ioc
        .call(
            "classify-ips",
            json!({ "iocs": [{ "type": "ipv4", "value": "not-an-ip" }] }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid input: `/iocs/0/value`: `not-an-ip` has type `ipv4` but is not an IP address; fix the value or its type"
    );
    let error = ioc
        .call(
            "classify-domains",
            json!({ "iocs": [{ "type": "domain", "value": "nodots" }] }),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`/iocs/0/value`"), "{error}");
    let error = ioc
        .call(
            "classify-ips",
            json!({ "iocs": [{ "type": "phone", "value": "1" }] }),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`/iocs/0/type`"), "{error}");
    let error = ioc
        .call("extract", json!({ "txt": "x" }))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("\"text\""), "{error}");
    let report = TestExpert::new(report_expert()).unwrap();
    let error = report
        .call("summarize", json!({ "title": "x" }))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn demo_experts_serve_over_grpc() {
    let mut seen = Vec::new();
    for builder in demo_experts() {
        let (endpoint, handle) = TestExpert::spawn(builder).await.unwrap();
        let mut client = TestExpert::connect(&endpoint).await.unwrap();
        let card = client
            .describe(DescribeRequest {})
            .await
            .unwrap()
            .into_inner();
        for skill in &card.skills {
            seen.push(format!("{}/{}", card.name, skill.name));
            assert!(skill.input_schema.is_some() && skill.output_schema.is_some());
        }
        if card.name == "ioc" {
            let (response, output) = TestExpert::invoke(
                &mut client,
                "extract",
                &json!({ "text": "see hxxp://evil[.]com" }),
            )
            .await
            .unwrap();
            assert_eq!(output["iocs"][0]["value"], "http://evil.com");
            assert_eq!(response.confidence, 0.9);
        }
        handle.shutdown().await.unwrap();
    }
    assert_eq!(
        seen,
        [
            "ioc/extract",
            "ioc/classify-ips",
            "ioc/classify-domains",
            "report/summarize"
        ]
    );
}
