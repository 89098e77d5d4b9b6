//! Parse once: every scanner reads the same [`ScanInput`], built from one
//! mail-parser pass with hard limits on parts, depth and sizes. Malformed mail
//! yields a partial input plus a note, never an error or a panic.

use super::attach::{self, Attachment};
use super::urls;
use mail_parser::{MessageParser, MessagePart, MimeHeaders, PartType};
use scraper::{Html, Selector};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Elements that point somewhere, parsed once per process.
static LINKING: std::sync::LazyLock<Option<Selector>> =
    std::sync::LazyLock::new(|| Selector::parse("[href], [src], [action], [formaction]").ok());

/// `<img>` sources kept per message.
pub const MAX_IMAGE_URLS: usize = 64;

/// Parts looked at per message (nested messages included).
pub const MAX_PARTS: usize = 1000;
/// Nesting of message/rfc822 parts that is followed.
pub const MAX_DEPTH: usize = 5;
/// Text or HTML kept per body for the heuristics.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// An authentication method's result, as stated by the trusted server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthStatus {
    /// No trusted statement (missing header is never "fail").
    #[default]
    Unknown,
    /// pass
    Pass,
    /// fail (or hardfail)
    Fail,
    /// softfail, neutral, none, temperror, permerror…
    Other,
}

/// SPF, DKIM and DMARC from the trusted `Authentication-Results`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuthResults {
    /// SPF.
    pub spf: AuthStatus,
    /// DKIM (pass if any signature passed).
    pub dkim: AuthStatus,
    /// DMARC.
    pub dmarc: AuthStatus,
}

impl AuthResults {
    /// Authentication aligns with the From domain (DMARC pass).
    pub fn aligned(&self) -> bool {
        self.dmarc == AuthStatus::Pass
    }
}

/// Options for building the input.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// Only `Authentication-Results` from this authserv-id are believed.
    pub authserv_id: Option<String>,
    /// Received headers added by our own servers, counted from the top
    /// (used when `trusted_relays` is empty; 0 means 1).
    pub trusted_hops: u32,
    /// Relays whose Received lines are ours: the sender is the first
    /// connecting IP, walking down from the top, outside these networks.
    pub trusted_relays: Vec<ipnet::IpNet>,
    /// The executable that reads PDFs in a child process under kernel
    /// limits ([`super::pdf::scan_in_child`]); without one, PDFs are read
    /// in this process and encrypted or object-stream files are refused.
    pub pdf_worker: Option<std::sync::Arc<std::path::Path>>,
    /// Image and PDF results by content, shared by every clone of these
    /// options (one pipeline's parses).
    pub media: Arc<super::media::MediaCache>,
}

/// Everything the scanners look at, built once per message.
#[derive(Debug, Clone, Default)]
pub struct ScanInput {
    /// Raw bytes (shared with network scanners).
    pub raw: Arc<Vec<u8>>,
    /// Message-ID.
    pub message_id: Option<String>,
    /// When it says it was received and written.
    pub dates: super::headers::Dates,
    /// Display name of From.
    pub from_name: Option<String>,
    /// From address, lower-case.
    pub from_addr: Option<String>,
    /// Domain of the From address.
    pub from_domain: Option<String>,
    /// Reply-To address, lower-case.
    pub reply_to: Option<String>,
    /// Recipients (To, Cc).
    pub rcpt: Vec<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Authentication results.
    pub auth: AuthResults,
    /// IP of the host that handed the message to our servers, from the
    /// trusted Received hop (never chosen by the sender's own headers).
    pub sender_ip: Option<std::net::IpAddr>,
    /// HELO name from that hop.
    pub helo: Option<String>,
    /// SMTP MAIL FROM, known only in-line (milter); the IMAP path leaves it unset.
    pub mail_from: Option<String>,
    /// Text bodies, concatenated and bounded.
    pub text: String,
    /// HTML bodies and HTML attachments, each bounded.
    pub html: Vec<String>,
    /// Per entry of `html`: every text node of its bounded tree, joined by
    /// spaces (the campaign fuzzy hash reads it).
    pub html_text: Vec<String>,
    /// Per entry of `html`: the text a reader sees (no script, style, head
    /// or title), as the AI tier's models were trained on it.
    pub html_visible: Vec<String>,
    /// What the HTML trees showed (hidden text, a password field), found
    /// while each tree exists: scraper's tree cannot cross threads, and
    /// building it again per check cost more than the checks (issue 21).
    pub html_findings: Vec<crate::domain::Finding>,
    /// Normalised, de-duplicated URLs.
    pub urls: Vec<String>,
    /// HTML links with their visible text (bounded).
    pub links: Vec<urls::Link>,
    /// HTML links with a `download` attribute (bounded).
    pub downloads: Vec<urls::Download>,
    /// Where HTML `<img>` elements load their pictures from, normalised
    /// (at most [`MAX_IMAGE_URLS`]).
    pub images: Vec<String>,
    /// Where HTML forms send their fields (`action`, `formaction`),
    /// normalised, bounded like `urls` (issue 14).
    pub forms: Vec<String>,
    /// Anchors' hrefs that are not web links (`mailto:`, `tel:`, `sms:`,
    /// `javascript:`), as written, at most [`MAX_OTHER_LINKS`] of
    /// [`MAX_OTHER_LINK_LEN`] bytes: where else a message sends its reader.
    pub other_links: Vec<String>,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// URLs found in QR codes (also in `urls`), in images and in PDFs.
    pub qr_urls: Vec<String>,
    /// Targets of the links in PDF attachments, normalised (also in
    /// `urls`): clickable, so they count wherever HTML links do.
    pub pdf_links: Vec<String>,
    /// External targets in Office attachments (hyperlinks, linked
    /// pictures and templates), normalised (also in `urls`).
    pub office_links: Vec<String>,
    /// Office attachments read (at most [`super::office::MAX_FILES`]).
    pub office_read: usize,
    /// URLs in calendar invitations (`.ics`), normalised (also in `urls`):
    /// calendar clients show them as links.
    pub calendar_links: Vec<String>,
    /// Calendars read (at most [`super::calendar::MAX_FILES`]).
    pub calendars_read: usize,
    /// What Office attachments fetch from the web on opening
    /// ("f.docx: attachedtemplate https://…").
    pub office_remote: Vec<String>,
    /// Office relationships to code-running protocol handlers.
    pub office_exploits: Vec<String>,
    /// Office attachments that carry a VBA project, found by content
    /// ("report.doc: /Macros/VBA"), whatever their names say.
    pub office_macros: Vec<String>,
    /// Actions in PDF attachments that run something ("report.pdf:
    /// JavaScript").
    pub pdf_actions: Vec<String>,
    /// PDF attachments read (at most [`MAX_PDFS`]).
    pub pdfs_read: usize,
    /// Images decoded for QR codes.
    pub images_scanned: usize,
    /// Bounds that were hit or parse problems (become tags).
    pub notes: Vec<String>,
    /// MIME content left unscanned because a part-count or nesting bound
    /// was hit (also in `notes`); issue 18: a limit is evidence, not a pass.
    pub unscanned: Vec<String>,
    /// Archive work done for this message, against its bounds.
    pub archive_budget: super::archive::Budget,
    /// mail-parser could not make sense of the message at all.
    pub unparseable: bool,
    /// Work bounds and deadlines hit (become `budget` tags, issue 18).
    pub limits: super::budget::Limits,
}

