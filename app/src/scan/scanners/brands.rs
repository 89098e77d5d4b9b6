//! The brand table (issue 14): which brands display names may name, and
//! which registrable domains each brand owns, across country codes and its
//! known sending and link domains. Data lives in `rules/brands.toml`, so a
//! brand's own `amazon.co.uk` or `amazon.it` is never taken for spoofing it.

use crate::scan::urls::registrable;
use serde::Deserialize;
use std::collections::HashMap;

/// The shipped brand table.
pub const DEFAULT_BRANDS: &str = include_str!("../../../../rules/brands.toml");

/// Local parts a brand's consumer mail domains send its own system mail
/// from (bounces, notices); any other address there is a customer's.
const SYSTEM_LOCALPARTS: &[&str] = &["postmaster", "mailer-daemon", "no-reply", "noreply", "do-not-reply", "donotreply"];

/// A brand table that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BrandsError {
    /// The TOML is malformed or a field has the wrong type.
    #[error("brand table: {0}")]
    Parse(#[from] toml::de::Error),
}

/// One brand.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    /// Shown in findings.
    pub name: String,
    /// Lower-case words or phrases that name it in a display name.
    #[serde(default)]
    pub words: Vec<String>,
    /// Registrable-domain labels it owns under any country code or .com.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Further registrable domains it owns.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Its own top-level domains (closed `.brand` registries such as
    /// `.dhl`): every domain under them is the brand's (`mydhl.express.dhl`).
    #[serde(default)]
    pub tlds: Vec<String>,
    /// Consumer mail domains it runs, where only system senders are it.
    #[serde(default)]
    pub mailbox: Vec<String>,
    /// Where anyone publishes under the brand's domains (shared documents,
    /// forms, payment requests): `host` or `host/path-prefix`, lower case.
    /// A link there is the brand's hosting, not the brand speaking.
    #[serde(default)]
    pub shared: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    neutral: Vec<String>,
    #[serde(default)]
    brand: Vec<Brand>,
}

/// The brand table.
#[derive(Debug, Clone, Default)]
pub struct Brands {
    list: Vec<Brand>,
    /// Registrable domains every sender links to besides its own (its
    /// pages on social networks, its app in the app stores).
    neutral: Vec<String>,
    /// Every brand word or phrase by its first word: the brand's index
    /// and the phrase's other words. A display name is split into words
    /// once and looked up here, instead of searching it for every word of
    /// every brand (issue 21).
    by_first_word: HashMap<String, Vec<(usize, Vec<String>)>>,
    /// The same by confusable skeleton ([`folded_words`]), so a name
    /// spelt in look-alike letters ("MetaМask" with a Cyrillic М,
    /// "Trust WaIIet" with capital I for l, "Amaz0n") still names it.
    by_first_fold: HashMap<String, Vec<(usize, Vec<String>)>>,
}

impl Brands {
    /// Parses a table in the `rules/brands.toml` format. Words, labels and
    /// domains are lower-cased, domains reduced to their registrable part.
    pub fn parse(toml_text: &str) -> Result<Self, BrandsError> {
        let file: File = toml::from_str(toml_text)?;
        let regs = |v: Vec<String>| -> Vec<String> { v.iter().filter_map(|d| registrable(d.trim())).collect() };
        let words = |v: Vec<String>| -> Vec<String> { v.iter().map(|w| phrase(w)).filter(|w| !w.is_empty()).collect() };
        let labels = |v: Vec<String>| -> Vec<String> { v.iter().map(|l| l.trim().to_ascii_lowercase()).collect() };
        let list = file
            .brand
            .into_iter()
            .map(|b| Brand {
                name: b.name,
                words: words(b.words),
                labels: labels(b.labels),
                domains: regs(b.domains),
                tlds: labels(b.tlds),
                mailbox: regs(b.mailbox),
                shared: b
                    .shared
                    .iter()
                    .map(|x| x.trim().trim_end_matches('/').to_ascii_lowercase())
                    .collect(),
            })
            .collect();
        let mut brands = Self {
            list,
            neutral: regs(file.neutral),
            by_first_word: HashMap::new(),
            by_first_fold: HashMap::new(),
        };
        brands.index_words();
        Ok(brands)
    }

