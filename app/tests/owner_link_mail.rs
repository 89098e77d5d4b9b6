//! Issue 22, item 2: a mailbox owner's one-time sign-in link, end to end.
//! The form sends real mail over SMTP (a local receiver on 127.0.0.1) to
//! the account's digest address only; the link in that mail signs in once
//! and then never again.

use crate::common::eventually;
use crate::common::harness::account;
use crate::common::smtp_sink::SmtpSink;
use crate::common::stack::shared;
use crate::common::web::{Scanners, WebPostern, between, cookie_of};
use std::time::Duration;

const PUBLIC: &str = "https://postern.example.test";

/// The token of the sign-in link in a delivered mail (undoing quoted-printable).
fn token_in(data: &str) -> String {
    let text = data.replace("=\n", "").replace("=3D", "=");
    let at = text.find(&format!("{PUBLIC}/my/link/")).expect("a sign-in link in the mail") + PUBLIC.len() + "/my/link/".len();
    text[at..].split_whitespace().next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_link_is_mailed_to_the_digest_address_and_works_once() {
    let d = shared();
    let (user, pass) = d.new_user("olm");
    let sink = SmtpSink::start().await;
    let mut acct = account("olm", d.imap_port, &user, &pass, &["INBOX"]);
    acct.digest_to = Some("owner-olm@example.test".into());
    let smtp = format!("smtp://127.0.0.1:{}", sink.port);
    let p = WebPostern::start_with(vec![acct], Scanners::Local, |s| {
        s.background.digest.smtp_url = Some(smtp);
        s.background.digest.from = Some("postern@example.test".into());
        s.background.digest.public_url = Some(PUBLIC.into());
    })
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let ask = async |address: &str| {
        let page = http.get(format!("{}/my/login", p.base)).send().await.unwrap();
        let fc = cookie_of(&page, "postern_owner_form");
        let csrf = between(&page.text().await.unwrap(), "name=\"_csrf\" value=\"").to_string();
        let r = http
            .post(format!("{}/my/login/link", p.base))
            .header("cookie", &fc)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("_csrf={csrf}&address={}", address.replace('@', "%40")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the same answer for every address");
    };

    // An address that is no account's digest address gets nothing.
    ask("stranger@example.test").await;
    ask("OWNER-olm@example.test").await;
    let mail = eventually(Duration::from_secs(20), "the sign-in mail", || async {
        sink.all().into_iter().find(|m| m.to.iter().any(|t| t == "owner-olm@example.test"))
    })
    .await;
    assert_eq!(sink.all().len(), 1, "nothing went to the stranger");
    assert_eq!(mail.from, "postern@example.test");
    assert!(mail.data.contains("Sign in to the quarantine of olm"), "{}", mail.data);
    let token = token_in(&mail.data);

    // The link opens a confirmation page; posting it signs in, once.
    let link = format!("{}/my/link/{token}", p.base);
    let page = http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let fc = cookie_of(&page, "postern_owner_form");
    let csrf = between(&page.text().await.unwrap(), "name=\"_csrf\" value=\"").to_string();
    let redeem = async || {
        http.post(&link)
            .header("cookie", &fc)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("_csrf={csrf}"))
            .send()
            .await
            .unwrap()
    };
    let r = redeem().await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/my");
    let owner = cookie_of(&r, "postern_owner");
    let mine = http.get(format!("{}/my", p.base)).header("cookie", &owner).send().await.unwrap();
    assert_eq!(mine.status(), 200);
    assert!(mine.text().await.unwrap().contains("olm"));
    let again = redeem().await;
    assert_eq!(again.status(), 410, "a link works once");
    assert_eq!(http.get(&link).send().await.unwrap().status(), 410);

    let rows = p.rt.store().audit_rows(Some("olm"), Some("owner_link_sent"), 10).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    p.stop().await;
}
