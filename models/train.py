"""Trains Postern's two AI-tier models and exports them to ONNX.

    python3 models/train.py [--corpus ../shared/corpus] [--work /tmp/corpus] [--no-dga] [--feedback DIR]

Seeded and reproducible. The mail model trains on the TRAIN split of
models/corpus.py only (old and modern ham side by side), picks thresholds on
a held-out fifth of TRAIN and reports on VALIDATION per source. Writes
models/mail.onnx, models/dga.onnx, models/golden.json, models/metrics.json
and models/thresholds.json.
Needs: scikit-learn, skl2onnx, onnxruntime, numpy (see models/README.md).
"""

import argparse
import email
import email.errors
import email.header
import email.policy
import hashlib
import inspect
import html.parser
import json
import os
import random
import sys
import tarfile

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
from features import DGA_DIM, MAIL_DIM, dga_features, fnv1a, mail_indices, mail_vector, tokens  # noqa: E402

SEED = 20261122
CLASSES = ["ham", "spam", "phish"]
HERE = os.path.dirname(os.path.abspath(__file__))


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head", "title"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head", "title") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


# Fewer tokens than this in the plain parts, and more in the HTML: the
# plain part is a stub and the HTML's visible text is read instead
# (app/src/scan/scanners/ai.rs, STUB_TOKENS).
STUB_TOKENS = 20


def subject_and_body(raw: bytes):
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    try:
        subject = str(email.header.make_header(email.header.decode_header(msg.get("Subject", "") or "")))
    except (LookupError, UnicodeError, email.errors.HeaderParseError):
        subject = str(msg.get("Subject", "") or "")
    plain, htmls = [], []
    for part in msg.walk():
        ctype = part.get_content_type()
        if part.get_content_maintype() == "multipart" or part.get_filename():
            continue
        if ctype not in ("text/plain", "text/html"):
            continue
        payload = part.get_payload(decode=True) or b""
        try:
            text = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
        except LookupError:  # an unknown charset name in the header
            text = payload.decode("latin-1")
        (plain if ctype == "text/plain" else htmls).append(text)
    plain_text = "\n".join(plain)
    if not htmls:
        return subject, plain_text
    n_plain = len(tokens(plain_text))
    if plain and n_plain >= STUB_TOKENS:
        return subject, plain_text
    p = _Text()
    try:
        p.feed("\n".join(htmls))
    except Exception:  # malformed HTML: keep what was read
        pass
    html_text = " ".join(p.parts)
    # A plain part that is only a stub ("View this email in your browser")
    # says nothing about the mail; the HTML part is the message.
    if plain and len(tokens(html_text)) <= n_plain:
        return subject, plain_text
    return subject, html_text


def extract(corpus_dir, work):
    for name in ("domains.tar.xz",):
        marker = os.path.join(work, name + ".done")
        if not os.path.exists(marker):
            print(f"extracting {name}", flush=True)
            with tarfile.open(os.path.join(corpus_dir, name)) as t:
                t.extractall(work, filter="data")
            open(marker, "w").close()
    corpus.extract(corpus_dir, work)


def in_dev(key: str) -> bool:
    """The DGA model's own held-out split (domain names are not messages)."""
    return int(hashlib.sha256(f"{SEED}:{key}".encode()).hexdigest(), 16) % 5 == 0


def part(key: str) -> str:
    """validation (models/corpus.py: never trained on) or train."""
    return "validation" if corpus.in_validation(key) else "train"


