use super::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;

fn append(p: &Path, s: &str) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap()
        .write_all(s.as_bytes())
        .unwrap();
}

/// Reads until nothing more comes at once; returns every line and the cursor.
fn drain(p: &Path, c: &mut Option<Cursor>, max: usize) -> (Vec<String>, Vec<String>) {
    let (mut lines, mut notes) = (Vec::new(), Vec::new());
    for _ in 0..10_000 {
        let b = read(p, c.as_ref(), max).unwrap();
        lines.extend(b.lines);
        notes.extend(b.note);
        *c = b.cursor;
        if !b.more {
            break;
        }
    }
    (lines, notes)
}

fn line(n: usize) -> String {
    format!("Dec  2 04:00:{:02} mx postfix/smtpd[{n}]: line {n}\n", n % 60)
}

#[test]
fn starts_at_the_end_then_returns_only_whole_new_lines() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("mail.log");
    append(&p, &line(1));
    let mut c = None;
    assert!(drain(&p, &mut c, 4096).0.is_empty(), "history before the first look is not read");
    append(&p, &line(2));
    append(&p, "Dec  2 04:00:03 mx postfix/smtpd[3]: half");
    assert_eq!(drain(&p, &mut c, 4096).0, vec![line(2).trim_end()]);
    append(&p, " a line\n");
    assert_eq!(drain(&p, &mut c, 4096).0, vec!["Dec  2 04:00:03 mx postfix/smtpd[3]: half a line"]);
    assert!(drain(&p, &mut c, 4096).0.is_empty());
}

#[test]
fn a_renamed_file_is_finished_before_the_new_one() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("mail.log");
    append(&p, &line(1));
    let mut c = None;
    drain(&p, &mut c, 4096);
    append(&p, &line(2));
    std::fs::rename(&p, d.path().join("mail.log.1")).unwrap();
    append(&p, &line(3));
    let (lines, notes) = drain(&p, &mut c, 4096);
    assert_eq!(lines, vec![line(2).trim_end(), line(3).trim_end()]);
    assert!(notes.iter().any(|n| n.contains("mail.log.1")), "{notes:?}");
}

#[test]
fn a_rotated_file_already_compressed_is_read_from_the_gzip() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("mail.log");
    let first: String = (0..20).map(line).collect();
    append(&p, &first);
    let mut c = None;
    drain(&p, &mut c, 4096);
    append(&p, &line(20));
    append(&p, &line(21));
    // logrotate without delaycompress: rename, gzip, remove, create.
    let text = std::fs::read(&p).unwrap();
    let mut z = GzEncoder::new(File::create(d.path().join("mail.log.1.gz")).unwrap(), Compression::default());
    z.write_all(&text).unwrap();
    z.finish().unwrap();
    std::fs::remove_file(&p).unwrap();
    append(&p, &line(22));
    let (lines, notes) = drain(&p, &mut c, 4096);
    assert_eq!(lines, vec![line(20).trim_end(), line(21).trim_end(), line(22).trim_end()]);
    assert!(notes.iter().any(|n| n.contains("mail.log.1.gz")), "{notes:?}");
}

#[test]
fn copytruncate_and_plain_truncation_restart_from_the_top() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("mail.log");
    append(&p, &(0..10).map(line).collect::<String>());
    let mut c = None;
    drain(&p, &mut c, 4096);
    std::fs::copy(&p, d.path().join("mail.log.1")).unwrap();
    File::create(&p).unwrap(); // truncate, same inode
    append(&p, &line(50));
    let (lines, notes) = drain(&p, &mut c, 4096);
    assert_eq!(lines, vec![line(50).trim_end()]);
    assert!(notes[0].contains("truncated"), "{notes:?}");
    // Truncated and grown past the old offset before the next look: the
    // first bytes differ, so this is still seen.
    File::create(&p).unwrap();
    let big: String = (100..140).map(line).collect();
    append(&p, &big);
    assert_eq!(drain(&p, &mut c, 1 << 20).0.len(), 40);
}

#[test]
fn reads_are_bounded_and_lose_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("mail.log");
    append(&p, "");
    let mut c = None;
    drain(&p, &mut c, 4096);
    let all: String = (0..1000).map(line).collect();
    append(&p, &all);
    let mut got = Vec::new();
    let mut reads = 0;
    loop {
        let b = read(&p, c.as_ref(), 1024).unwrap();
        reads += 1;
        assert!(b.lines.iter().map(|l| l.len() + 1).sum::<usize>() <= 1024);
        got.extend(b.lines);
        c = b.cursor;
        if !b.more {
            break;
        }
    }
    assert_eq!(got.len(), 1000);
    assert!(reads >= all.len() / 1024, "{reads} reads");
    // One line longer than the bound is cut, never a stall.
    append(&p, &format!("{}\n", "x".repeat(5000)));
    let (lines, _) = drain(&p, &mut c, 1024);
    assert_eq!(lines.iter().map(String::len).sum::<usize>(), 5000);
}

#[test]
fn a_missing_file_keeps_the_cursor_until_it_returns() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("mail.log");
    append(&p, &line(1));
    let mut c = None;
    drain(&p, &mut c, 4096);
    append(&p, &line(2));
    std::fs::rename(&p, d.path().join("mail.log.1")).unwrap();
    let (lines, _) = drain(&p, &mut c, 4096);
    assert_eq!(lines, vec![line(2).trim_end()]);
    assert!(c.is_some());
    assert!(drain(&p, &mut c, 4096).0.is_empty(), "the old file's rest is not read twice");
    append(&p, &line(3));
    assert_eq!(drain(&p, &mut c, 4096).0, vec![line(3).trim_end()]);
}
