//! The systemd journal, read through `journalctl -o json` as a child
//! process, resumed after a stored cursor. Each entry becomes an RFC 3339
//! syslog-style line (`<time> <host> <identifier>[<pid>]: <message>`) so the
//! same parsers read it as they read /var/log/mail.log.

use chrono::DateTime;
use serde::Deserialize;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// How to read the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSpec {
    /// `journalctl` (tests point this at a stand-in).
    pub program: PathBuf,
    /// Units to read, e.g. `postfix@-.service`, `dovecot.service`.
    pub units: Vec<String>,
}

/// One batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct JournalBatch {
    /// Lines in syslog form.
    pub lines: Vec<String>,
    /// Cursor of the last entry taken; `None` while the journal is empty.
    pub cursor: Option<String>,
    /// The bound was hit: read again at once.
    pub more: bool,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "__CURSOR")]
    cursor: String,
    #[serde(rename = "__REALTIME_TIMESTAMP", default)]
    realtime: Option<String>,
    #[serde(rename = "_HOSTNAME", default)]
    host: Option<String>,
    #[serde(rename = "SYSLOG_IDENTIFIER", default)]
    ident: Option<String>,
    #[serde(rename = "_PID", default)]
    pid: Option<String>,
    /// A string, or an array of bytes when the message is not UTF-8.
    #[serde(rename = "MESSAGE", default)]
    message: Option<serde_json::Value>,
}

/// Reads one `journalctl -o json` line: its cursor and, when it carries a
/// message, the message as a syslog-style line.
pub fn entry(json: &str) -> Option<(String, Option<String>)> {
    let e: Entry = serde_json::from_str(json).ok()?;
    let msg = match e.message {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Array(a)) => {
            let bytes: Vec<u8> = a.iter().filter_map(|b| b.as_u64()).map(|b| b.min(255) as u8).collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => None,
    };
    let line = msg.map(|m| {
        let at = e
            .realtime
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_else(|| "-".into());
        let pid = e.pid.map(|p| format!("[{p}]")).unwrap_or_default();
        let host = e.host.unwrap_or_else(|| "localhost".into());
        let ident = e.ident.unwrap_or_else(|| "-".into());
        format!("{at} {host} {ident}{pid}: {}", m.replace('\n', " "))
    });
    Some((e.cursor, line))
}

