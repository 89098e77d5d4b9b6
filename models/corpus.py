"""The labelled corpus and its fixed TRAIN/VALIDATION split, shared by
models/train.py (trains on TRAIN) and scripts/quality.py (reports on
VALIDATION). Python standard library only.

A message's key is its member path inside its tarball
(`train/spam/sa-spam-1-00500.….txt`, `modern-train/list-cake/00001.eml`,
`trec07p_half/data/inmail.9999`); a message inside an mbox is
`train/extra/nazario-phishing0.mbox#N` (N counts from 0). The message is in
VALIDATION iff int(sha256(key)[:8], 16) % 5 == 0, everything else is TRAIN.

Sources (label/source): ham/sa-easy-ham, ham/sa-hard-ham, spam/sa-spam,
phish/phishing_pot (train/phish), phish/nazario (the mbox), ham/trec07p and
spam/trec07p (labels from trec07p_half/full/index), and ham/<folder> for
every folder of modern-train/.
"""

import hashlib
import mailbox
import os
import tarfile

TARBALLS = ("mail-train", "modern-ham-train", "trec07p-half")


def key_hash(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


def in_validation(key: str) -> bool:
    return key_hash(key) % 5 == 0


def extract(corpus: str, work: str):
    """Extracts each tarball once into WORK/<name>/ (marker WORK/.<name>.done)."""
    os.makedirs(work, exist_ok=True)
    for name in TARBALLS:
        marker = os.path.join(work, f".{name}.done")
        if os.path.exists(marker):
            continue
        print(f"extracting {name}.tar.xz", flush=True)
        dest = os.path.join(work, name)
        os.makedirs(dest, exist_ok=True)
        with tarfile.open(os.path.join(corpus, f"{name}.tar.xz")) as t:
            t.extractall(dest, filter="data")
        open(marker, "w").close()


class Message:
    """One labelled message; `raw()` reads it on demand."""

    __slots__ = ("label", "source", "key", "_path", "_raw")

    def __init__(self, label, source, key, path=None, raw=None):
        self.label, self.source, self.key, self._path, self._raw = label, source, key, path, raw

    def raw(self) -> bytes:
        if self._raw is not None:
            return self._raw
        with open(self._path, "rb") as fh:
            return fh.read()


def _sa_source(name: str) -> str:
    for prefix in ("sa-easy-ham", "sa-hard-ham", "sa-spam"):
        if name.startswith(prefix):
            return prefix
    return "spamassassin"


def messages(work: str):
    """Every labelled message of the extracted corpus, in a fixed order."""
    out = []
    train = os.path.join(work, "mail-train", "train")
    for label in ("ham", "spam", "phish"):
        folder = os.path.join(train, label)
        for f in sorted(os.listdir(folder)):
            src = "phishing_pot" if label == "phish" else _sa_source(f)
            out.append(Message(label, src, f"train/{label}/{f}", path=os.path.join(folder, f)))
    mbox = mailbox.mbox(os.path.join(train, "extra", "nazario-phishing0.mbox"))
    for i, m in enumerate(mbox):
        out.append(Message("phish", "nazario", f"train/extra/nazario-phishing0.mbox#{i}", raw=m.as_bytes()))
    trec = os.path.join(work, "trec07p-half", "trec07p_half")
    with open(os.path.join(trec, "full", "index")) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) != 2 or parts[0] not in ("ham", "spam"):
                continue
            rel = os.path.normpath(os.path.join("full", parts[1]))
            out.append(Message(parts[0], "trec07p", f"trec07p_half/{rel}", path=os.path.join(trec, rel)))
    modern = os.path.join(work, "modern-ham-train", "modern-train")
    for src in sorted(os.listdir(modern)):
        d = os.path.join(modern, src)
        if not os.path.isdir(d):
            continue
        for root, dirs, files in os.walk(d):
            dirs.sort()
            for f in sorted(files):
                p = os.path.join(root, f)
                out.append(Message("ham", src, os.path.relpath(p, os.path.join(work, "modern-ham-train")), path=p))
    return out


FEEDBACK_LABELS = ("ham", "spam", "phish")


def folder_messages(root: str, kind: str = "feedback"):
    """A labelled folder tree as `postern export-training` writes it (and
    `postern simulate` reads it): ROOT/<label>/<source>/<file>, label one of
    ham, spam, phish (other folders and ROOT/labels.csv are ignored). The
    source becomes `<kind>-<source>`, the key `<kind>/<label>/<source>/<file>`,
    so these messages get the same TRAIN/VALIDATION split as the corpus."""
    out = []
    for label in FEEDBACK_LABELS:
        top = os.path.join(root, label)
        if not os.path.isdir(top):
            continue
        for current, dirs, files in os.walk(top):
            dirs.sort()
            rel = os.path.relpath(current, top)
            src = "-" if rel == "." else rel.split(os.sep)[0]
            for f in sorted(files):
                p = os.path.join(current, f)
                key = f"{kind}/" + os.path.relpath(p, root).replace(os.sep, "/")
                out.append(Message(label, f"{kind}-{src}", key, path=p))
    return out


def by_hash(msgs, cap=None):
    """Deterministic sample: ordered by the key's full sha256, first `cap`."""
    ordered = sorted(msgs, key=lambda m: hashlib.sha256(m.key.encode()).hexdigest())
    return ordered if cap is None else ordered[:cap]
