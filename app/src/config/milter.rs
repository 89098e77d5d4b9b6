//! In-line mode settings (issue 19): where the milter listens and what
//! each verdict becomes in the SMTP dialogue.

use super::env::Reader;
use super::problem::Problem;
use std::path::PathBuf;
use std::time::Duration;

/// Where the milter listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MilterListen {
    /// `inet:HOST:PORT`.
    Inet(std::net::SocketAddr),
    /// `unix:/path`.
    Unix(PathBuf),
}

/// As written in `POSTERN_MILTER_LISTEN` and Postfix's `smtpd_milters`.
impl std::fmt::Display for MilterListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MilterListen::Inet(a) => write!(f, "inet:{a}"),
            MilterListen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl std::str::FromStr for MilterListen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(a) = s.strip_prefix("inet:") {
            return a.parse().map(MilterListen::Inet).map_err(|e| format!("{a:?} is not IP:PORT ({e})"));
        }
        match s.strip_prefix("unix:").or_else(|| s.strip_prefix("local:")) {
            Some(p) if p.starts_with('/') => Ok(MilterListen::Unix(PathBuf::from(p))),
            _ => Err(format!("{s:?} is neither inet:IP:PORT nor unix:/absolute/path")),
        }
    }
}

/// What the milter does with a message of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MilterReply {
    /// 550 5.7.1 with a short reason; the sender keeps the bounce.
    Reject,
    /// 451 4.7.1: the sender retries later.
    Tempfail,
    /// Accept with headers into Postfix's hold queue (`postsuper -H` releases).
    Hold,
    /// Accept with the X-Postern-* and X-Spam headers, for Sieve.
    Headers,
    /// Accept with the X-Postern-* headers only.
    Accept,
}

impl MilterReply {
    /// Stable name (settings, records).
    pub fn as_str(self) -> &'static str {
        match self {
            MilterReply::Reject => "reject",
            MilterReply::Tempfail => "tempfail",
            MilterReply::Hold => "hold",
            MilterReply::Headers => "headers",
            MilterReply::Accept => "accept",
        }
    }
}

impl std::str::FromStr for MilterReply {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "reject" => MilterReply::Reject,
            "tempfail" => MilterReply::Tempfail,
            "hold" => MilterReply::Hold,
            "headers" => MilterReply::Headers,
            "accept" => MilterReply::Accept,
            _ => return Err("use reject, tempfail, hold, headers or accept".into()),
        })
    }
}

impl std::fmt::Display for MilterReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Postfix's own default for `milter_content_timeout` (end of message).
pub const POSTFIX_CONTENT_TIMEOUT: Duration = Duration::from_secs(300);

/// In-line mode.
#[derive(Debug, Clone, PartialEq)]
pub struct MilterSettings {
    /// Listen address (`POSTERN_MILTER_LISTEN`); `None`: no milter.
    pub listen: Option<MilterListen>,
    /// Delete-class verdicts and quarantines resting on strong evidence
    /// (`POSTERN_MILTER_ON_DELETE`, default reject).
    pub on_delete: MilterReply,
    /// Other quarantines (`POSTERN_MILTER_ON_QUARANTINE`, default hold).
    pub on_quarantine: MilterReply,
    /// Junk (`POSTERN_MILTER_ON_JUNK`, default headers).
    pub on_junk: MilterReply,
    /// Flag (`POSTERN_MILTER_ON_FLAG`, default headers).
    pub on_flag: MilterReply,
    /// A critical (fail-closed) scanner could not answer
    /// (`POSTERN_MILTER_ON_SCANNER_DOWN`, default tempfail).
    pub on_scanner_down: MilterReply,
    /// Message over `POSTERN_MAX_MESSAGE_BYTES`
    /// (`POSTERN_MILTER_ON_OVERSIZE`: accept with a not-scanned header, or tempfail).
    pub on_oversize: MilterReply,
    /// Deadline for the end-of-message scan (`POSTERN_MILTER_TIMEOUT_SECS`,
    /// default 60, below Postfix's 300 s `milter_content_timeout`); past it
    /// the message is tempfailed.
    pub scan_timeout: Duration,
    /// The command the dashboard's release and delete of held mail run,
    /// with `-H QUEUEID` or `-d QUEUEID hold` appended
    /// (`POSTERN_MILTER_POSTSUPER`, default `postsuper`). postsuper needs
    /// root and Postern is not, so e.g. `sudo -n /usr/sbin/postsuper` with a
    /// sudoers rule for exactly those two forms.
    pub postsuper: Vec<String>,
    /// The command run after a release, with `-i QUEUEID` appended, so the
    /// mail is delivered now rather than at the next deferred-queue run
    /// (`POSTERN_MILTER_POSTQUEUE`, default `postqueue`; needs no root).
    pub postqueue: Vec<String>,
    /// Milter connections served at once (`POSTERN_MILTER_MAX_CONNECTIONS`,
    /// default 512). Postfix keeps one open per smtpd and cleanup process,
    /// up to `default_process_limit` (100) for each service that uses the
    /// milter; a connection past the limit waits, unanswered, for a free
    /// slot.
    pub max_connections: usize,
}