/// PDF attachments read per message: each load is bounded, and this
/// bounds how many one message can ask for.
pub const MAX_PDFS: usize = 4;

/// Observables kept per message at most.
pub const MAX_OBSERVABLES: usize = 200;

impl ScanInput {
    /// What this message points at, for matching later indicators.
    pub fn observables(&self) -> Vec<crate::domain::Observable> {
        let mut set = BTreeSet::new();
        let mut add = |kind: &str, value: &str| {
            if set.len() < MAX_OBSERVABLES && !value.is_empty() {
                set.insert(crate::domain::Observable {
                    kind: kind.to_string(),
                    value: if kind == "url" {
                        value.to_string()
                    } else {
                        value.to_ascii_lowercase()
                    },
                });
            }
        };
        // First, so a message with hundreds of links still keeps it: the
        // body's fuzzy hash joins campaigns across mailboxes (issue 17).
        if let Some(h) = super::fuzzy::body_tlsh(self) {
            add("tlsh", &h);
        }
        for a in [&self.from_addr, &self.reply_to].into_iter().flatten() {
            add("email", a);
        }
        if let Some(d) = &self.from_domain {
            add("domain", d);
        }
        if let Some(ip) = self.sender_ip {
            add("ip", &ip.to_string());
        }
        for a in &self.attachments {
            add("sha256", &a.sha256);
            // For the stats page's attachment types (issue 22).
            add("filetype", a.ext.as_deref().unwrap_or(&a.declared));
        }
        for u in self.urls.iter().chain(&self.qr_urls) {
            add("url", u);
        }
        set.into_iter().collect()
    }

    /// Builds the input from raw bytes.
    pub fn parse(raw: Vec<u8>, opts: &InputOptions) -> ScanInput {
        Self::parse_shared(Arc::new(raw), opts)
    }

