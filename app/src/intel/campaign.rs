//! Campaigns (issue 17, item 4): messages across every mailbox joined when
//! they share a URL, an attachment, a sender with a subject, or a body that
//! is nearly the same text (TLSH, see [`crate::scan::fuzzy`]). Connected
//! messages form one campaign (union-find), so a phish sent with a new
//! subject to one half of the company and a new sender to the other is
//! still one campaign when each copy shares something with another.
//!
//! A sender's own mail is not a campaign: newsletters from one sender share
//! footer links and logo images with each other, so a shared URL or
//! attachment joins messages only across different senders, and the same
//! sender joins only with the same subject or a near-identical body. A bare
//! homepage link (no path, no query) joins nothing: everyone links to
//! the big sites.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// TLSH distance at or below which two bodies are the same text with small
/// edits. TLSH's authors put "very similar" below 30; names, greetings and
/// tracking tokens in a phishing run stay well inside that.
pub const FUZZY_MAX: i32 = 30;

/// One message as clustering sees it.
#[derive(Debug, Clone, Default)]
pub struct Member {
    /// Message row id (negative for a reported message that is not a row).
    pub id: i64,
    /// Account (one mailbox each).
    pub account: String,
    /// From address, lower-case.
    pub from: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// URLs it links to.
    pub urls: Vec<String>,
    /// Attachment SHA-256s.
    pub hashes: Vec<String>,
    /// Body TLSH digest.
    pub tlsh: Option<String>,
    /// First seen (RFC 3339).
    pub first_seen: String,
    /// Verdict.
    pub verdict: Option<String>,
}

/// One campaign.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Campaign {
    /// The smallest member message id: stable while the campaign grows.
    pub id: i64,
    /// Member ids (a reported copy that is not a message row is negative).
    pub members: Vec<i64>,
    /// Distinct mailboxes (accounts) it reached.
    pub mailboxes: usize,
    /// Earliest member.
    pub first_seen: String,
    /// Latest member.
    pub last_seen: String,
    /// Members per verdict.
    pub verdicts: BTreeMap<String, usize>,
    /// Distinct senders.
    pub senders: Vec<String>,
    /// Why its members are joined, e.g. `url https://…`, `similar body`.
    pub links: Vec<String>,
}

struct Sets {
    parent: Vec<usize>,
}

impl Sets {
    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent[b] = a;
        }
    }
}