    fn index_words(&mut self) {
        self.by_first_word.clear();
        self.by_first_fold.clear();
        for (i, b) in self.list.iter().enumerate() {
            for w in &b.words {
                let index = |words: Vec<String>, by: &mut HashMap<String, Vec<(usize, Vec<String>)>>| {
                    let mut words = words.into_iter();
                    if let Some(first) = words.next() {
                        by.entry(first).or_default().push((i, words.collect()));
                    }
                };
                index(w.split(' ').map(str::to_string).collect(), &mut self.by_first_word);
                index(folded_words(w), &mut self.by_first_fold);
            }
        }
    }

    /// The shipped table. It is checked by a unit test, so an unreadable
    /// one can only come from a broken build; it then yields no brands
    /// rather than a panic.
    pub fn shipped() -> Self {
        Self::parse(DEFAULT_BRANDS).unwrap_or_default()
    }

    /// Adds a protected domain the table does not know yet as a brand of
    /// its own, named by its label (`POSTERN_PROTECTED_DOMAINS`).
    pub fn add_domain(&mut self, domain: &str) {
        let Some(reg) = registrable(domain) else { return };
        if self.owner(&reg).is_some() {
            return;
        }
        let Some(label) = reg.split('.').next().map(str::to_string) else {
            return;
        };
        self.list.push(Brand {
            words: vec![phrase(&label)],
            name: label,
            labels: Vec::new(),
            domains: vec![reg],
            tlds: Vec::new(),
            mailbox: Vec::new(),
            shared: Vec::new(),
        });
        self.index_words();
    }

    /// Number of brands.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The brand that owns the host's registrable domain, mail domains
    /// included: its own host is never a lookalike of it.
    pub fn owner(&self, host: &str) -> Option<&Brand> {
        let reg = registrable(host)?;
        self.list.iter().find(|b| b.owns(&reg) || b.mailbox.contains(&reg))
    }

    /// The brand that owns the host's registrable domain, its consumer
    /// mail domains left out (anyone can send from those).
    pub fn owning(&self, host: &str) -> Option<&Brand> {
        let reg = registrable(host)?;
        self.list.iter().find(|b| b.owns(&reg))
    }

    /// Whether the URL is a neutral destination: on a social network or
    /// app store (`neutral`), and not where that network lets anyone post
    /// or redirect (its brand's `shared` entries).
    pub fn neutral(&self, url: &url::Url) -> bool {
        let Some(reg) = url.host_str().and_then(registrable) else {
            return false;
        };
        self.neutral.contains(&reg) && !self.list.iter().any(|b| b.owns(&reg) && b.hosts_others(url))
    }

    /// The brand whose domains let anyone publish at the URL (a shared
    /// document, a script, a payment request), if any.
    pub fn shared_host(&self, url: &url::Url) -> Option<&Brand> {
        self.list.iter().find(|b| b.hosts_others(url))
    }

    /// The first brand a display name names, by whole words or phrases,
    /// as written or in look-alike letters.
    pub fn named_in(&self, display_name: &str) -> Option<&Brand> {
        let mut first: Option<usize> = None;
        let lookups = [
            (phrase_words(display_name), &self.by_first_word),
            (folded_words(display_name), &self.by_first_fold),
        ];
        for (words, by_first) in &lookups {
            for (at, word) in words.iter().enumerate() {
                for (brand, rest) in by_first.get(word).into_iter().flatten() {
                    let follows = words.get(at + 1..at + 1 + rest.len()).is_some_and(|next| next == rest.as_slice());
                    if follows && first.is_none_or(|f| *brand < f) {
                        first = Some(*brand);
                    }
                }
            }
        }
        first.and_then(|i| self.list.get(i))
    }
}