    /// Builds the input from raw bytes the caller keeps a handle on (the
    /// pipeline does, to scan the raw message even if parsing is abandoned).
    pub fn parse_shared(raw: Arc<Vec<u8>>, opts: &InputOptions) -> ScanInput {
        #[cfg(test)]
        super::prepared::count::parsed(&raw);
        let mut input = ScanInput {
            raw: raw.clone(),
            ..Default::default()
        };
        // mail-parser has debug assertions that hostile structure can trip;
        // a parser panic makes the message unparseable evidence, never a crash
        // of whichever caller (daemon, `scan`, `simulate`) asked.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| MessageParser::default().parse(raw.as_slice())));
        let Ok(Some(msg)) = parsed else {
            input.unparseable = true;
            input.notes.push(match parsed {
                Err(_) => "the MIME parser crashed on this message".into(),
                Ok(_) => "message could not be parsed as MIME".into(),
            });
            return input;
        };
        input.message_id = msg.message_id().map(str::to_string);
        input.dates = super::headers::dates(&msg);
        if let Some(from) = msg.from().and_then(|a| a.first()) {
            input.from_name = from.name().map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
            input.from_addr = from.address().map(|a| a.trim().to_ascii_lowercase());
            input.from_domain = input
                .from_addr
                .as_deref()
                .and_then(|a| a.rsplit_once('@'))
                .map(|(_, d)| d.to_string());
        }
        input.reply_to = msg
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(|a| a.to_ascii_lowercase());
        input.rcpt = msg
            .to()
            .into_iter()
            .chain(msg.cc())
            .flat_map(|a| a.iter())
            .filter_map(|a| a.address())
            .map(|a| a.to_ascii_lowercase())
            .collect();
        input.subject = msg.subject().map(str::to_string);
        if let Some(id) = &opts.authserv_id {
            input.auth = auth_results(
                msg.headers_raw()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("Authentication-Results"))
                    .map(|(_, v)| v),
                id,
            );
        }
        (input.sender_ip, input.helo) = sending_hop(msg.received_all().collect(), opts);
        let mut cx = Walk {
            opts,
            urls: BTreeSet::new(),
            parts_seen: 0,
            pdf_time: std::time::Duration::ZERO,
        };
        walk(&msg, 0, &mut input, &mut cx);
        input.urls = cx.urls.into_iter().collect();
        input
    }

    /// Records content left unscanned by a bound, as a note too.
    fn unscanned_note(&mut self, n: String) {
        if self.unscanned.len() < 10 && !self.unscanned.contains(&n) {
            self.unscanned.push(n.clone());
        }
        self.note(n);
    }

    /// Appends a bounded note.
    fn note(&mut self, n: String) {
        if self.notes.len() < 50 && !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }
}

/// What the walk over one message's parts carries besides the input.
struct Walk<'a> {
    opts: &'a InputOptions,
    urls: BTreeSet<String>,
    parts_seen: usize,
    /// Time spent reading PDFs in workers (at most
    /// [`super::pdf::MAX_TIME_PER_MESSAGE`]).
    pdf_time: std::time::Duration,
}

fn walk(msg: &mail_parser::Message<'_>, depth: usize, input: &mut ScanInput, cx: &mut Walk<'_>) {
    if depth > MAX_DEPTH {
        input.unscanned_note(format!(
            "message nesting deeper than {MAX_DEPTH}; the inner message was not scanned"
        ));
        return;
    }
    for part in &msg.parts {
        cx.parts_seen += 1;
        if cx.parts_seen > MAX_PARTS {
            input.unscanned_note(format!("more than {MAX_PARTS} MIME parts; the rest was not scanned"));
            return;
        }
        visit(part, depth, input, cx);
    }
}

fn visit(part: &MessagePart<'_>, depth: usize, input: &mut ScanInput, cx: &mut Walk<'_>) {
    let is_attachment = part.attachment_name().is_some()
        || part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
    match &part.body {
        PartType::Text(t) if !is_attachment => {
            let t = bounded(t);
            let calendar = part.content_type().is_some_and(|c| {
                let declared = format!("{}/{}", c.ctype(), c.subtype().unwrap_or(""));
                super::calendar::is_calendar(&declared, None)
            });
            // A calendar's lines are folded mid-URL: only its unfolded
            // reading may give URLs, never the cut halves.
            if calendar {
                add_calendar(t.as_bytes(), input, &mut cx.urls);
            } else {
                urls::from_text(t, &mut cx.urls);
            }
            if input.text.len() < MAX_BODY_BYTES {
                input.text.push_str(t);
                input.text.push('\n');
            }
        }
        PartType::Html(h) if !is_attachment => add_html(bounded(h), None, input, &mut cx.urls),
        PartType::Message(inner) => walk(inner, depth + 1, input, cx),
        PartType::Multipart(_) => {}
        _ => {
            let data = part.contents();
            let declared = part
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
                .unwrap_or_else(|| "application/octet-stream".into());
            let a = attach::describe(part.attachment_name(), &declared, data, &mut input.archive_budget);
            let is_image = a.sniffed.as_deref().is_some_and(|m| m.starts_with("image/"));
            if is_image && input.images_scanned < super::qr::MAX_IMAGES {
                let digest = super::media::digest_of_hex(&a.sha256);
                let name = a.name.as_deref().unwrap_or("image");
                add_image(data, digest, name, input, &mut cx.urls, &cx.opts.media);
            }
            if is_pdf(&a, data) {
                add_pdf(data, &a, input, cx);
            }
            if let Some(at) = super::office::vba_project(&a, data)
                && input.office_macros.len() < 10
            {
                input
                    .office_macros
                    .push(format!("{}: {at}", a.name.as_deref().unwrap_or("Office file")));
            }
            if super::office::is_office(&a, data) {
                add_office(
                    data,
                    a.name.as_deref().unwrap_or("Office file"),
                    input,
                    &mut cx.urls,
                    &cx.opts.media,
                );
            }
            if super::calendar::is_calendar(&a.declared, a.name.as_deref()) {
                add_calendar(data, input, &mut cx.urls);
            }
            // SVG is markup too: phishing sends login forms and scripts as
            // .svg attachments (issue 14).
            let is_html = matches!(a.declared.as_str(), "text/html" | "image/svg+xml")
                || matches!(a.ext.as_deref(), Some("html" | "htm" | "shtml" | "xhtml" | "svg"));
            if is_html {
                add_html(
                    &String::from_utf8_lossy(&data[..data.len().min(MAX_BODY_BYTES)]),
                    Some(a.name.as_deref().unwrap_or("an HTML attachment")),
                    input,
                    &mut cx.urls,
                );
            }
            input.attachments.push(a);
        }
    }
}

