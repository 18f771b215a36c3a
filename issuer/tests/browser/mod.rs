//! Driving headless Chromium over WebDriver (chromedriver + fantoccini) for the admin web's
//! end-to-end tests: `issuer/tests/admin_browser.rs` (the web over the fake backend) and
//! `demo/tests/admin_web_e2e.rs` (the web served by the real daemons) both include this
//! file (`#[path]`), so the two drive the browser the same way.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them [`require_browser`] fails
//! the test (it never skips) and says how to install them.
#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener as StdListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to show the element we wait for.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// chromedriver, killed when dropped.
pub struct Chromedriver {
    child: Child,
    port: u16,
    /// Where chromedriver logs.
    pub log: PathBuf,
}

impl Chromedriver {
    pub fn start(out_dir: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        // A free port: bind one, release it, hand it to chromedriver.
        let port = StdListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let log = out_dir.join("chromedriver.log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {CHROMEDRIVER}: {e}"))?;
        let driver = Self { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "chromedriver did not listen on port {port} within 15 s; see {}",
                    driver.log.display()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(driver)
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn require_browser() {
    for binary in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(binary).exists(),
            "{binary} is missing: the admin web's browser test needs Debian's Chromium and its \
             WebDriver; install them with: apt-get install -y chromium chromium-driver"
        );
    }
}

pub async fn browser(
    driver: &Chromedriver,
    profile: &Path,
) -> Result<Client, Box<dyn std::error::Error>> {
    let args = [
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--window-size=1280,1000".to_owned(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        return Err("capabilities must be an object".into());
    };
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await?;
    Ok(client)
}

/// Waits for the element a page is known by.
pub async fn wait_for(
    client: &Client,
    css: &str,
) -> Result<fantoccini::elements::Element, Box<dyn std::error::Error>> {
    let found = client
        .wait()
        .at_most(PAGE_TIMEOUT)
        .for_element(Locator::Css(css))
        .await;
    match found {
        Ok(element) => Ok(element),
        Err(e) => {
            let url = client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let source = client.source().await.unwrap_or_default();
            Err(format!("no {css:?} on {url} within {PAGE_TIMEOUT:?}: {e}\n{source}").into())
        }
    }
}

/// Waits until the browser's query string contains `needle` (after a submit that stays on
/// one path, where no element tells the pages apart).
pub async fn wait_for_query(client: &Client, needle: &str) -> TestResult {
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        let url = client.current_url().await?;
        if url.query().is_some_and(|q| q.contains(needle)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("still on {url} after {PAGE_TIMEOUT:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn h1(client: &Client) -> Result<String, Box<dyn std::error::Error>> {
    Ok(wait_for(client, "main h1").await?.text().await?)
}

/// Decodes the one QR code in a PNG image.
pub fn read_qr(png_bytes: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let mut pixels = vec![0; reader.output_buffer_size().ok_or("PNG too large")?];
    let info = reader.next_frame(&mut pixels)?;
    let channels = info.color_type.samples();
    let (width, height) = (info.width as usize, info.height as usize);
    // rqrr's finder-pattern search wants more than the ~5 pixels per module a 320 px code
    // has at this size: look at it 3× closer, as a phone camera would.
    const ZOOM: usize = 3;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width * ZOOM, height * ZOOM, |x, y| {
            // The first channel (grey or red) is enough: the code is black on white.
            pixels[(y / ZOOM) * info.line_size + (x / ZOOM) * channels]
        });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    let (_, text) = grids[0].decode()?;
    Ok(text)
}

pub async fn screenshot(client: &Client, out_dir: &Path, name: &str) -> TestResult {
    let png = client.screenshot().await?;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(out_dir.join(name), png)?;
    Ok(())
}

/// Logs in at `base` (the dashboard sends a new browser to the login page first) and waits
/// for the dashboard.
pub async fn log_in(client: &Client, base: &str, user: &str, password: &str) -> TestResult {
    client.goto(&format!("{base}/")).await?;
    assert_eq!(h1(client).await?, "Log in");
    assert_eq!(client.current_url().await?.path(), "/login");
    wait_for(client, "#user").await?.send_keys(user).await?;
    wait_for(client, "#password")
        .await?
        .send_keys(password)
        .await?;
    wait_for(client, "form.login button[type=submit]")
        .await?
        .click()
        .await?;
    wait_for(client, "svg[role=img]").await?;
    assert_eq!(h1(client).await?, "Dashboard");
    Ok(())
}

/// A test output directory under the target's tmp dir, created.
pub fn out_dir(tmp: &str, name: &str) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let dir = PathBuf::from(tmp).join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