impl Brand {
    /// Whether the brand owns this registrable domain: one of its domains,
    /// one of its labels under a country code or .com, or any name under
    /// its own top-level domain.
    pub fn owns(&self, reg: &str) -> bool {
        if self.domains.iter().any(|d| d == reg) {
            return true;
        }
        let Some((label, suffix)) = reg.split_once('.') else { return false };
        if let Some(tld) = suffix.rsplit('.').next()
            && self.tlds.iter().any(|t| t == tld)
        {
            return true;
        }
        self.labels.iter().any(|l| l == label) && country_or_com(suffix)
    }

    /// Whether the URL points into a place where anyone can publish under
    /// the brand's name (`docs.google.com`, `paypal.com/invoice`): the host
    /// itself or a subdomain of it, with the path prefix when one is given.
    pub fn hosts_others(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str() else { return false };
        let host = host.to_ascii_lowercase();
        let path = url.path().to_ascii_lowercase();
        self.shared.iter().any(|entry| {
            let (h, prefix) = entry.split_once('/').map_or((entry.as_str(), ""), |(h, p)| (h, p));
            let host_matches = host == h || host.ends_with(&format!(".{h}"));
            host_matches && (prefix.is_empty() || path.trim_start_matches('/').starts_with(prefix))
        })
    }

    /// Whether mail from `addr` (registrable domain `reg`) is the brand's
    /// own: an owned domain, or a system sender on its consumer mail domain.
    pub fn sends_as(&self, addr: Option<&str>, reg: &str) -> bool {
        if self.owns(reg) {
            return true;
        }
        if !self.mailbox.iter().any(|m| m == reg) {
            return false;
        }
        let (local, host) = addr.and_then(|a| a.rsplit_once('@')).unwrap_or(("", ""));
        // Customers get addresses at the bare domain; a subdomain
        // (reply.yahoo.com) is the brand's own system.
        let subdomain = host.len() > reg.len() && host.to_ascii_lowercase().ends_with(&format!(".{reg}"));
        subdomain || SYSTEM_LOCALPARTS.contains(&local)
    }

    /// Whether the display name also names the sender's own domain, as a
    /// publisher writing about the brand does ("Lockergnome Apple Core" from
    /// lockergnome.com): the sender shows who it is, so the brand word is a
    /// topic, not an identity. A phisher's sending domain is rarely in its
    /// display name. The label must have 5 characters or more (short
    /// ones are often plain words: "team", "mail") and must not
    /// itself name the brand, so "PayPal Service" from paypal-service.test
    /// stays a spoof.
    pub fn named_with_sender(&self, display_name: &str, reg: &str) -> bool {
        let label = phrase(reg.split_once('.').map_or(reg, |(l, _)| l));
        if label.chars().filter(|c| c.is_alphanumeric()).count() < 5 {
            return false;
        }
        let squashed: String = label.split(' ').collect();
        if self.words.iter().chain(&self.labels).any(|w| {
            let w: String = w.split(|c: char| !c.is_alphanumeric()).collect();
            !w.is_empty() && squashed.contains(&w.to_lowercase())
        }) {
            return false;
        }
        format!(" {} ", phrase(display_name)).contains(&format!(" {label} "))
    }
}

/// Lower-case words joined by single spaces: "Amazon.co.uk" and
/// "amazon co uk" read alike, so phrases match whole words only.
fn phrase(s: &str) -> String {
    phrase_words(s).join(" ")
}