/// Subjects compared case- and spacing-insensitively.
fn norm_subject(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// A link that names a page or carries a query; a bare homepage does not
/// identify a campaign.
fn distinctive_url(u: &str) -> bool {
    url::Url::parse(u).is_ok_and(|p| !p.path().trim_matches('/').is_empty() || p.query().is_some())
}

/// Joins members that share `key` when at least two senders do.
fn join_across_senders(sets: &mut Sets, members: &[Member], by_key: HashMap<&str, Vec<usize>>, what: &str, why: &mut Vec<(usize, String)>) {
    for (key, idx) in by_key {
        let senders: BTreeSet<Option<&str>> = idx.iter().map(|i| members[*i].from.as_deref()).collect();
        if senders.len() < 2 {
            continue;
        }
        for w in idx.windows(2) {
            sets.union(w[0], w[1]);
        }
        why.push((idx[0], format!("{what} {key}")));
    }
}

/// Groups `members` into campaigns of two or more, newest activity first.
/// Work is quadratic only in the members with a body digest (each pair's
/// TLSH distance); callers bound the window.
pub fn cluster(members: &[Member]) -> Vec<Campaign> {
    let mut sets = Sets {
        parent: (0..members.len()).collect(),
    };
    let mut why: Vec<(usize, String)> = Vec::new();
    let mut urls: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut hashes: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut sender_subject: HashMap<(String, String), usize> = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        for u in m.urls.iter().filter(|u| distinctive_url(u)) {
            urls.entry(u.as_str()).or_default().push(i);
        }
        for h in &m.hashes {
            hashes.entry(h.as_str()).or_default().push(i);
        }
        if let (Some(f), Some(s)) = (&m.from, &m.subject) {
            let s = norm_subject(s);
            if !s.is_empty() {
                match sender_subject.entry((f.clone(), s)) {
                    std::collections::hash_map::Entry::Occupied(e) => {
                        sets.union(*e.get(), i);
                        why.push((i, "same sender and subject".into()));
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(i);
                    }
                }
            }
        }
    }
    join_across_senders(&mut sets, members, urls, "url", &mut why);
    join_across_senders(&mut sets, members, hashes, "attachment", &mut why);
    let digests: Vec<(usize, &str)> = members
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.tlsh.as_deref().map(|t| (i, t)))
        .collect();
    for (k, (i, a)) in digests.iter().enumerate() {
        for (j, b) in &digests[k + 1..] {
            if crate::scan::fuzzy::distance(a, b).is_some_and(|d| d <= FUZZY_MAX) {
                sets.union(*i, *j);
                why.push((*j, "similar body".into()));
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..members.len() {
        let root = sets.find(i);
        groups.entry(root).or_default().push(i);
    }
    let mut reasons: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (i, w) in why {
        let root = sets.find(i);
        reasons.entry(root).or_default().insert(w);
    }
    let mut out: Vec<Campaign> = groups
        .into_iter()
        .filter(|(_, idx)| idx.len() >= 2)
        .map(|(root, idx)| {
            let ms: Vec<&Member> = idx.iter().map(|i| &members[*i]).collect();
            let mut verdicts = BTreeMap::new();
            for m in &ms {
                *verdicts.entry(m.verdict.clone().unwrap_or_else(|| "reported".into())).or_insert(0) += 1;
            }
            let ids: Vec<i64> = ms.iter().map(|m| m.id).collect();
            Campaign {
                id: ids.iter().copied().filter(|id| *id > 0).min().unwrap_or(0),
                members: ids,
                mailboxes: ms.iter().map(|m| m.account.as_str()).collect::<BTreeSet<_>>().len(),
                first_seen: ms.iter().map(|m| m.first_seen.clone()).min().unwrap_or_default(),
                last_seen: ms.iter().map(|m| m.first_seen.clone()).max().unwrap_or_default(),
                verdicts,
                senders: ms
                    .iter()
                    .filter_map(|m| m.from.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                links: reasons.remove(&root).unwrap_or_default().into_iter().collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(b.id.cmp(&a.id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::fuzzy::body_tlsh;
    use crate::scan::input::ScanInput;

    fn tlsh(text: &str) -> Option<String> {
        body_tlsh(&ScanInput {
            text: text.into(),
            ..Default::default()
        })
    }

    fn m(id: i64, account: &str, from: &str, subject: &str, urls: &[&str], body: &str) -> Member {
        Member {
            id,
            account: account.into(),
            from: Some(from.into()),
            subject: Some(subject.into()),
            urls: urls.iter().map(|u| (*u).to_string()).collect(),
            hashes: Vec::new(),
            tlsh: tlsh(body),
            first_seen: format!("2026-11-22T10:00:{id:02}Z"),
            verdict: Some("pass".into()),
        }
    }

    const PHISH: &str = "Dear colleague, your mailbox has exceeded its storage quota and new messages are being held. \
        Re-validate your account within 24 hours using the secure portal below, otherwise your mailbox will be \
        suspended and held messages deleted. Regards, IT Service Desk";

    #[test]
    fn one_link_in_two_mailboxes_from_two_senders_is_one_campaign() {
        let link = "https://mail-quota.test/validate?u=1";
        let c = cluster(&[
            m(
                1,
                "alice",
                "it@desk-a.test",
                "Mailbox full",
                &[link],
                "Short note one about the quota.",
            ),
            m(
                2,
                "bob",
                "helpdesk@desk-b.test",
                "Action required",
                &[link],
                "A different short text, nothing alike.",
            ),
            m(
                3,
                "carol",
                "friend@example.test",
                "Lunch",
                &["https://example.test/menu"],
                "Lunch at noon?",
            ),
        ]);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!((c[0].members.clone(), c[0].mailboxes), (vec![1, 2], 2));
        assert_eq!(c[0].links, vec![format!("url {link}")]);
        assert_eq!(
            (c[0].first_seen.as_str(), c[0].last_seen.as_str()),
            ("2026-11-22T10:00:01Z", "2026-11-22T10:00:02Z")
        );
        assert_eq!(c[0].verdicts.get("pass"), Some(&2));
    }

    #[test]
    fn two_newsletters_from_one_sender_are_not_a_campaign() {
        // The same shop, two different issues: shared footer links and the
        // same logo image, different subjects and texts.
        let footer = ["https://shop.test/privacy", "https://shop.test/unsubscribe", "https://shop.test/"];
        let mut a = m(
            1,
            "alice",
            "news@shop.test",
            "Autumn collection is here",
            &footer,
            "Our autumn collection has arrived: wool coats, linen shirts and leather boots in six new colours. \
             Members get free shipping on every order this week, and our city stores stay open late on Thursday.",
        );
        let mut b = m(
            2,
            "alice",
            "news@shop.test",
            "Your November recipes",
            &footer,
            "Five warming soups for November: roasted pumpkin with ginger, leek and potato, spicy lentil, \
             French onion with a cheese crust, and a creamy mushroom soup you can make ahead and freeze.",
        );
        a.hashes = vec!["ab".repeat(32)];
        b.hashes = a.hashes.clone();
        // A third, unrelated sender links only to the same big homepage.
        let c3 = m(
            3,
            "bob",
            "friend@example.test",
            "Look",
            &["https://shop.test/"],
            "Have you seen this shop? Worth a look.",
        );
        let c = cluster(&[a, b, c3]);
        assert!(c.is_empty(), "{c:?}");
    }

    #[test]
    fn a_lone_message_is_no_campaign() {
        assert!(cluster(&[]).is_empty());
        let one = m(1, "a", "x@y.test", "s", &[], PHISH);
        assert!(cluster(&[one]).is_empty());
    }
}