/// QR codes that hold a URL: a link the reader opens with a phone.
fn add_qr_texts(texts: Vec<String>, input: &mut ScanInput, urls: &mut BTreeSet<String>) {
    for text in texts {
        if let Some(u) = urls::normalise(text.trim()) {
            input.qr_urls.push(u.clone());
            urls.insert(u);
        }
    }
}

/// Sniffed as a PDF, or named or declared one with the header where
/// readers look for it (anywhere in the first KiB, after any prefix).
fn is_pdf(a: &attach::Attachment, data: &[u8]) -> bool {
    let claimed = a.declared == "application/pdf" || a.ext.as_deref() == Some("pdf");
    a.sniffed.as_deref() == Some("application/pdf") || (claimed && memchr::memmem::find(&data[..data.len().min(1024)], b"%PDF-").is_some())
}

/// A PDF's links and QR codes join the message's; what it runs and what
/// could not be read are recorded for the checks and the budget report.
fn add_pdf(data: &[u8], a: &attach::Attachment, input: &mut ScanInput, cx: &mut Walk<'_>) {
    let name = a.name.as_deref().unwrap_or("PDF");
    if input.pdfs_read >= MAX_PDFS {
        super::budget::Limits::push(&mut input.limits.pdf, format!("{name}: more than {MAX_PDFS} PDFs; not read"));
        return;
    }
    input.pdfs_read += 1;
    let left = super::qr::MAX_IMAGES.saturating_sub(input.images_scanned);
    let time_left = super::pdf::MAX_TIME_PER_MESSAGE.saturating_sub(cx.pdf_time);
    if time_left < std::time::Duration::from_secs(1) {
        super::budget::Limits::push(
            &mut input.limits.pdf,
            format!("{name}: the message's time for PDFs is spent; not read"),
        );
        return;
    }
    let start = std::time::Instant::now();
    let read = || match &cx.opts.pdf_worker {
        Some(exe) => super::pdf::scan_in_child(exe, data, left, time_left),
        None => super::pdf::scan(data, left),
    };
    let pdf = match super::media::digest_of_hex(&a.sha256) {
        Some(d) => cx.opts.media.pdf(&d, left, cx.opts.pdf_worker.is_some(), read),
        None => read(),
    };
    cx.pdf_time += start.elapsed();
    input.images_scanned += pdf.images_scanned;
    if let Some(why) = pdf.limit {
        super::budget::Limits::push(&mut input.limits.pdf, format!("{name}: {why}"));
    }
    for link in &pdf.links {
        if let Some(u) = urls::normalise(link)
            && input.pdf_links.len() < super::pdf::MAX_LINKS
        {
            if !input.pdf_links.contains(&u) {
                input.pdf_links.push(u.clone());
            }
            if cx.urls.len() < urls::MAX_URLS {
                cx.urls.insert(u);
            }
        }
    }
    add_qr_texts(pdf.qr_texts, input, &mut cx.urls);
    for kind in pdf.actions {
        let what = format!("{name}: {kind}");
        if input.pdf_actions.len() < 10 && !input.pdf_actions.contains(&what) {
            input.pdf_actions.push(what);
        }
    }
}

/// An Office file's links join the message's, and its pictures are
/// searched for QR codes within the message's image budget.
fn add_office(data: &[u8], name: &str, input: &mut ScanInput, urls: &mut BTreeSet<String>, media: &super::media::MediaCache) {
    use sha2::Digest as _;
    if input.office_read >= super::office::MAX_FILES {
        let why = format!("{name}: more than {} Office files; not read", super::office::MAX_FILES);
        super::budget::Limits::push(&mut input.limits.office, why);
        return;
    }
    input.office_read += 1;
    let left = super::qr::MAX_IMAGES.saturating_sub(input.images_scanned);
    let office = super::office::read(data, left);
    if let Some(why) = office.limit {
        super::budget::Limits::push(&mut input.limits.office, format!("{name}: {why}"));
    }
    for (from, to) in [
        (office.remote, &mut input.office_remote),
        (office.exploits, &mut input.office_exploits),
    ] {
        for what in from {
            if to.len() < 10 {
                to.push(format!("{name}: {what}"));
            }
        }
    }
    for link in &office.links {
        if let Some(u) = urls::normalise(link) {
            if !input.office_links.contains(&u) {
                input.office_links.push(u.clone());
            }
            if urls.len() < urls::MAX_URLS {
                urls.insert(u);
            }
        }
    }
    for image in office.images {
        let digest = Some(sha2::Sha256::digest(&image).into());
        add_image(&image, digest, name, input, urls, media);
    }
}

