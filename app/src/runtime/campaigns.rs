//! Campaigns at run time (issue 17, item 4): the recent mail of every
//! account, clustered by [`crate::intel::campaign`], for the dashboard's
//! campaign view and for a confirmed report's claw-back. Campaign-wide
//! actions: release everywhere and block the senders.

use super::{Runtime, RuntimeError};
use crate::intel::campaign::{Campaign, Member, cluster};
use crate::store::{CampaignRow, OpKind, ReportRow};

/// How far back clustering looks.
const WINDOW: chrono::Duration = chrono::Duration::days(14);
/// Messages clustered at most (the newest). Body digests are compared
/// pairwise, so this bounds the work of one view.
pub const MAX_MESSAGES: u32 = 2000;

/// One member as the campaign view lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CampaignMessage {
    /// Message row id.
    pub id: i64,
    /// Account.
    pub account: String,
    /// Folder it arrived in.
    pub mailbox: String,
    /// From address.
    pub from: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Verdict.
    pub verdict: Option<String>,
    /// In quarantine now.
    pub quarantined: bool,
    /// First seen.
    pub first_seen: String,
}

/// A campaign with its members, for the dashboard.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CampaignView {
    /// The clustering result.
    #[serde(flatten)]
    pub campaign: Campaign,
    /// Its messages.
    pub messages: Vec<CampaignMessage>,
}

fn member(r: &CampaignRow) -> Member {
    let of = |kind: &str| -> Vec<String> { r.observables.iter().filter(|(k, _)| k == kind).map(|(_, v)| v.clone()).collect() };
    Member {
        id: r.id,
        account: r.account.clone(),
        from: r.from_addr.as_ref().map(|f| f.to_ascii_lowercase()),
        subject: r.subject.clone(),
        urls: of("url"),
        hashes: of("sha256"),
        tlsh: of("tlsh").into_iter().next(),
        first_seen: r.first_seen.clone(),
        verdict: r.verdict.clone(),
    }
}

/// A reported message as a clustering member (id below zero: not a row).
fn reported(r: &ReportRow) -> Member {
    let obs = r.decision.as_ref().map(|d| d.observables.as_slice()).unwrap_or_default();
    let of = |kind: &str| -> Vec<String> { obs.iter().filter(|o| o.kind == kind).map(|o| o.value.clone()).collect() };
    Member {
        id: -r.id,
        account: r.account.clone(),
        from: r.from_addr.clone(),
        subject: r.subject.clone(),
        urls: of("url"),
        hashes: of("sha256"),
        tlsh: of("tlsh").into_iter().next(),
        first_seen: r.created_at.clone(),
        verdict: None,
    }
}

impl Runtime {
    async fn campaign_rows(&self) -> Result<Vec<CampaignRow>, RuntimeError> {
        let since = (self.clock.now() - WINDOW).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        Ok(self.store.campaign_rows(&since, MAX_MESSAGES).await?)
    }

    /// Every campaign of the last two weeks, newest activity first.
    pub async fn campaigns(&self) -> Result<Vec<CampaignView>, RuntimeError> {
        let rows = self.campaign_rows().await?;
        let members: Vec<Member> = rows.iter().map(member).collect();
        let found = tokio::task::spawn_blocking(move || cluster(&members))
            .await
            .map_err(|e| RuntimeError::Invalid(format!("clustering failed: {e}")))?;
        Ok(found
            .into_iter()
            .map(|c| {
                let messages = c
                    .members
                    .iter()
                    .filter_map(|id| rows.iter().find(|r| r.id == *id))
                    .map(|r| CampaignMessage {
                        id: r.id,
                        account: r.account.clone(),
                        mailbox: r.mailbox.clone(),
                        from: r.from_addr.clone(),
                        subject: r.subject.clone(),
                        verdict: r.verdict.clone(),
                        quarantined: r.quarantined,
                        first_seen: r.first_seen.clone(),
                    })
                    .collect();
                CampaignView { campaign: c, messages }
            })
            .collect())
    }

    /// One campaign by id (its smallest member id).
    pub async fn campaign(&self, id: i64) -> Result<Option<CampaignView>, RuntimeError> {
        Ok(self.campaigns().await?.into_iter().find(|c| c.campaign.id == id))
    }

    /// The delivered messages in a reported message's campaign (every
    /// account), the reporter's own copies included.
    pub(super) async fn report_campaign(&self, r: &ReportRow) -> Result<Vec<i64>, RuntimeError> {
        let rows = self.campaign_rows().await?;
        let mut members: Vec<Member> = rows.iter().map(member).collect();
        members.push(reported(r));
        let found = tokio::task::spawn_blocking(move || cluster(&members))
            .await
            .map_err(|e| RuntimeError::Invalid(format!("clustering failed: {e}")))?;
        let mine = found.into_iter().find(|c| c.members.contains(&-r.id));
        Ok(mine
            .map(|c| c.members.into_iter().filter(|id| *id > 0).collect())
            .unwrap_or_default())
    }

    /// Releases every quarantined message of a campaign (through each
    /// account's runner, audited per message). Returns one line per message.
    pub async fn release_campaign(&self, id: i64, actor: &str) -> Result<Vec<String>, RuntimeError> {
        let c = self
            .campaign(id)
            .await?
            .ok_or_else(|| RuntimeError::Invalid(format!("no campaign #{id}")))?;
        let mut out = Vec::new();
        for m in c.messages.iter().filter(|m| m.quarantined) {
            let line = match self.request_op(m.id, OpKind::Release, actor).await {
                Ok(r) => format!("#{} ({}): {} {}", m.id, m.account, r.state, r.detail),
                Err(e) => format!("#{} ({}): {e}", m.id, m.account),
            };
            out.push(line);
        }
        Ok(out)
    }
}
