"""Feature extraction shared by training and by Postern (app/src/scan/ai/features.rs).

The two implementations must agree bit for bit; models/golden.json pins
input -> indices -> scores and both sides test against it.

Mail text: lowercase, tokens are maximal runs of alphabetic characters
(digits and punctuation separate tokens, so dates and numbers never become
features), 2..=24 characters, at most 3000 tokens; links written out in
the text (http://, https://, www.) are skipped. Features are unigrams
"w<tok>" and bigrams "b<tok1>_<tok2>", hashed with 32-bit FNV-1a into
2**18 buckets, binary, L2-normalised.

Domains: the registrable label ("example" for example.co.uk), lowercased,
wrapped as "^label$"; character 2-, 3- and 4-grams "n<gram>" hashed into
2**16 buckets, counted, L2-normalised.
"""

import math

MAIL_DIM = 1 << 18
DGA_DIM = 1 << 16
MAX_TOKENS = 3000
MAX_TEXT_CHARS = 20000


def fnv1a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


URL_PREFIXES = ("http://", "https://", "www.")
# A link written out in the text ends at the first character that cannot be
# part of one: whitespace, anything outside printable ASCII, or a delimiter.
URL_END = set('<>"\'()[]{}|\\^`')


def url_end(text: str, i: int) -> int:
    """Where a link written out in the text starts at `i` ends, or `i` when
    none starts there. A link's host and path are tracking codes, hashes
    and a sender's own names: noise that lets a text model learn who sent a
    corpus instead of what the mail says (the link checks read links)."""
    if i > 0 and (text[i - 1].isalpha() or "0" <= text[i - 1] <= "9"):
        return i
    if not text.startswith(URL_PREFIXES, i):
        return i
    j = i
    while j < len(text) and 33 <= ord(text[j]) <= 126 and text[j] not in URL_END:
        j += 1
    return j


def tokens(text: str):
    """Lowercased runs of letters, 2..24 long, at most MAX_TOKENS, from the
    first MAX_TEXT_CHARS characters; links written out in the text are
    skipped (url_end)."""
    out = []
    cur = []
    text = text[:MAX_TEXT_CHARS].lower()
    i = 0
    while i < len(text):
        ch = text[i]
        if not cur and ch in "hw":
            j = url_end(text, i)
            if j > i:
                i = j
                continue
        if ch.isalpha():
            cur.append(ch)
            i += 1
            continue
        if cur:
            if 2 <= len(cur) <= 24:
                out.append("".join(cur))
                if len(out) >= MAX_TOKENS:
                    return out
            cur = []
        i += 1
    if cur and 2 <= len(cur) <= 24 and len(out) < MAX_TOKENS:
        out.append("".join(cur))
    return out


def mail_indices(subject: str, body: str):
    toks = tokens(subject + "\n" + body)
    feats = set()
    for i, t in enumerate(toks):
        feats.add(fnv1a(("w" + t).encode()) % MAIL_DIM)
        if i > 0:
            feats.add(fnv1a(("b" + toks[i - 1] + "_" + t).encode()) % MAIL_DIM)
    return sorted(feats)


def mail_vector(indices):
    """Sparse (indices, value) with the L2 normalisation applied."""
    if not indices:
        return [], 0.0
    return indices, 1.0 / math.sqrt(len(indices))


def dga_features(label: str):
    s = "^" + label.lower() + "$"
    chars = list(s)
    counts = {}
    for n in (2, 3, 4):
        for i in range(len(chars) - n + 1):
            idx = fnv1a(("n" + "".join(chars[i : i + n])).encode()) % DGA_DIM
            counts[idx] = counts.get(idx, 0) + 1
    norm = math.sqrt(sum(c * c for c in counts.values())) or 1.0
    return sorted((i, c / norm) for i, c in counts.items())