/// The lower-cased words of `s`, split at anything not alphanumeric.
fn phrase_words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The words of `s` by confusable skeleton (UTS #39), lower-cased: the
/// skeleton first, so a capital I read as l ("WaIIet") or a Cyrillic М
/// becomes the letter it imitates, then again after lower-casing, so both
/// sides agree however the skeleton maps lower case ("m" is "rn" there).
fn folded_words(s: &str) -> Vec<String> {
    use unicode_security::skeleton;
    let lower = skeleton(s).collect::<String>().to_lowercase();
    phrase_words(&skeleton(&lower).collect::<String>())
}

/// `com`, a country code (`it`, `uk`) or a second level under one
/// (`co.uk`, `com.au`): the suffixes a brand registers its name under.
/// Generic ones anyone may take (`.xyz`, `.shop`) do not count.
fn country_or_com(suffix: &str) -> bool {
    let last = suffix.rsplit('.').next().unwrap_or("");
    suffix == "com" || (last.len() == 2 && last.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_parses_and_covers_the_protected_domains() {
        let b = Brands::parse(DEFAULT_BRANDS).unwrap();
        assert!(b.len() >= 14);
        for d in super::super::spoof::DEFAULT_PROTECTED.lines() {
            let d = d.split('#').next().unwrap().trim();
            if d.contains('.') {
                assert!(b.owner(d).is_some(), "{d} has no brand in rules/brands.toml");
            }
        }
    }

    /// Issue 14: a brand's ccTLD domains and sending domains are its own.
    #[test]
    fn issue_14_country_code_and_sending_domains_are_owned() {
        let b = Brands::shipped();
        for host in [
            "amazon.co.uk",
            "www.amazon.it",
            "amazon.com.au",
            "amazon.de",
            "bounces.amazonses.com",
            "amzn.eu",
        ] {
            assert_eq!(b.owner(host).map(|b| b.name.as_str()), Some("Amazon"), "{host}");
        }
        assert_eq!(b.owner("email.royalmail.com").map(|b| b.name.as_str()), Some("Royal Mail"));
        // A brand's own top-level domain: DHL Express links to mydhl.express.dhl.
        assert_eq!(b.owner("mydhl.express.dhl").map(|b| b.name.as_str()), Some("DHL"));
        assert_eq!(b.owner("about.google").map(|b| b.name.as_str()), Some("Google"));
        assert!(b.owner("dhl.example").is_none());
        // Generic suffixes anyone can register are not the brand's.
        assert!(b.owner("amazon.xyz").is_none());
        assert!(b.owner("amazon-shipping.com").is_none());
        assert_eq!(b.named_in("Amazon.co.uk").map(|b| b.name.as_str()), Some("Amazon"));
        assert_eq!(b.named_in("Royal Mail Group").map(|b| b.name.as_str()), Some("Royal Mail"));
        assert!(b.named_in("Start-ups weekly").is_none());
        assert!(b.named_in("Economic Outlook").is_none());
    }

    /// Issue 21: the word index names the same brand as searching the
    /// display name for every word of every brand, in table order, did.
    #[test]
    fn indexed_lookup_agrees_with_searching_every_word() {
        let b = Brands::shipped();
        let searched = |name: &str| {
            let padded = format!(" {} ", phrase(name));
            b.list
                .iter()
                .find(|brand| brand.words.iter().any(|w| padded.contains(&format!(" {w} "))))
                .map(|brand| brand.name.clone())
        };
        let mut names: Vec<String> = b.list.iter().flat_map(|x| x.words.clone()).collect();
        for w in b.list.iter().flat_map(|x| x.words.clone()) {
            names.push(format!("Your {w} account team"));
            names.push(format!("{w}-support"));
            names.push(w.replace(' ', ""));
            names.push(w.split(' ').next().unwrap_or_default().to_string());
        }
        names.extend(
            [
                "",
                "   ",
                "PayPal Amazon",
                "Microsoft Outlook Team",
                "Apple Pay via Stripe",
                "Ünïcode Bank GmbH",
            ]
            .map(String::from),
        );
        for name in &names {
            assert_eq!(b.named_in(name).map(|x| x.name.clone()), searched(name), "{name:?}");
        }
        let mut with_domain = b.clone();
        with_domain.add_domain("corp-example.test");
        assert_eq!(
            with_domain.named_in("CORP Example helpdesk").map(|x| x.name.as_str()),
            Some("corp-example")
        );
    }

    #[test]
    fn names_in_look_alike_letters_still_name_the_brand() {
        let b = Brands::shipped();
        let named = |n: &str| b.named_in(n).map(|x| x.name.as_str());
        assert_eq!(named("MetaМask"), Some("MetaMask"), "Cyrillic М");
        assert_eq!(named("Trust WaIIet"), Some("Trust Wallet"), "capital I for l");
        assert_eq!(named("\u{39d}FT@\u{3c5}niswa\u{3c1}"), Some("Uniswap"), "Greek υ and ρ");
        assert_eq!(named("Amaz0n Prime"), Some("Amazon"), "a zero for o");
        assert_eq!(named("PAYPAL"), Some("PayPal"), "capitals alone are the word itself");
        for plain in [
            "Pat Metzler",
            "Trusted Wallets Review",
            "Ledger Accounting Ltd",
            "Kern & Co",
            "Wallet Team",
        ] {
            assert_eq!(named(plain), None, "{plain}");
        }
    }

    #[test]
    fn consumer_mailboxes_are_the_brand_only_for_system_senders() {
        let b = Brands::shipped();
        let ms = b.named_in("Microsoft Outlook").unwrap();
        assert!(ms.sends_as(Some("postmaster@outlook.com"), "outlook.com"));
        assert!(!ms.sends_as(Some("support.team77@outlook.com"), "outlook.com"));
        let yahoo = b.named_in("Yahoo!News").unwrap();
        assert!(
            yahoo.sends_as(Some("refertofriend@reply.yahoo.com"), "yahoo.com"),
            "a subdomain is the brand's system"
        );
        assert!(!yahoo.sends_as(Some("yahoo.news.team@yahoo.com"), "yahoo.com"));
        assert!(!yahoo.sends_as(Some("x@evilyahoo.com"), "evilyahoo.com"));
        // Providers whose customers' addresses sit on the brand's own label.
        for (name, domain) in [("Comcast", "comcast.net"), ("Verizon", "verizon.net"), ("La Poste", "laposte.net")] {
            let brand = b.named_in(name).unwrap();
            assert!(!brand.sends_as(Some(&format!("billing.dept@{domain}")), domain), "{name}");
            assert!(brand.sends_as(Some(&format!("postmaster@{domain}")), domain), "{name}");
        }
        // A brand's known sending domain is its own.
        let colissimo = b.named_in("Colissimo").unwrap();
        assert!(colissimo.sends_as(Some("noreply@notif-colissimo-laposte.info"), "notif-colissimo-laposte.info"));
    }

    #[test]
    fn shared_entries_match_hosts_and_path_prefixes() {
        let b = Brands::shipped();
        let url = |u: &str| url::Url::parse(u).unwrap();
        let google = b.named_in("Google").unwrap();
        assert!(google.hosts_others(&url("https://docs.google.com/forms/d/x")));
        assert!(!google.hosts_others(&url("https://myaccount.google.com/notifications")));
        let paypal = b.named_in("PayPal").unwrap();
        assert!(paypal.hosts_others(&url("https://www.paypal.com/invoice/p/#ABC")));
        assert!(!paypal.hosts_others(&url("https://www.paypal.com/myaccount/summary")));
        assert!(b.neutral(&url("https://www.facebook.com/amazon")));
        assert!(!b.neutral(&url("https://l.facebook.com/l.php?u=https%3A%2F%2Fevil.test")));
        assert!(!b.neutral(&url("https://evil.test/facebook.com")));
    }

    #[test]
    fn bad_tables_are_errors_not_panics() {
        assert!(Brands::parse("[[brand]]\nname = 3").is_err());
        assert!(Brands::parse("[[brand]]\nname = \"x\"\nwordz = []").is_err());
        let mut b = Brands::parse("").unwrap();
        b.add_domain("example-bank.com");
        assert_eq!(b.named_in("Example-Bank alerts").map(|b| b.name.as_str()), Some("example-bank"));
        assert!(b.owner("example-bank.com").is_some());
    }
}