/// Reads entries after `cursor` (at most `max`). Without a cursor, only
/// the newest entry's cursor is taken, so reading starts at the end, as
/// with a file seen for the first time.
pub fn read(spec: &JournalSpec, cursor: Option<&str>, max: usize) -> io::Result<JournalBatch> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(["-o", "json", "--no-pager", "-q"]);
    for u in &spec.units {
        cmd.arg("-u").arg(u);
    }
    match cursor {
        Some(c) => cmd.arg(format!("--after-cursor={c}")),
        None => cmd.args(["-n", "1"]),
    };
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let mut out = JournalBatch {
        cursor: cursor.map(str::to_string),
        ..JournalBatch::default()
    };
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            let Some((c, text)) = entry(&line) else { continue };
            out.cursor = Some(c);
            if let (Some(t), Some(_)) = (text, cursor) {
                out.lines.push(t);
            }
            if out.lines.len() >= max.max(1) {
                out.more = true;
                break;
            }
        }
    }
    // Stopped early: the rest is read next time, after the new cursor.
    let _ = child.kill();
    let _ = child.wait();
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::logwatch::parse::{Outcome, Parsed, parse_line};

    pub(crate) const POSTFIX: &str = r#"{"__CURSOR":"s=7f1c;i=1a2b;b=9e;m=1f;t=62d;x=77","__REALTIME_TIMESTAMP":"1796184022482910","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/submission/smtpd","_PID":"21456","MESSAGE":"warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=alice@example.org","PRIORITY":"4"}"#;
    const DOVECOT: &str = r#"{"__CURSOR":"s=7f1c;i=1a2c;b=9e;m=20;t=62e;x=78","__REALTIME_TIMESTAMP":"1796184023000000","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"dovecot","_PID":"811","MESSAGE":[105,109,97,112,45,108,111,103,105,110,58,32,68,105,115,99,111,110,110,101,99,116,101,100,32,40,97,117,116,104,32,102,97,105,108,101,100,44,32,50,32,97,116,116,101,109,112,116,115,32,105,110,32,56,32,115,101,99,115,41,58,32,117,115,101,114,61,60,98,111,98,62,44,32,114,105,112,61,49,57,56,46,53,49,46,49,48,48,46,55,44,32,108,105,112,61,49,57,50,46,48,46,50,46,49]}"#;

    #[test]
    fn journal_entries_read_like_syslog_lines() {
        let now = DateTime::from_timestamp(1_796_184_100, 0).unwrap();
        let (c, line) = entry(POSTFIX).unwrap();
        assert!(c.ends_with("x=77"));
        let Parsed::Event(e) = parse_line(&line.unwrap(), now) else {
            panic!()
        };
        assert_eq!(
            (e.outcome, e.user.as_deref(), e.at),
            (Outcome::Failed, Some("alice@example.org"), 1_796_184_022)
        );
        let Parsed::Event(e) = parse_line(&entry(DOVECOT).unwrap().1.unwrap(), now) else {
            panic!()
        };
        assert_eq!((e.attempts, e.ip.to_string()), (2, "198.51.100.7".into()));
        assert_eq!(entry(r#"{"__CURSOR":"x"}"#), Some(("x".into(), None)));
        assert_eq!(entry("not json"), None);
    }

    /// A stand-in for journalctl: prints the entries after `--after-cursor`
    /// (all of them, or the last one with `-n 1`), and records its arguments.
    pub(crate) fn fake(dir: &std::path::Path, entries: &[&str]) -> JournalSpec {
        let data = dir.join("entries.json");
        std::fs::write(&data, entries.join("\n") + "\n").unwrap();
        let script = dir.join("journalctl");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" >> {args}\nfor a in \"$@\"; do case \"$a\" in --after-cursor=*) c=\"${{a#--after-cursor=}}\";; -n) last=1;; esac; done\n\
                 if [ -n \"$last\" ]; then tail -n 1 {data}; exit 0; fi\n\
                 if [ -z \"$c\" ]; then cat {data}; else awk -v c=\"$c\" 'f {{ print }} index($0, \"\\\"__CURSOR\\\":\\\"\" c \"\\\"\") {{ f = 1 }}' {data}; fi\n",
                args = dir.join("args").display(),
                data = data.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        JournalSpec {
            program: script,
            units: vec!["postfix@-.service".into(), "dovecot.service".into()],
        }
    }

    #[test]
    fn starts_at_the_end_then_resumes_after_its_cursor_within_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let first = r#"{"__CURSOR":"c0","MESSAGE":"startup"}"#;
        let spec = fake(dir.path(), &[first]);
        let b = read(&spec, None, 10).unwrap();
        assert_eq!((b.lines.len(), b.cursor.as_deref()), (0, Some("c0")), "history is not read");
        let spec = fake(dir.path(), &[first, POSTFIX, DOVECOT]);
        let b = read(&spec, Some("c0"), 1).unwrap();
        assert_eq!(b.lines.len(), 1);
        assert!(b.more);
        let b = read(&spec, b.cursor.as_deref(), 10).unwrap();
        assert_eq!(b.lines.len(), 1, "{b:?}");
        assert!(b.lines[0].contains("auth failed"));
        assert!(!b.more);
        let again = read(&spec, b.cursor.as_deref(), 10).unwrap();
        assert!(again.lines.is_empty());
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert!(
            args.contains("-o json --no-pager -q -u postfix@-.service -u dovecot.service --after-cursor=c0"),
            "{args}"
        );
    }
}