def fold(key: str) -> int:
    """Cross-validation fold of a TRAIN message (independent of the split)."""
    return (corpus.key_hash(key) // 5) % FOLDS


FOLDS = 5


def mail_samples(work, trec_per_class, validation_cap, feedback=(), augment=()):
    """Messages used: every TRAIN message except TREC (capped per class, by
    hash), and VALIDATION capped per source for the metrics. Each feedback
    folder (`postern export-training`) adds the operator's own labelled
    mail, split the same way; each augment folder adds text that is not mail
    as received (see AUGMENT)."""
    groups = {}
    extra = [m for d in feedback for m in corpus.folder_messages(d)]
    extra += [m for d in augment for m in corpus.folder_messages(d, AUGMENT)]
    for m in corpus.messages(work) + extra:
        groups.setdefault((m.label, m.source, part(m.key) == "validation"), []).append(m)
    out = []
    for (label, source, val), msgs in sorted(groups.items()):
        cap = validation_cap if val else (trec_per_class if source == "trec07p" else None)
        out.extend(corpus.by_hash(msgs, cap))
    return out


def cached_rows(msgs, work):
    """Feature rows per key, cached across runs (features.py is slow)."""
    import pickle

    path = os.path.join(work, "mail-rows.pkl")
    cache = {}
    if os.path.exists(path):
        with open(path, "rb") as fh:
            cache = pickle.load(fh)
    with open(os.path.join(HERE, "features.py"), "rb") as fh:
        text = inspect.getsource(subject_and_body) + inspect.getsource(_Text) + str(STUB_TOKENS)
        fp = hashlib.sha256(fh.read() + repr(sorted(DROPPED_TOKENS)).encode() + text.encode()).hexdigest()
    if cache.get("__features__") != fp:
        cache = {"__features__": fp}
    todo = [m for m in msgs if m.key not in cache]
    for i, m in enumerate(todo):
        subject, body = subject_and_body(m.raw())
        cache[m.key] = mail_row(subject, body)
        if i % 2000 == 0:
            print(f"features: {i}/{len(todo)}", flush=True)
    if todo:
        with open(path, "wb") as fh:
            pickle.dump(cache, fh)
    return [cache[m.key] for m in msgs]


def matrix(rows, dim):
    data, ind, ptr = [], [], [0]
    for r in rows:
        for i, v in r:
            ind.append(i)
            data.append(v)
        ptr.append(len(ind))
    return csr_matrix((np.array(data, dtype=np.float32), np.array(ind), np.array(ptr)), shape=(len(rows), dim))


# Tokens the model must not learn from. phishing_pot replaced every
# recipient address with "phishing@pot", and 85% of its messages carry it in
# the text ("Dear phishing@pot", links with it as a parameter): a label leak
# that real phishing never has. Features involving these tokens are left out
# of the training rows (so their weights stay 0) while the row keeps the
# normalisation Postern computes over all of its features.
DROPPED_TOKENS = frozenset({"phishing", "pot"})


def mail_row(subject, body, drop=DROPPED_TOKENS):
    """The training row: features.mail_vector, minus features of `drop`."""
    idx, v = mail_vector(mail_indices(subject, body))
    if not drop:
        return [(i, v) for i in idx]
    toks = tokens(subject + "\n" + body)
    keep = set()
    for i, t in enumerate(toks):
        if t not in drop:
            keep.add(fnv1a(("w" + t).encode()) % MAIL_DIM)
        if i > 0 and t not in drop and toks[i - 1] not in drop:
            keep.add(fnv1a(("b" + toks[i - 1] + "_" + t).encode()) % MAIL_DIM)
    return [(i, v) for i in idx if i in keep]


def export(model, dim, path):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, dim]))],
        options={id(model): {"zipmap": False}},
        target_opset=17,
    )
    with open(path, "wb") as fh:
        fh.write(onx.SerializeToString())


def fired(p, th):
    """The tag the Rust scanner emits (app/src/scan/scanners/ai.rs)."""
    return "phish" if p[2] >= th["phish"] else ("spam" if p[1] >= th["spam"] else "ham")