/// A calendar invitation's links join the message's.
fn add_calendar(data: &[u8], input: &mut ScanInput, urls: &mut BTreeSet<String>) {
    use super::calendar;
    if input.calendars_read >= calendar::MAX_FILES {
        input.note(format!("more than {} calendars; the rest were not read", calendar::MAX_FILES));
        return;
    }
    input.calendars_read += 1;
    let scan = calendar::read(data);
    if let Some(why) = scan.limit {
        input.note(why);
    }
    for u in scan.links {
        if input.calendar_links.len() < calendar::MAX_LINKS && !input.calendar_links.contains(&u) {
            input.calendar_links.push(u.clone());
        }
        if urls.len() < urls::MAX_URLS {
            urls.insert(u);
        }
    }
}

/// Searches one image for QR codes (remembered by its digest, when it has
/// one): a code's URL joins the message's, and the image counts against
/// the message's image budget unless it is too small to hold a code.
fn add_image(
    data: &[u8],
    digest: Option<super::media::Digest>,
    name: &str,
    input: &mut ScanInput,
    urls: &mut BTreeSet<String>,
    media: &super::media::MediaCache,
) {
    let qr = match digest {
        Some(d) => media.image(&d, || super::qr::scan(data)),
        None => super::qr::scan(data),
    };
    if !qr.too_small {
        input.images_scanned += 1;
    }
    if let Some(why) = qr.limit {
        super::budget::Limits::push(&mut input.limits.qr, format!("{name}: {why}"));
    }
    add_qr_texts(qr.texts, input, urls);
}

fn bounded(s: &str) -> &str {
    if s.len() <= MAX_BODY_BYTES {
        return s;
    }
    let mut end = MAX_BODY_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One HTML body, or an HTML or SVG attachment (named): attachments open
/// in a browser, so only they are judged for what runs when opened.
fn add_html(html: &str, attachment: Option<&str>, input: &mut ScanInput, urls: &mut BTreeSet<String>) {
    // Only a bounded prefix becomes a tree (issue 18); URLs in the rest are
    // still picked up from the raw markup, which is linear to search.
    let parsed = super::htmlbound::parse(html);
    if let Some(why) = parsed.limit {
        super::budget::Limits::push(&mut input.limits.html, why);
        urls::from_text(&html[parsed.html.len()..], urls);
    }
    let doc = parsed.doc;
    if let Some(sel) = LINKING.as_ref() {
        // One walk and one normalisation per href serve both the message's
        // URLs and its anchors with their text (issue 21).
        let mut anchors_open = true;
        for el in doc.select(sel) {
            let anchor = anchors_open && matches!(el.value().name(), "a" | "area");
            let picture = el.value().name() == "img";
            for attr in ["href", "src", "action", "formaction"] {
                let Some(v) = el.value().attr(attr) else { continue };
                let as_anchor = anchor && attr == "href";
                let as_url = urls.len() < urls::MAX_URLS;
                let as_image = picture && attr == "src" && input.images.len() < MAX_IMAGE_URLS;
                if !as_anchor && !as_url && !as_image {
                    continue;
                }
                let u = urls::normalise(v);
                if let Some(u) = u.as_ref().filter(|_| as_image) {
                    input.images.push(u.clone());
                }
                if as_anchor {
                    anchors_open = urls::anchor(el, v, u.clone(), &mut input.links, &mut input.downloads);
                    if u.is_none() && input.other_links.len() < MAX_OTHER_LINKS {
                        other_link(v, &mut input.other_links);
                    }
                }
                if let Some(u) = u.filter(|_| as_url) {
                    if attr.contains("action") {
                        input.forms.push(u.clone());
                    }
                    urls.insert(u);
                }
            }
        }
    }
    let (text, visible) = texts(&doc);
    urls::from_text(&text, urls);
    super::scanners::hidden::hidden_text(&doc, &mut input.html_findings);
    super::scanners::html::password_form(&doc, &mut input.html_findings);
    if let Some(name) = attachment {
        super::scanners::active::attachment(&doc, name, &mut input.html_findings);
    }
    input.html_visible.push(visible);
    input.html_text.push(text);
    input.html.push(html.to_string());
}

/// Most non-web anchors kept per message, and their length.
pub const MAX_OTHER_LINKS: usize = 32;
/// See [`MAX_OTHER_LINKS`].
pub const MAX_OTHER_LINK_LEN: usize = 200;

/// Keeps an anchor's href that has a scheme other than http(s): relative
/// and empty hrefs lead nowhere outside the page.
fn other_link(raw: &str, out: &mut Vec<String>) {
    let raw = raw.trim();
    let Some((scheme, _)) = raw.split_once(':') else { return };
    let is_scheme = !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if is_scheme && !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        let end = raw.char_indices().nth(MAX_OTHER_LINK_LEN).map_or(raw.len(), |(i, _)| i);
        out.push(raw[..end].to_string());
    }
}