impl Default for MilterSettings {
    fn default() -> Self {
        Self {
            listen: None,
            on_delete: MilterReply::Reject,
            on_quarantine: MilterReply::Hold,
            on_junk: MilterReply::Headers,
            on_flag: MilterReply::Headers,
            on_scanner_down: MilterReply::Tempfail,
            on_oversize: MilterReply::Accept,
            scan_timeout: Duration::from_secs(60),
            postsuper: vec!["postsuper".into()],
            postqueue: vec!["postqueue".into()],
            max_connections: 512,
        }
    }
}

pub(super) fn parse(r: &mut Reader<'_>) -> MilterSettings {
    let d = MilterSettings::default();
    let listen = r.get("POSTERN_MILTER_LISTEN").map(str::to_string).and_then(|v| match v.parse() {
        Ok(l) => Some(l),
        Err(e) => {
            r.problems.push(Problem::new(
                "POSTERN_MILTER_LISTEN",
                e,
                "e.g. inet:127.0.0.1:11332 or unix:/run/postern/milter.sock",
            ));
            None
        }
    });
    let hint = "one of reject, tempfail, hold, headers, accept";
    let on_oversize = r.parse("POSTERN_MILTER_ON_OVERSIZE", d.on_oversize, "accept or tempfail");
    if !matches!(on_oversize, MilterReply::Accept | MilterReply::Tempfail) {
        r.problems.push(Problem::new(
            "POSTERN_MILTER_ON_OVERSIZE",
            format!("{on_oversize} is not allowed for unscanned mail"),
            "accept (with a header saying it was not scanned) or tempfail",
        ));
    }
    // Stay well below Postfix's milter_content_timeout: past it Postfix
    // applies milter_default_action itself and our answer is lost.
    let max = POSTFIX_CONTENT_TIMEOUT.as_secs() - 60;
    MilterSettings {
        listen,
        on_delete: r.parse("POSTERN_MILTER_ON_DELETE", d.on_delete, hint),
        on_quarantine: r.parse("POSTERN_MILTER_ON_QUARANTINE", d.on_quarantine, hint),
        on_junk: r.parse("POSTERN_MILTER_ON_JUNK", d.on_junk, hint),
        on_flag: r.parse("POSTERN_MILTER_ON_FLAG", d.on_flag, hint),
        on_scanner_down: r.parse("POSTERN_MILTER_ON_SCANNER_DOWN", d.on_scanner_down, "tempfail or hold"),
        on_oversize,
        scan_timeout: Duration::from_secs(r.ranged("POSTERN_MILTER_TIMEOUT_SECS", d.scan_timeout.as_secs(), 1, max, "seconds")),
        postsuper: r
            .get("POSTERN_MILTER_POSTSUPER")
            .map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|v| !v.is_empty())
            .unwrap_or(d.postsuper),
        postqueue: r
            .get("POSTERN_MILTER_POSTQUEUE")
            .map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|v| !v.is_empty())
            .unwrap_or(d.postqueue),
        max_connections: r.ranged("POSTERN_MILTER_MAX_CONNECTIONS", d.max_connections as u64, 1, 65_535, "connections") as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(
            "inet:127.0.0.1:11332".parse::<MilterListen>(),
            Ok(MilterListen::Inet("127.0.0.1:11332".parse().unwrap()))
        );
        assert_eq!(
            "unix:/run/postern/milter.sock".parse::<MilterListen>(),
            Ok(MilterListen::Unix("/run/postern/milter.sock".into()))
        );
        assert!("127.0.0.1:11332".parse::<MilterListen>().is_err());
        for written in ["inet:127.0.0.1:11332", "inet:[::1]:11332", "unix:/run/postern/milter.sock"] {
            assert_eq!(written.parse::<MilterListen>().unwrap().to_string(), written);
        }
        assert!("unix:relative.sock".parse::<MilterListen>().is_err());
    }
}
