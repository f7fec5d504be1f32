//! [`Browser`]: headless Chromium driven through `chromedriver` and the W3C
//! WebDriver HTTP API (plain JSON over reqwest), for the dashboard test.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`
//! (`scripts/setup-browser.sh` installs them; CI runs it). Without them
//! [`Browser::start`] fails with a message saying so.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::{eventually, free_addr};

/// Where Debian installs Chromium and its driver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "chromedriver";

/// A headless Chromium session behind a `chromedriver` child process; both
/// end when this is dropped (or on [`Browser::quit`]).
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session_url: String,
}

/// A program on `PATH` (or an absolute path that exists).
fn find_program(name: &str) -> Option<PathBuf> {
    let candidate = Path::new(name);
    if candidate.is_absolute() {
        return candidate.exists().then(|| candidate.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| file.is_file())
}

impl Browser {
    /// Starts `chromedriver` on a free loopback port and opens a headless
    /// Chromium session with a `width`×`height` window.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Browser> {
        let chromium = std::env::var("SYNOD_CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_owned());
        let (Some(chromium), Some(chromedriver)) =
            (find_program(&chromium), find_program(CHROMEDRIVER))
        else {
            bail!(
                "headless Chromium is not installed (need `{chromium}` and `{CHROMEDRIVER}`); run scripts/setup-browser.sh (it installs the Debian packages chromium and chromium-driver; CI runs it via scripts/setup-dev.sh)"
            );
        };
        let addr = free_addr()?;
        // Its own process group, so that stopping it also stops the
        // Chromium processes it started (see `stop_driver`).
        let driver = Command::new(&chromedriver)
            .process_group(0)
            .arg(format!("--port={}", addr.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", chromedriver.display()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = format!("http://{addr}");
        let mut browser = Browser {
            driver,
            http,
            session_url: String::new(),
        };
        eventually("chromedriver to answer /status", || async {
            let ready = match browser.http.get(format!("{base}/status")).send().await {
                Ok(response) => response.json::<Value>().await.ok(),
                Err(_) => None,
            };
            Ok(ready.filter(|status| status["value"]["ready"] == true))
        })
        .await?;
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--hide-scrollbars", format!("--window-size={width},{height}"),
                ],
            },
        }}});
        let session = browser
            .call(
                reqwest::Method::POST,
                &format!("{base}/session"),
                capabilities,
            )
            .await
            .context("opening a Chromium session")?;
        let id = session["sessionId"]
            .as_str()
            .context("the new session has no sessionId")?;
        browser.session_url = format!("{base}/session/{id}");
        Ok(browser)
    }

    /// One WebDriver command; returns its `value` or the driver's error.
    async fn call(&self, method: reqwest::Method, url: &str, body: Value) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, url);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("WebDriver {url}"))?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .with_context(|| format!("WebDriver {url}"))?;
        if !status.is_success() {
            bail!(
                "WebDriver {url}: {status}: {} {}",
                answer["value"]["error"],
                answer["value"]["message"]
            );
        }
        Ok(answer["value"].clone())
    }

    /// A command on this session (`path` after `/session/<id>`).
    async fn session_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.session_url);
        self.call(method, &url, body).await
    }

    /// Navigates to `url` and waits for the page load.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.session_call(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page
    /// and returns what it returns, as JSON.
    pub async fn execute(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.session_call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// Saves a PNG screenshot of the viewport to `path` (creating its directory).
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let encoded = self
            .session_call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().context("the screenshot is not a string")?)
            .context("the screenshot is not base64")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Ends the session and stops the driver.
    pub async fn quit(mut self) -> anyhow::Result<()> {
        let ended = self
            .session_call(reqwest::Method::DELETE, "", Value::Null)
            .await;
        self.stop_driver();
        ended.map(|_| ())
    }

    /// Kills the driver's process group (the driver and the browser it
    /// started, which a failed test leaves behind otherwise).
    fn stop_driver(&mut self) {
        if let Ok(None) = self.driver.try_wait() {
            let group = format!("-{}", self.driver.id());
            let killed = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            if !killed.is_ok_and(|status| status.success()) {
                let _ = self.driver.kill();
            }
        }
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.stop_driver();
    }
}

/// Where tests save artifacts: `<target dir>/test-artifacts/<name>`, with
/// the target dir from `CARGO_TARGET_DIR` or the workspace's `target/`.
pub fn artifact_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_path("target"));
    target.join("test-artifacts").join(name)
}
