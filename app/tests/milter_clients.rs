//! The milter against a client other than Postfix: OpenDKIM's `miltertest`
//! (Debian `miltertest`, installed by `make stack`), which can offer fewer
//! actions and protocol steps than Postfix does. An interop probe found
//! that Postern closed the connection, logging nothing, on any MTA that
//! did not offer every action it wanted; it now makes do with what is
//! offered, and never holds mail it could not release.

use postern::config::{MilterListen, MilterSettings};
use postern::milter::Milter;
use postern::scan::{InputOptions, LiveDecider};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One transaction: how the client negotiates, whether it sends `{i}`,
/// and which message.
struct Case {
    label: &'static str,
    /// miltertest's protocol steps word (what the MTA can skip or not).
    steps: u32,
    /// The actions the MTA offers.
    actions: u32,
    queue_id: bool,
    exe: bool,
}

/// Every protocol step and option of version 6, and every action.
const ALL_STEPS: u32 = 0x1f_ffff;
const ALL_ACTIONS: u32 = 0x1ff;
const ADD_HEADER: u32 = 0x01;

fn script(port: u16, cases: &[Case]) -> String {
    let mut s = String::from(
        r#"
local function name(r)
  if r == SMFIR_ACCEPT then return "accept" end
  if r == SMFIR_REPLYCODE then return "replycode" end
  if r == SMFIR_TEMPFAIL then return "tempfail" end
  if r == SMFIR_REJECT then return "reject" end
  if r == SMFIR_CONTINUE then return "continue" end
  return tostring(r)
end
local function ok(what, err) if err ~= nil then error(what .. ": " .. tostring(err)) end end
local function run(label, steps, actions, qid, body, attach)
  local conn = mt.connect("inet:PORT@127.0.0.1", 3, 1)
  if conn == nil then error("connect failed") end
  -- miltertest 1.6.0 takes (version, steps, actions), whatever its man page says.
  ok("negotiate", mt.negotiate(conn, 6, steps, actions))
  ok("conninfo", mt.conninfo(conn, "client.example.org", "192.0.2.10"))
  ok("helo", mt.helo(conn, "client.example.org"))
  if qid then mt.macro(conn, SMFIC_MAIL, "i", "Q" .. label) end
  ok("mailfrom", mt.mailfrom(conn, "<sender@example.org>"))
  ok("rcptto", mt.rcptto(conn, "<alice@example.test>"))
  ok("from", mt.header(conn, "From", "Sender <sender@example.org>"))
  ok("to", mt.header(conn, "To", "alice@example.test"))
  ok("subject", mt.header(conn, "Subject", "Case " .. label))
  ok("message-id", mt.header(conn, "Message-ID", "<" .. label .. "MID@example.org>"))
  ok("mime", mt.header(conn, "MIME-Version", "1.0"))
  if attach then
    ok("ctype", mt.header(conn, "Content-Type", "multipart/mixed; boundary=b"))
  else
    ok("ctype", mt.header(conn, "Content-Type", "text/plain; charset=us-ascii"))
  end
  ok("eoh", mt.eoh(conn))
  ok("body", mt.bodystring(conn, body))
  ok("eom", mt.eom(conn))
  mt.echo("RESULT " .. label .. " reply=" .. name(mt.getreply(conn))
    .. " header=" .. tostring(mt.eom_check(conn, MT_HDRADD, "X-Postern-Verdict"))
    .. " hold=" .. tostring(mt.eom_check(conn, MT_QUARANTINE)))
  mt.disconnect(conn)
end
local clean = "Hi Alice,\r\n\r\nLunch on Thursday at noon?\r\n\r\nSam\r\n"
local exe = "--b\r\nContent-Type: text/plain\r\n\r\nThe invoice is attached.\r\n--b\r\n"
  .. "Content-Type: application/octet-stream; name=invoice.exe\r\n"
  .. "Content-Disposition: attachment; filename=invoice.exe\r\nContent-Transfer-Encoding: base64\r\n\r\n"
  .. "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACAAAAA\r\n--b--\r\n"
"#,
    )
    .replace("PORT", &port.to_string());
    for c in cases {
        s.push_str(&format!(
            "run(\"{}\", {}, {}, {}, {}, {})\n",
            c.label,
            c.steps,
            c.actions,
            c.queue_id,
            if c.exe { "exe" } else { "clean" },
            c.exe
        ));
    }
    s
}

/// `RESULT label reply=… header=… hold=…` lines by label.
fn results(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .filter_map(|l| l.split_once(' '))
        .map(|(label, rest)| (label.to_string(), rest.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miltertest_with_full_and_reduced_negotiation() {
    let Ok(bin) = which("miltertest") else {
        panic!("miltertest is not installed: run `make stack` as root (scripts/peers-setup.sh installs it)");
    };
    let dir = tempfile::tempdir().unwrap();
    let store = crate::common::harness::store_at(&dir.path().join("db"));
    let bound = postern::milter::bind(&MilterListen::Inet("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let port = bound.local_addr().unwrap().port();
    let m = Arc::new(Milter {
        live: Arc::new(LiveDecider::new(crate::common::local_pipeline(InputOptions::default()))),
        store,
        events: tokio::sync::broadcast::channel(64).0,
        settings: MilterSettings::default(),
        max_message_bytes: 10 * 1024 * 1024,
        eml_dir: None,
    });
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(postern::milter::serve(bound, m, stop.clone()));
    let _stop = stop.drop_guard();

    let cases = [
        // Postfix-like: everything offered.
        Case {
            label: "full",
            steps: ALL_STEPS,
            actions: ALL_ACTIONS,
            queue_id: true,
            exe: false,
        },
        // Only headers may be added: before, the connection closed.
        Case {
            label: "headersonly",
            steps: ALL_STEPS,
            actions: ADD_HEADER,
            queue_id: true,
            exe: false,
        },
        // DATA and unknown commands cannot be skipped: they are answered.
        Case {
            label: "noskip",
            steps: 0xff,
            actions: ALL_ACTIONS,
            queue_id: true,
            exe: false,
        },
        // A quarantine verdict (an executable) is held where it can be...
        Case {
            label: "hold",
            steps: ALL_STEPS,
            actions: ALL_ACTIONS,
            queue_id: true,
            exe: true,
        },
        // ...refused where the MTA cannot hold, or gave no queue id to
        // release it by.
        Case {
            label: "cannothold",
            steps: ALL_STEPS,
            actions: ADD_HEADER,
            queue_id: true,
            exe: true,
        },
        Case {
            label: "noqueueid",
            steps: ALL_STEPS,
            actions: ALL_ACTIONS,
            queue_id: false,
            exe: true,
        },
    ];
    let path = dir.path().join("cases.lua");
    std::fs::write(&path, script(port, &cases)).unwrap();
    let out = tokio::process::Command::new(bin).arg("-s").arg(&path).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "miltertest failed:\n{stdout}\n{stderr}");
    let got = results(&stdout);
    let want = |label: &str, line: &str| {
        assert_eq!(got.get(label).map(String::as_str), Some(line), "{label}:\n{stdout}\n{stderr}");
    };
    want("full", "reply=accept header=true hold=false");
    want("headersonly", "reply=accept header=true hold=false");
    want("noskip", "reply=accept header=true hold=false");
    want("hold", "reply=accept header=true hold=true");
    want("cannothold", "reply=replycode header=false hold=false");
    want("noqueueid", "reply=replycode header=false hold=false");
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}