def per_source(labels, sources, proba, th):
    """Per label × source: n, share with AI_PHISH, with AI_SPAM, with either,
    and score quantiles (to see whether a source sits near a threshold)."""
    out = {}
    for key in sorted(set(zip(labels, sources))):
        idx = [i for i, ls in enumerate(zip(labels, sources)) if ls == key]
        tags = [fired(proba[i], th) for i in idx]
        ph = np.array([proba[i][2] for i in idx])
        sp = np.array([proba[i][1] for i in idx])
        out[f"{key[0]}/{key[1]}"] = {
            "n": len(idx),
            "ai_phish": round(tags.count("phish") / len(idx), 4),
            "ai_spam": round(tags.count("spam") / len(idx), 4),
            "either": round((len(idx) - tags.count("ham")) / len(idx), 4),
            "p_phish_q50_q99_max": [round(float(np.quantile(ph, q)), 4) for q in (0.5, 0.99, 1.0)],
            "p_spam_q50_q99_max": [round(float(np.quantile(sp, q)), 4) for q in (0.5, 0.99, 1.0)],
        }
    return out


# Share of each ham source the tier alone may tag (out-of-fold on TRAIN):
# AI_PHISH quarantines by itself (goal: <= 0.1% ham quarantined), AI_SPAM
# flags (goal: <= 1% ham flagged, shared with every other check).
PHISH_HAM_QUANTILE = 0.999
SPAM_HAM_QUANTILE = 0.995


# A source with fewer than 1 / (1 - quantile) messages has no such
# quantile: its maximum stands in, which understates the tail it was drawn
# from (19 newsletters decide the phishing threshold). The threshold then
# clears that maximum by this margin in log-odds.
SMALL_SOURCE_MARGIN = 0.5


def _logit(p):
    p = min(max(p, 1e-9), 1 - 1e-9)
    return float(np.log(p / (1 - p)))


# Sources of this kind (`--augment DIR`) are trained on but never pick a
# threshold: they are e-mail templates with their placeholders stripped, so
# their scores say nothing about the tail of real mail.
AUGMENT = "augment"


def is_augment(source: str) -> bool:
    return source.startswith(AUGMENT + "-")


def thresholds(proba, labels, sources):
    """Per class: above the given quantile of that class's probability on
    every ham source (the worst source decides), never below 0.5; above a
    small source's maximum by SMALL_SOURCE_MARGIN."""
    th = {}
    for c, q in (("phish", PHISH_HAM_QUANTILE), ("spam", SPAM_HAM_QUANTILE)):
        k = CLASSES.index(c)
        worst = 0.0
        for src in sorted(set(s for l, s in zip(labels, sources) if l == "ham" and not is_augment(s))):
            v = proba[[l == "ham" and s == src for l, s in zip(labels, sources)], k]
            cut = float(np.quantile(v, q, method="higher"))
            if len(v) * (1 - q) < 1:
                cut = float(1 / (1 + np.exp(-(_logit(float(v.max())) + SMALL_SOURCE_MARGIN))))
            worst = max(worst, cut)
        th[c] = round(max(0.5, worst + 1e-3), 4)
    return th


def source_weights(labels, sources, augment_weight=1.0):
    """Each label × source has the same total weight, so the large old sets
    (SpamAssassin, TREC) do not drown the small modern ham sources (the model
    must not learn "old mail is ham"), and each class has the same total
    weight (balanced classes). An augment source weighs `augment_weight`
    of a source."""
    n = {}
    for ls in zip(labels, sources):
        n[ls] = n.get(ls, 0) + 1
    w = np.array([(augment_weight if is_augment(s) else 1.0) / n[(l, s)] for l, s in zip(labels, sources)])
    for c in CLASSES:
        m = np.array([l == c for l in labels])
        w[m] *= len(labels) / len(CLASSES) / w[m].sum()
    return w


SWEEP = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98)