/// Every text node, joined by spaces (the fuzzy hash and the URL search
/// read it), and the text a reader sees: text nodes outside script, style,
/// head and title, each followed by a space (the AI tier's training
/// extraction). One walk that carries how many hiding elements are open,
/// instead of asking each text node's ancestors (issue 21).
fn texts(doc: &Html) -> (String, String) {
    use ego_tree::iter::Edge;
    let hides = |n: &scraper::Node| {
        n.as_element()
            .is_some_and(|e| matches!(e.name(), "script" | "style" | "head" | "title"))
    };
    let (mut all, mut visible, mut hidden, mut first) = (String::new(), String::new(), 0usize, true);
    for edge in doc.root_element().traverse() {
        match edge {
            Edge::Open(node) if hides(node.value()) => hidden += 1,
            Edge::Close(node) if hides(node.value()) => hidden = hidden.saturating_sub(1),
            Edge::Open(node) => {
                let Some(text) = node.value().as_text() else { continue };
                if !first {
                    all.push(' ');
                }
                first = false;
                all.push_str(text);
                if hidden == 0 {
                    visible.push_str(text);
                    visible.push(' ');
                }
            }
            Edge::Close(_) => {}
        }
    }
    (all, visible)
}

/// Picks the sending IP. Received lines are prepended by each hop, so the
/// top ones are ours and anything a sender forged sits below them.
fn sending_hop(received: Vec<&mail_parser::Received<'_>>, opts: &InputOptions) -> (Option<std::net::IpAddr>, Option<String>) {
    // RFC 5321: the "from" domain of a Received line is the EHLO name.
    let helo = |r: &mail_parser::Received<'_>| r.helo().or(r.from()).map(|h| h.to_string());
    let hop = if opts.trusted_relays.is_empty() {
        received.get(opts.trusted_hops.max(1) as usize - 1).copied()
    } else {
        received.iter().copied().find(|r| {
            r.from_ip().is_some_and(|ip| {
                let ip = ip.to_canonical();
                !ip.is_loopback() && !opts.trusted_relays.iter().any(|n| n.contains(&ip))
            })
        })
    };
    match hop {
        Some(r) => (r.from_ip().map(|ip| ip.to_canonical()), helo(r)),
        None => (None, None),
    }
}

/// Reads the topmost `Authentication-Results` value whose authserv-id is
/// `trusted`. A header from anyone else is ignored: senders can write these
/// too. Only the topmost trusted one counts (RFC 8601 §5): the MX prepends
/// its own and strips forged ones with its id, so a trusted-looking header
/// further down came from outside, and a later `pass` there must never
/// override the MX's `fail`.
fn auth_results<'a>(values: impl Iterator<Item = &'a str>, trusted: &str) -> AuthResults {
    let mut r = AuthResults::default();
    let topmost = values.map(unfold).find(|v| {
        let id = v.split(';').next().unwrap_or("").split_whitespace().next().unwrap_or("");
        id.eq_ignore_ascii_case(trusted)
    });
    if let Some(v) = topmost {
        let clauses = v.split(';').skip(1);
        for clause in clauses {
            let Some((method, rest)) = clause.trim().split_once('=') else {
                continue;
            };
            let result = rest.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
            let status = match result.as_str() {
                "pass" => AuthStatus::Pass,
                "fail" | "hardfail" => AuthStatus::Fail,
                _ => AuthStatus::Other,
            };
            let slot = match method.trim().to_ascii_lowercase().as_str() {
                "spf" => &mut r.spf,
                "dkim" => &mut r.dkim,
                "dmarc" => &mut r.dmarc,
                _ => continue,
            };
            // Within the MX's header any passing DKIM signature counts
            // (one result per signature); otherwise keep the first statement.
            if *slot == AuthStatus::Unknown || status == AuthStatus::Pass {
                *slot = status;
            }
        }
    }
    r
}

