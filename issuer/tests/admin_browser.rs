//! The admin web end to end in a real browser: headless Chromium driven over WebDriver
//! (chromedriver + fantoccini) against the web server on 127.0.0.1:0 with the in-memory
//! backend. An operator logs in, enrolls a guest (sees the QR code), sees the grant the
//! guest was then issued, revokes it, and finds the revocation in the audit log, filtered.
//! Screenshots land in `target/tmp/admin-web-e2e/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test fails (never
//! skips) and says how to install them.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use latchkey_issuer::web::testing::FakeBackend;
use latchkey_issuer::web::{AdminWeb, SystemClock, WebConfig};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const OPERATOR: &str = "operator";
const PASSWORD: &str = "a long operator passphrase";
/// How long a page may take to show the element we wait for.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// chromedriver, killed when dropped.
struct Chromedriver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Chromedriver {
    fn start(out_dir: &Path) -> Result<Self, Box<dyn std::error::Error>> {
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

fn require_browser() {
    for binary in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(binary).exists(),
            "{binary} is missing: the admin web's browser test needs Debian's Chromium and its \
             WebDriver; install them with: apt-get install -y chromium chromium-driver"
        );
    }
}

async fn browser(
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
async fn wait_for(
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
async fn wait_for_query(client: &Client, needle: &str) -> TestResult {
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

async fn h1(client: &Client) -> Result<String, Box<dyn std::error::Error>> {
    Ok(wait_for(client, "main h1").await?.text().await?)
}

/// Decodes the one QR code in a PNG image.
fn read_qr(png_bytes: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
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

async fn screenshot(client: &Client, out_dir: &Path, name: &str) -> TestResult {
    let png = client.screenshot().await?;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(out_dir.join(name), png)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_enrolls_a_guest_revokes_its_grant_and_finds_it_in_the_audit_log() -> TestResult
{
    require_browser();
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-web-e2e");
    std::fs::create_dir_all(&out_dir)?;

    // The web server over the fake backend, on a free port.
    let backend = Arc::new(FakeBackend::new(Arc::new(SystemClock)));
    let front = backend.add_lock("Front door", "Europe/Paris");
    let garage = backend.add_lock("Garage", "Europe/Paris");
    backend.add_admin(OPERATOR, PASSWORD)?;
    seed_activity(&backend, front, garage);
    let web = AdminWeb::new(backend.clone(), WebConfig::default())?;
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        web.serve(listener, async {
            let _ = stopped.await;
        })
        .await
    });

    let driver = Chromedriver::start(&out_dir)?;
    let profile = tempfile::tempdir()?;
    let client = browser(&driver, profile.path()).await?;
    let walk = walk(&client, &base, &backend, front, &out_dir).await;
    let _ = screenshot(&client, &out_dir, "final.png").await;
    let _ = client.close().await;
    let _ = stop.send(());
    server.await??;
    if let Err(e) = walk {
        return Err(format!(
            "{e}\n(chromedriver log: {}; screenshots: {})",
            driver.log.display(),
            out_dir.display()
        )
        .into());
    }
    Ok(())
}

/// Some history for the charts and the locks page: a deterministic pattern of unlocks and
/// rejections over the last 30 days, and a status from each lock.
fn seed_activity(backend: &FakeBackend, front: latchkey::LockId, garage: latchkey::LockId) {
    use latchkey::Reason;
    use latchkey_issuer::web::{Clock, LockStatusView};
    let now = SystemClock.now_ms();
    let hour = 3_600_000;
    for h in 1..(30 * 24) {
        let at = now - h * hour;
        for _ in 0..(h * 7 % 5) {
            backend.record_lock_event(at, front, None, None, "unlock", None);
        }
        if h % 6 == 0 {
            backend.record_lock_event(
                at,
                garage,
                None,
                None,
                "rejection",
                Some(Reason::BadResponseMac),
            );
        }
    }
    backend.set_lock_status(
        front,
        now - 30_000,
        Some(LockStatusView {
            battery_pct: Some(81),
            sessions: 3,
            uptime_s: 86_400,
            ..LockStatusView::default()
        }),
    );
    backend.set_lock_status(
        garage,
        now - 90_000,
        Some(LockStatusView {
            battery_pct: Some(12),
            clock_unsynchronised: true,
            uptime_s: 4_000,
            ..LockStatusView::default()
        }),
    );
}

async fn walk(
    client: &Client,
    base: &str,
    backend: &FakeBackend,
    front: latchkey::LockId,
    out_dir: &Path,
) -> TestResult {
    // Not logged in: the dashboard sends the browser to the login page.
    client.goto(&format!("{base}/")).await?;
    assert_eq!(h1(client).await?, "Log in");
    assert_eq!(client.current_url().await?.path(), "/login");
    wait_for(client, "#user").await?.send_keys(OPERATOR).await?;
    wait_for(client, "#password")
        .await?
        .send_keys(PASSWORD)
        .await?;
    wait_for(client, "form.login button[type=submit]")
        .await?
        .click()
        .await?;
    wait_for(client, "svg[role=img]").await?;
    assert_eq!(h1(client).await?, "Dashboard");
    let bars = client
        .find_all(Locator::Css("rect.bar-unlocks"))
        .await?
        .len();
    assert!(bars > 24, "the charts draw the seeded unlocks: {bars} bars");
    screenshot(client, out_dir, "dashboard.png").await?;
    client
        .find(Locator::LinkText("Locks"))
        .await?
        .click()
        .await?;
    let badges = wait_for(client, "span.badge.warn").await?.text().await?;
    assert_eq!(badges, "warning", "the garage's low battery");
    screenshot(client, out_dir, "locks.png").await?;

    // Enroll a guest.
    client
        .find(Locator::LinkText("Guests"))
        .await?
        .click()
        .await?;
    wait_for(client, "a.button[href='/guests/new']")
        .await?
        .click()
        .await?;
    // Wait for an element only the next page has, then read the page.
    let name = wait_for(client, "#name").await?;
    assert_eq!(h1(client).await?, "Enroll a guest");
    name.send_keys("Zoë <script>alert(1)</script>").await?;
    wait_for(client, &format!("input[name=locks][value='{front}']"))
        .await?
        .click()
        .await?;
    wait_for(client, "#role")
        .await?
        .select_by_value("resident")
        .await?;
    wait_for(client, "#schedule")
        .await?
        .send_keys("Mon-Fri 08:00-18:00; Sat 09:00-12:00")
        .await?;
    wait_for(client, "#max_unlocks")
        .await?
        .send_keys("20")
        .await?;
    wait_for(client, "form.stacked button[type=submit]")
        .await?
        .click()
        .await?;
    let qr = wait_for(client, "svg.qr").await?;
    assert_eq!(h1(client).await?, "Guest enrolled");
    let (_, _, qr_width, qr_height) = qr.rectangle().await?;
    assert!(
        qr_width >= 200.0 && qr_height >= 200.0,
        "the QR code is drawn large enough to scan: {qr_width}×{qr_height}"
    );
    let bundle = wait_for(client, "pre.bundle").await?.text().await?;
    let guests = backend.guests();
    assert_eq!(guests.len(), 1, "one guest enrolled");
    let guest = &guests[0];
    assert_eq!(
        guest.name, "Zoë <script>alert(1)</script>",
        "the name arrived as typed"
    );
    assert!(
        bundle.contains(&guest.guest_id.to_string()) && bundle.contains("enrollment_key"),
        "{bundle}"
    );
    screenshot(client, out_dir, "enrolled.png").await?;
    // The QR code as the browser drew it reads back as the bundle's text.
    let qr_png = qr.screenshot().await?;
    std::fs::write(out_dir.join("qr.png"), &qr_png)?;
    assert_eq!(read_qr(&qr_png)?, bundle, "the QR code holds the bundle");

    // The guest asks for a grant (the fake stands in for the daemon), and the operator sees it.
    let grant = backend.issue_grant(guest.guest_id, front, 3600)?;
    client
        .find(Locator::LinkText("Done — back to the guest"))
        .await?
        .click()
        .await?;
    let revoke = wait_for(
        client,
        &format!("form[action='/grants/{grant}/revoke'] button"),
    )
    .await?;
    assert_eq!(
        h1(client).await?,
        "Zoë <script>alert(1)</script>",
        "shown as text, not run"
    );
    screenshot(client, out_dir, "guest.png").await?;

    // Revoke it.
    revoke.click().await?;
    let banner = wait_for(client, "p.notice.ok").await?.text().await?;
    assert!(banner.starts_with("Grant revoked"), "{banner}");
    assert!(
        backend.grants()[0].revoked_at_ms.is_some(),
        "the backend revoked it"
    );
    assert!(
        client
            .find_all(Locator::Css("form[action$='/revoke'] button"))
            .await?
            .is_empty(),
        "no live grant left to revoke"
    );

    // The audit log, filtered to revocations, shows it with the operator's name.
    client
        .find(Locator::LinkText("Audit log"))
        .await?
        .click()
        .await?;
    wait_for(client, "#kind")
        .await?
        .send_keys("grant_revoked")
        .await?;
    wait_for(client, "form.audit-filters button[type=submit]")
        .await?
        .click()
        .await?;
    // The filtered page has the same elements as the unfiltered one: wait for its URL.
    wait_for_query(client, "kind=grant_revoked").await?;
    wait_for(client, "nav.pager").await?;
    let rows = client
        .find_all(Locator::Css("table.audit tbody tr"))
        .await?;
    assert_eq!(rows.len(), 1, "one revocation");
    let row = rows[0].text().await?;
    assert!(
        row.contains("grant_revoked") && row.contains(OPERATOR) && row.contains("admin"),
        "{row}"
    );
    let grant_cell = rows[0].find(Locator::Css("td:nth-child(7) code")).await?;
    assert_eq!(grant_cell.attr("title").await?, Some(grant.to_string()));
    screenshot(client, out_dir, "audit.png").await?;
    Ok(())
}
