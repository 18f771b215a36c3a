//! The admin web end to end with the real daemons, in a real browser: the embedded broker,
//! the issuer serving its admin web on a free port, a lock daemon and a guest daemon on the
//! simulated air, and headless Chromium driven over WebDriver.
//!
//! An operator (created through the registry) logs in, enrolls a guest with the web form,
//! hands the bundle the page shows to a guest daemon, which unlocks (it asks for a grant);
//! the grants page shows that grant; the operator revokes it; the lock applies the
//! revocation and confirms it; the audit log, filtered to the grant, shows the operator's
//! revocation and the lock's `revocation_applied`. Screenshots land in
//! `target/tmp/admin-web-daemons-e2e/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test fails (never
//! skips) and says how to install them.
// Test code: a failed unwrap is a failed test (support/ is shared test code).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../issuer/tests/browser/mod.rs"]
mod browser;
mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use browser::{
    Chromedriver, TestResult, browser, h1, log_in, out_dir, read_qr, require_browser, screenshot,
    wait_for, wait_for_query,
};
use fantoccini::{Client, Locator};
use latchkey::frame::EventKind;
use latchkey_demo::{GuestSetup, Site};
use latchkey_guest::EnrollmentBundle;
use latchkey_issuer::IssuerEvent;
use latchkey_issuer::password::hash_new_password;
use latchkey_transport::broker::EmbeddedBroker;
use latchkey_transport::radio::SimAir;
use support::{wait_event, wait_stats};

const OPERATOR: &str = "operator";
const PASSWORD: &str = "a long operator passphrase";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_enrolls_a_guest_who_unlocks_then_revokes_its_grant_at_the_lock() -> TestResult
{
    require_browser();
    let out_dir = out_dir(env!("CARGO_TARGET_TMPDIR"), "admin-web-daemons-e2e")?;
    let broker = tokio::task::spawn_blocking(|| {
        EmbeddedBroker::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    })
    .await??;
    let mut site = Site::new(
        latchkey_demo::Endpoint::plain(broker.url().parse()?),
        SimAir::default(),
    )?;
    site.serve_admin_web();
    // The operator, through the registry (what `admin-user add` writes).
    {
        let mut store = site.registry()?;
        store.add_admin_user(OPERATOR, &hash_new_password(PASSWORD)?, 0, "test")?;
    }
    site.start_issuer().await?;
    let base = site
        .admin_web_url()
        .expect("the issuer serves its admin web");
    let lock = site.add_lock()?;
    let lockd = site.start_lock(&lock).await?;

    let driver = Chromedriver::start(&out_dir)?;
    let profile = tempfile::tempdir()?;
    let client = browser(&driver, profile.path()).await?;
    let walk = walk(&client, &base, &mut site, &lock, &lockd, &out_dir).await;
    let _ = screenshot(&client, &out_dir, "final.png").await;
    let _ = client.close().await;
    lockd.shutdown().await?;
    site.shutdown().await;
    drop(broker);
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

async fn walk(
    client: &Client,
    base: &str,
    site: &mut Site,
    lock: &latchkey_demo::LockSetup,
    lockd: &latchkey_lock::LockdHandle,
    out_dir: &Path,
) -> TestResult {
    log_in(client, base, OPERATOR, PASSWORD).await?;
    let mut events = site.issuer()?.subscribe();

    // Enroll a guest at the lock with the web form.
    client.goto(&format!("{base}/guests/new")).await?;
    wait_for(client, "#name").await?.send_keys("Zoë").await?;
    wait_for(
        client,
        &format!("input[name=locks][value='{}']", lock.lock_id),
    )
    .await?
    .click()
    .await?;
    wait_for(client, "#role")
        .await?
        .select_by_value("resident")
        .await?;
    wait_for(client, "form.stacked button[type=submit]")
        .await?
        .click()
        .await?;
    let qr = wait_for(client, "svg.qr").await?;
    assert_eq!(h1(client).await?, "Guest enrolled");
    let text = wait_for(client, "pre.bundle").await?.text().await?;
    screenshot(client, out_dir, "enrolled.png").await?;
    // The QR code the page drew holds the same bundle.
    assert_eq!(read_qr(&qr.screenshot().await?)?, text);

    // The bundle the page showed goes to a guest daemon.
    let bundle = EnrollmentBundle::parse(&text)?;
    assert_eq!(bundle.locks(), [lock.lock_id]);
    let bundle_file = site.dir().join("web-phone-enrollment.json");
    bundle.save(&bundle_file)?;
    let setup = GuestSetup {
        guest_id: bundle.guest_id(),
        bundle_file,
        radio: "web-phone".to_owned(),
    };
    let mut guest = site.guest(&setup).await?;
    let report = guest.unlock(lock.lock_id).await?;
    let grant_id = report.grant_id;
    wait_event(&mut events, "the grant issued to the web's guest", |e| {
        matches!(e, IssuerEvent::GrantIssued(g) if g.grant_id == grant_id && g.guest_id == setup.guest_id)
    })
    .await;

    // The grants page shows it; revoke it there.
    client
        .find(Locator::LinkText("Grants"))
        .await?
        .click()
        .await?;
    let revoke = wait_for(
        client,
        &format!("form[action='/grants/{grant_id}/revoke'] button"),
    )
    .await?;
    assert_eq!(h1(client).await?, "Grants");
    screenshot(client, out_dir, "grants.png").await?;
    let before = lockd.stats().revocations_applied;
    revoke.click().await?;
    let banner = wait_for(client, "p.notice.ok").await?.text().await?;
    assert!(banner.starts_with("Grant revoked"), "{banner}");

    // The lock applies it and confirms it (a signed revocation-applied event).
    wait_stats(lockd, "the revocation applied", |s| {
        s.revocations_applied > before
    })
    .await;
    wait_event(
        &mut events,
        "the lock's confirmation",
        |e| matches!(e, IssuerEvent::RevocationConfirmed { grant_id: g, .. } if *g == grant_id),
    )
    .await;
    wait_event(&mut events, "the revocation-applied event", |e| {
        matches!(e, IssuerEvent::LockEvent(ev) if ev.kind == EventKind::RevocationApplied && ev.grant_id == grant_id)
    })
    .await;

    // The audit log, filtered to the grant.
    client
        .find(Locator::LinkText("Audit log"))
        .await?
        .click()
        .await?;
    wait_for(client, "#grant")
        .await?
        .send_keys(&grant_id.to_string())
        .await?;
    wait_for(client, "form.audit-filters button[type=submit]")
        .await?
        .click()
        .await?;
    wait_for_query(client, &format!("grant={grant_id}")).await?;
    wait_for(client, "nav.pager").await?;
    let rows = client
        .find_all(Locator::Css("table.audit tbody tr"))
        .await?;
    let mut texts = Vec::new();
    for row in &rows {
        texts.push(row.text().await?);
    }
    let revoked = texts
        .iter()
        .find(|t| t.contains("grant_revoked"))
        .ok_or_else(|| format!("no grant_revoked row in {texts:?}"))?;
    assert!(
        revoked.contains("web:operator") && revoked.contains("admin"),
        "{revoked}"
    );
    let applied = texts
        .iter()
        .find(|t| t.contains("revocation_applied"))
        .ok_or_else(|| format!("no revocation_applied row in {texts:?}"))?;
    assert!(applied.contains("lock"), "{applied}");
    assert!(
        texts.iter().any(|t| t.contains("grant_issued")),
        "{texts:?}"
    );
    screenshot(client, out_dir, "audit.png").await?;
    guest.shutdown().await;
    Ok(())
}