def sweep(proba, labels, sources):
    """Share of each label × source at or above each probability cut, for
    P(phish) and P(spam): what another threshold would cost or gain. For the
    record only; the thresholds are not picked from it."""
    out = {}
    for c in ("phish", "spam"):
        k = CLASSES.index(c)
        for key in sorted(set(zip(labels, sources))):
            v = proba[[ls == key for ls in zip(labels, sources)], k]
            out.setdefault(c, {})[f"{key[0]}/{key[1]}"] = {f"{t:g}": round(float((v >= t).mean()), 4) for t in SWEEP}
    return out


def calibration_error(proba, y, bins=10):
    """Expected calibration error of the top-class probability."""
    conf = proba.max(axis=1)
    hit = proba.argmax(axis=1) == y
    err = 0.0
    for b in range(bins):
        m = (conf > b / bins) & (conf <= (b + 1) / bins)
        if m.any():
            err += m.mean() * abs(conf[m].mean() - hit[m].mean())
    return round(float(err), 4)


def fit_model(X, y, labels, sources, c, augment_weight=1.0):
    model = LogisticRegression(C=c, max_iter=600, random_state=SEED)
    model.fit(X, y, sample_weight=source_weights(labels, sources, augment_weight))
    return model


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_calibration(logits, y):
    """Temperature and per-class bias (z/T + b, b[ham] = 0) minimising the
    log loss of out-of-fold scores: the model's probabilities, which the
    balanced source weights distort, become calibrated to the TRAIN mix.
    Monotone per message in T, so it folds into the exported weights."""
    from scipy.optimize import minimize

    def nll(params):
        t, b = np.exp(params[0]), np.array([0.0, params[1], params[2]])
        p = softmax(logits / t + b)
        return -np.log(p[np.arange(len(y)), y] + 1e-12).mean()

    r = minimize(nll, np.zeros(3), method="Nelder-Mead", options={"maxiter": 2000, "xatol": 1e-5, "fatol": 1e-8})
    return float(np.exp(r.x[0])), np.array([0.0, r.x[1], r.x[2]])


def apply_calibration(model, t, b):
    """Folds z/T + b into the logistic regression's own weights."""
    model.coef_ = model.coef_ / t
    model.intercept_ = model.intercept_ / t + b


def train_mail(work, args):
    msgs = mail_samples(work, args.trec_per_class, args.validation_cap, args.feedback, args.augment)
    rows = cached_rows(msgs, work)
    X = matrix(rows, MAIL_DIM)
    labels = [m.label for m in msgs]
    sources = [m.source for m in msgs]
    parts = np.array([part(m.key) for m in msgs])
    folds = np.array([fold(m.key) for m in msgs])
    y = np.array([CLASSES.index(l) for l in labels])
    tr, val = parts == "train", parts == "validation"
    print(f"mail: {int(tr.sum())} train, {int(val.sum())} validation", flush=True)
    sel = lambda mask, v: [x for x, m in zip(v, mask) if m]  # noqa: E731
    # Out-of-fold scores for every TRAIN message: thresholds are picked on
    # scores the model gave mail it was not fitted on, with every TRAIN ham
    # source (including the small modern ones) in full.
    oof = np.zeros((len(msgs), len(CLASSES)))
    for k in range(FOLDS):
        fit, held = tr & (folds != k), tr & (folds == k)
        m = fit_model(X[fit], y[fit], sel(fit, labels), sel(fit, sources), args.c, args.augment_weight)
        oof[held] = m.decision_function(X[held])
        print(f"fold {k}: fitted", flush=True)
    ol, os_ = sel(tr, labels), sel(tr, sources)
    raw_ece = calibration_error(softmax(oof[tr]), y[tr])
    t, b = fit_calibration(oof[tr], y[tr])
    po = softmax(oof[tr] / t + b)
    th = thresholds(po, ol, os_)
    # Out-of-fold probabilities, for choosing the bands set in code
    # (app/src/scan/ai/mod.rs) on the same footing as the thresholds.
    np.savez_compressed(
        os.path.join(work, "mail-oof.npz"), proba=po, labels=np.array(ol), sources=np.array(os_),
        keys=np.array([msg.key for msg, in_train in zip(msgs, tr) if in_train]),
    )
    model = fit_model(X[tr], y[tr], ol, os_, args.c, args.augment_weight)
    apply_calibration(model, t, b)
    pv = model.predict_proba(X[val])
    vl, vs = sel(val, labels), sel(val, sources)
    metrics = {
        "split": "models/corpus.py: VALIDATION = int(sha256(key)[:8], 16) % 5 == 0, reported here and never trained on; "
        f"thresholds from {FOLDS}-fold out-of-fold scores on TRAIN",
        "n": {"train": int(tr.sum()), "validation": int(val.sum())},
        "calibration": {"temperature": round(t, 4), "bias": [round(float(x), 4) for x in b]},
        "expected_calibration_error": {
            "train_out_of_fold_uncalibrated": raw_ece,
            "train_out_of_fold": calibration_error(po, y[tr]),
            "validation": calibration_error(pv, y[val]),
        },
        "thresholds": th,
        "validation_per_source": per_source(vl, vs, pv, th),
        "validation_sweep": sweep(pv, vl, vs),
        "train_out_of_fold_per_source": per_source(ol, os_, po, th),
    }
    export(model, MAIL_DIM, os.path.join(HERE, "mail.onnx"))
    return model, th, metrics


