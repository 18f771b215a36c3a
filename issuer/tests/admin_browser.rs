//! The admin web end to end in a real browser: headless Chromium driven over WebDriver
//! (chromedriver + fantoccini) against the web server on 127.0.0.1:0 with the in-memory
//! backend. An operator logs in, enrolls a guest (sees the QR code), sees the grant the
//! guest was then issued, revokes it, and finds the revocation in the audit log, filtered.
//! Screenshots land in `target/tmp/admin-web-e2e/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test fails (never
//! skips) and says how to install them.

mod browser;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use browser::{
    Chromedriver, TestResult, browser, h1, log_in, out_dir, read_qr, require_browser, screenshot,
    wait_for, wait_for_query,
};
use fantoccini::{Client, Locator};
use latchkey_issuer::web::testing::FakeBackend;
use latchkey_issuer::web::{AdminWeb, SystemClock, WebConfig};

const OPERATOR: &str = "operator";
const PASSWORD: &str = "a long operator passphrase";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_enrolls_a_guest_revokes_its_grant_and_finds_it_in_the_audit_log() -> TestResult
{
    require_browser();
    let out_dir = out_dir(env!("CARGO_TARGET_TMPDIR"), "admin-web-e2e")?;

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
    log_in(client, base, OPERATOR, PASSWORD).await?;
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
