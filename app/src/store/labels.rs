//! Labelled messages for retraining (issue 17, item 6): what users taught,
//! one label per message (their latest opinion), with the stored copy.

use super::{Result, Store};

/// One labelled message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Labelled {
    /// `spam`, `ham` (user feedback); reports add `phish` and `ham`.
    pub label: String,
    /// The account the opinion came from.
    pub account: String,
    /// SHA-256 of the message.
    pub sha256: String,
    /// Its Message-ID.
    pub message_id: Option<String>,
    /// The stored copy.
    pub eml_path: String,
    /// What the user did (`moved into Junk by the user`, `bootstrap: …`).
    pub origin: String,
    /// When.
    pub at: String,
}

impl Store {
    /// User feedback with a stored copy: per (account, message) the latest
    /// opinion only, so mail filed into Junk and back counts as ham once.
    pub async fn feedback_labels(&self) -> Result<Vec<Labelled>> {
        self.call(move |c, _| {
            let mut st = c.prepare(
                "SELECT f.class, f.account, f.sha256, f.message_id, l.eml_path, f.source, f.created_at
                 FROM feedback f JOIN learned l ON l.sha256 = f.sha256 AND l.class = f.class
                 WHERE f.id = (SELECT MAX(g.id) FROM feedback g WHERE g.account = f.account AND g.sha256 = f.sha256)
                 ORDER BY f.id",
            )?;
            let rows = st.query_map([], labelled)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Decided reports with their stored copy: a confirmed report is
    /// `phish`, a rejected one `ham` (the operator looked at it and said
    /// the user was wrong). The operator's decision is the label's origin.
    pub async fn report_labels(&self) -> Result<Vec<Labelled>> {
        self.call(move |c, _| {
            let mut st = c.prepare(
                "SELECT CASE state WHEN 'confirmed' THEN 'phish' ELSE 'ham' END, account, sha256, message_id, eml_path,
                        'report #' || id || ' ' || state || ' by ' || COALESCE(decided_by, '?'), COALESCE(decided_at, updated_at)
                 FROM reports WHERE state IN ('confirmed', 'rejected') ORDER BY id",
            )?;
            let rows = st.query_map([], labelled)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}

/// One label row; both queries select the same seven columns in order.
fn labelled(r: &rusqlite::Row<'_>) -> rusqlite::Result<Labelled> {
    Ok(Labelled {
        label: r.get(0)?,
        account: r.get(1)?,
        sha256: r.get(2)?,
        message_id: r.get(3)?,
        eml_path: r.get(4)?,
        origin: r.get(5)?,
        at: r.get(6)?,
    })
}