def registrable_label(domain: str) -> str:
    d = domain.strip().lower().rstrip(".")
    if d.startswith("www."):
        d = d[4:]
    return d.split(".")[0]


def train_dga(work, args):
    rng = random.Random(SEED)
    base = os.path.join(work, "domains")
    bad = []
    with open(os.path.join(base, "dga-baderj.tsv")) as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 2:
                bad.append(parts[1])
    bad = rng.sample(bad, min(args.dga_per_class, len(bad)))
    good = set()
    for f in ("opendns-top-domains.txt", "opendns-random-domains.txt", "moz_top500.txt", "tier1_critical.txt", "tier2_high_trust.txt"):
        with open(os.path.join(base, "benign", f)) as fh:
            good.update(l.strip() for l in fh if l.strip() and not l.startswith("#"))
    with open(os.path.join(base, "benign", "ham_mail_domains.tsv")) as fh:
        good.update(l.split("\t")[0] for l in fh if l.strip())
    good = rng.sample(sorted(good), min(args.dga_per_class, len(good)))
    items = [(registrable_label(d), 0) for d in good] + [(registrable_label(d), 1) for d in bad]
    items = [(l, y) for l, y in items if len(l) >= 2]
    X = matrix([dga_features(l) for l, _ in items], DGA_DIM)
    y = np.array([v for _, v in items])
    dev = np.array([in_dev("dga:" + l) for l, _ in items])  # the DGA model's own split
    model = LogisticRegression(C=4.0, max_iter=400, random_state=SEED)
    model.fit(X[~dev], y[~dev])
    p = model.predict_proba(X[dev])[:, 1]
    yd = y[dev]
    benign = p[yd == 0]
    th = round(float(max(0.5, np.quantile(benign, 0.995) + 1e-3)), 4)
    acc = float(((p >= th) == (yd == 1)).mean())
    metrics = {
        "n_dev": int(dev.sum()),
        "threshold": th,
        "accuracy": round(acc, 4),
        "benign_false_positive_rate": round(float((benign >= th).mean()), 5),
        "dga_recall": round(float((p[yd == 1] >= th).mean()), 4),
    }
    export(model, DGA_DIM, os.path.join(HERE, "dga.onnx"))
    return model, th, metrics


