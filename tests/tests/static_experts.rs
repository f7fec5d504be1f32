//! Static experts (listed in the server config) that are not up yet when the
//! orchestrator starts.

use synod_integration_tests::experts::text_expert;
use synod_integration_tests::{TestOrchestrator, eventually, fast_config, free_addr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_expert_that_starts_later_is_added_when_it_comes_up() -> anyhow::Result<()> {
    // A free port nobody listens on yet.
    let addr = free_addr()?;
    let mut config = fast_config();
    config.static_experts = vec![format!("http://{addr}")];

    let orchestrator = TestOrchestrator::start_with(config).await?;
    let expert = text_expert().build()?.spawn_on(addr).await?;

    let listed = eventually("the static expert to be added", || async {
        let experts = orchestrator.experts().await?;
        Ok(experts
            .iter()
            .flat_map(|e| &e.instances)
            .find(|i| i.endpoint == expert.endpoint())
            .cloned())
    })
    .await?;
    assert!(listed.r#static);
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}