fn unfold(v: &str) -> String {
    v.split(['\r', '\n']).map(str::trim).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> InputOptions {
        InputOptions {
            authserv_id: Some("mx.example.org".into()),
            ..Default::default()
        }
    }

    /// Issue 21: an image seen before is not decoded again, and the
    /// message still carries what it holds.
    #[test]
    fn a_repeated_image_is_read_once_and_still_counts() {
        let raw = include_bytes!("../../tests/fixtures/eml/phish-qr-code.eml");
        let opts = opts();
        let first = ScanInput::parse(raw.to_vec(), &opts);
        let again = ScanInput::parse(raw.to_vec(), &opts.clone());
        for input in [&first, &again] {
            assert_eq!(input.qr_urls, vec![super::super::qr::FIXTURE_URL.to_string()]);
            assert_eq!(input.images_scanned, 1);
        }
        assert_eq!(opts.media.counts(), (1, 0));
    }

    /// Issue 14: an Office file's external links and the QR code in its
    /// picture join the message's links; a fifth Office file is a limit.
    #[test]
    fn office_links_and_pictures_are_read_within_the_message_bounds() {
        use base64::Engine as _;
        let png = {
            let mut out = Vec::new();
            let img = super::super::qr::fixture_code();
            img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
            out
        };
        let docx = super::super::office::tests::docx(super::super::office::tests::RELS, &[("word/media/image1.png", &png)]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&docx);
        let part = |i: usize| {
            format!(
                "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"f{i}.docx\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
            )
        };
        let raw = |n: usize| {
            let parts: String = (0..n).map(part).collect();
            format!("From: a@a.test\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n{parts}--b--\r\n")
        };
        let one = ScanInput::parse(raw(1).into_bytes(), &opts());
        assert_eq!(one.office_links, vec!["https://login.micros0ft.example/doc?a=1&b=2".to_string()]);
        assert!(one.urls.contains(&one.office_links[0]));
        assert_eq!(one.qr_urls, vec![super::super::qr::FIXTURE_URL.to_string()]);
        assert!(one.limits.office.is_empty());
        let five = ScanInput::parse(raw(5).into_bytes(), &opts());
        assert_eq!(five.office_read, super::super::office::MAX_FILES);
        assert_eq!(five.limits.office.len(), 1);
    }

    #[test]
    fn html_text_and_visible_text_come_from_one_walk() {
        let doc = Html::parse_document(
            "<html><head><title>T</title><style>p{}</style></head><body><p>a<script>s</script>b</p>\
             <div><span>c</span></div></body></html>",
        );
        let (all, visible) = texts(&doc);
        assert_eq!(all, "T p{} a s b c");
        assert_eq!(visible, "a b c ");
    }

    #[test]
    fn sending_ip_comes_from_the_trusted_hop_not_forged_headers() {
        let raw = "Received: from mx2.example.org (mx2.example.org [10.0.0.5]) by mx1.example.org; Sun, 22 Nov 2026 10:00:02 +0000\r\n\
                   Received: from sender.test (sender.test [2001:db8::25]) by mx2.example.org; Sun, 22 Nov 2026 10:00:01 +0000\r\n\
                   Received: from forged (forged [192.0.2.66]) by liar.test; Sun, 22 Nov 2026 10:00:00 +0000\r\n\
                   From: a@a.test\r\n\r\nhi";
        let hop1 = ScanInput::parse(raw.as_bytes().to_vec(), &opts());
        assert_eq!(hop1.sender_ip, Some("10.0.0.5".parse().unwrap()));
        let two = InputOptions { trusted_hops: 2, ..opts() };
        assert_eq!(
            ScanInput::parse(raw.as_bytes().to_vec(), &two).sender_ip,
            Some("2001:db8::25".parse().unwrap())
        );
        let relays = InputOptions {
            trusted_relays: vec!["10.0.0.0/8".parse().unwrap()],
            ..opts()
        };
        let r = ScanInput::parse(raw.as_bytes().to_vec(), &relays);
        assert_eq!(r.sender_ip, Some("2001:db8::25".parse().unwrap()), "forged lower hop never chosen");
        assert_eq!(r.helo.as_deref(), Some("sender.test"));
    }

    #[test]
    fn trusted_auth_results_only() {
        let raw = b"Authentication-Results: evil.test; dmarc=pass\r\nAuthentication-Results: mx.example.org;\r\n spf=pass smtp.mailfrom=a.test;\r\n dkim=fail; dkim=pass header.d=a.test; dmarc=pass\r\nFrom: A <a@a.test>\r\n\r\nhi";
        let i = ScanInput::parse(raw.to_vec(), &opts());
        assert_eq!(
            i.auth,
            AuthResults {
                spf: AuthStatus::Pass,
                dkim: AuthStatus::Pass,
                dmarc: AuthStatus::Pass
            }
        );
        let forged = b"Authentication-Results: evil.test; dmarc=pass\r\nFrom: a@a.test\r\n\r\nhi";
        assert_eq!(
            ScanInput::parse(forged.to_vec(), &opts()).auth.dmarc,
            AuthStatus::Unknown,
            "only the trusted id counts"
        );
        let none = b"From: a@a.test\r\n\r\nhi";
        assert!(!ScanInput::parse(none.to_vec(), &opts()).auth.aligned(), "missing means unknown");
    }

    #[test]
    fn issue_15_a_later_trusted_pass_does_not_override_the_topmost_fail() {
        // The MX's own header is on top; the one below carries the trusted
        // id too but was written by the sender (an MX that failed to strip it).
        let raw = b"Authentication-Results: mx.example.org; spf=fail smtp.mailfrom=bank.test; dkim=fail; dmarc=fail\r\n\
                    Authentication-Results: mx.example.org; spf=pass; dkim=pass header.d=bank.test; dmarc=pass\r\n\
                    From: Bank <alerts@bank.test>\r\n\r\nhi";
        let i = ScanInput::parse(raw.to_vec(), &opts());
        assert_eq!(
            i.auth,
            AuthResults {
                spf: AuthStatus::Fail,
                dkim: AuthStatus::Fail,
                dmarc: AuthStatus::Fail
            }
        );
        assert!(!i.auth.aligned());
        // A method the topmost header does not state stays unknown: it is
        // not filled in from a lower header either.
        let partial = b"Authentication-Results: mx.example.org; spf=pass\r\n\
                        Authentication-Results: mx.example.org; dmarc=pass\r\nFrom: a@a.test\r\n\r\nhi";
        let p = ScanInput::parse(partial.to_vec(), &opts());
        assert_eq!((p.auth.spf, p.auth.dmarc), (AuthStatus::Pass, AuthStatus::Unknown));
        // A foreign header above the MX's does not hide it.
        let foreign = b"Authentication-Results: relay.test; dmarc=pass\r\n\
                        Authentication-Results: mx.example.org; dmarc=fail\r\nFrom: a@a.test\r\n\r\nhi";
        assert_eq!(ScanInput::parse(foreign.to_vec(), &opts()).auth.dmarc, AuthStatus::Fail);
    }

    #[test]
    fn extracts_urls_from_text_html_and_attributes() {
        let raw = "From: \"PayPal Support\" <x@evil.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nvisit https://a.test/one\r\n--b\r\nContent-Type: text/html\r\n\r\n<a href=\"https://b.test/two#x\">x</a><form action=\"https://c.test/post\"></form><img src=\"http://d.test/i.png\"> https://e.test/plain\r\n--b--\r\n";
        let i = ScanInput::parse(raw.as_bytes().to_vec(), &opts());
        assert_eq!(
            i.urls,
            vec![
                "http://d.test/i.png",
                "https://a.test/one",
                "https://b.test/two",
                "https://c.test/post",
                "https://e.test/plain"
            ]
        );
        assert_eq!(i.from_name.as_deref(), Some("PayPal Support"));
        assert_eq!(i.from_domain.as_deref(), Some("evil.test"));
    }

    #[test]
    fn too_many_parts_is_bounded_and_noted() {
        let mut raw = String::from("From: a@a.test\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
        for i in 0..(MAX_PARTS + 50) {
            raw.push_str(&format!(
                "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=f{i}.bin\r\n\r\nx\r\n"
            ));
        }
        raw.push_str("--b--\r\n");
        let i = ScanInput::parse(raw.into_bytes(), &opts());
        assert!(i.attachments.len() <= MAX_PARTS);
        assert!(i.notes.iter().any(|n| n.contains("MIME parts")), "{:?}", i.notes);
    }

    #[test]
    fn calendar_links_are_read_inline_and_attached_within_bounds() {
        let ics = |n: usize| {
            format!(
                "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDESCRIPTION:Notes at https://wiki.exa\r\n mple.org/p/{n}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            )
        };
        let inline = format!(
            "From: a@example.org\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n{}",
            ics(0)
        );
        let i = ScanInput::parse(inline.into_bytes(), &opts());
        assert_eq!(i.calendar_links, vec!["https://wiki.example.org/p/0".to_string()]);
        assert_eq!(
            i.urls,
            vec!["https://wiki.example.org/p/0".to_string()],
            "no half of the folded URL"
        );
        let parts: String = (0..6)
            .map(|n| format!("--b\r\nContent-Type: application/octet-stream; name=\"e{n}.ics\"\r\n\r\n{}", ics(n)))
            .collect();
        let raw = format!("From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n{parts}--b--\r\n");
        let i = ScanInput::parse(raw.into_bytes(), &opts());
        assert_eq!(i.calendars_read, crate::scan::calendar::MAX_FILES);
        assert_eq!(i.calendar_links.len(), crate::scan::calendar::MAX_FILES);
        assert!(i.notes.iter().any(|n| n.contains("calendars")), "{:?}", i.notes);
    }

    #[test]
    fn issue_21_anchors_from_the_one_walk_equal_a_walk_of_their_own() {
        let many: String = (0..(urls::MAX_LINKS + 20))
            .map(|i| format!("<a href=\"https://l{i}.example/\">link {i}</a><img src=\"https://i{i}.example/p.png\">"))
            .collect();
        let docs = [
            "<a href=\"https://bank.example/x\">Sign in at <b>bank.example</b></a>\
             <a href=\"mailto:a@b.example\">mail</a><a href=\"/rel\">rel</a><a>no href</a>\
             <a href=\"https://files.example/r.iso\" download>get</a><a href=\"data:x\" download=\"inv.exe\">x</a>\
             <map><area href=\"https://area.example/\" alt=\"a\">area text</area></map>\
             <svg><a href=\"https://svg.example/\"><text>svg</text></a></svg>\
             <form action=\"https://form.example/p\"><button formaction=\"https://fa.example/\">go</button></form>\
             <a href=\"https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fwrapped.example%2F\">w</a>"
                .to_string(),
            many,
        ];
        for html in docs {
            let raw = format!("From: a@example.org\r\nContent-Type: text/html\r\n\r\n{html}");
            let i = ScanInput::parse(raw.into_bytes(), &opts());
            let (mut links, mut downloads) = (Vec::new(), Vec::new());
            urls::anchors(&Html::parse_document(&html), &mut links, &mut downloads);
            assert!(!links.is_empty());
            assert_eq!(i.links, links);
            assert_eq!(i.downloads, downloads);
        }
    }

    #[test]
    fn garbage_never_panics() {
        for raw in [
            &b""[..],
            b"\x00\x01\x02",
            b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--",
            b"From: <<<>>>@@\r\n\r\n",
        ] {
            let _ = ScanInput::parse(raw.to_vec(), &opts());
        }
    }
}