GOLDEN_MAIL = [
    ("Your account has been suspended", "Dear customer, verify your password immediately at the secure login page or your mailbox will be closed."),
    ("Lunch on Thursday?", "Hi Anna, are we still on for lunch on Thursday at noon? Bring the draft of the report."),
    ("CHEAP MEDS!!! 90% off", "Buy viagra cialis online, no prescription needed, best prices, unsubscribe here."),
    ("Überweisung – Rückfrage", "Grüße aus Zürich: bitte prüfen Sie die Überweisung. Αθήνα και Москва 東京."),
    ("Your parcel is waiting", "Track it at https://track.example.com/p?id=ab12cd or www.Example.org/help (HTTP://X.Y), not xhttps://z."),
    ("", ""),
]
GOLDEN_DGA = ["google", "wikipedia", "xjw8sdkfqpz", "aagyestnessbiophysicalohax", "postern", "qwxzkjhgtr"]


def golden(mail_model, dga_model):
    out = {"mail": [], "dga": []}
    for subject, body in GOLDEN_MAIL:
        idx = mail_indices(subject, body)
        X = matrix([mail_row(subject, body, drop=frozenset())], MAIL_DIM)
        p = mail_model.predict_proba(X)[0]
        out["mail"].append({"subject": subject, "body": body, "indices": idx, "scores": {c: round(float(p[i]), 6) for i, c in enumerate(CLASSES)}})
    if dga_model is None:  # --no-dga: the model is unchanged, so are its vectors
        with open(os.path.join(HERE, "golden.json")) as fh:
            out["dga"] = json.load(fh)["dga"]
    for label in GOLDEN_DGA if dga_model is not None else []:
        f = dga_features(label)
        p = dga_model.predict_proba(matrix([f], DGA_DIM))[0][1]
        out["dga"].append({"label": label, "features": [[i, round(v, 7)] for i, v in f], "score": round(float(p), 6)})
    with open(os.path.join(HERE, "golden.json"), "w") as fh:
        json.dump(out, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(HERE, "..", "..", "shared", "corpus"))
    ap.add_argument("--work", default="/tmp/corpus")
    ap.add_argument("--trec-per-class", type=int, default=8000, help="TREC messages per class from TRAIN")
    ap.add_argument("--validation-cap", type=int, default=1500, help="VALIDATION messages per source for the metrics")
    ap.add_argument("--c", type=float, default=4.0, help="inverse regularisation of the mail model")
    ap.add_argument("--dga-per-class", type=int, default=60000)
    ap.add_argument("--no-dga", action="store_true", help="keep dga.onnx, its threshold, metrics and golden vectors")
    ap.add_argument(
        "--feedback",
        action="append",
        default=[],
        metavar="DIR",
        help="also train on a labelled tree from `postern export-training` (repeatable)",
    )
    ap.add_argument(
        "--augment",
        action="append",
        default=[],
        metavar="DIR",
        help="also train on a labelled tree of text that is not mail as received (templates); never picks a threshold",
    )
    ap.add_argument("--augment-weight", type=float, default=0.5, help="an augment source's weight, in sources (the shipped model: 0.5)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    extract(args.corpus, args.work)
    mail_model, mail_th, mail_metrics = train_mail(args.work, args)
    if args.no_dga:
        with open(os.path.join(HERE, "thresholds.json")) as fh:
            dga_th = json.load(fh)["dga"]
        with open(os.path.join(HERE, "metrics.json")) as fh:
            dga_metrics = json.load(fh)["dga"]
        dga_model = None
    else:
        dga_model, dga_th, dga_metrics = train_dga(args.work, args)
    golden(mail_model, dga_model)
    with open(os.path.join(HERE, "thresholds.json"), "w") as fh:
        json.dump({"phish": mail_th["phish"], "spam": mail_th["spam"], "dga": dga_th}, fh, indent=1)
        fh.write("\n")
    with open(os.path.join(HERE, "metrics.json"), "w") as fh:
        json.dump({"seed": SEED, "mail": mail_metrics, "dga": dga_metrics}, fh, indent=1)
        fh.write("\n")
    print(json.dumps({"thresholds": {**mail_th, "dga": dga_th}, "mail": mail_metrics, "dga": dga_metrics}, indent=1))


if __name__ == "__main__":
    main()
