"""Feature extraction shared by training and by Postern (app/src/scan/ai/features.rs).

The two implementations must agree bit for bit; models/golden.json pins
input -> indices -> scores and both sides test against it.

Mail text: lowercase, tokens are maximal runs of alphabetic characters
(digits and punctuation separate tokens, so dates and numbers never become
features), 2..=24 characters, at most 3000 tokens. Features are unigrams
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


def tokens(text: str):
    out = []
    cur = []
    for ch in text[:MAX_TEXT_CHARS].lower():
        if ch.isalpha():
            cur.append(ch)
            continue
        if cur:
            if 2 <= len(cur) <= 24:
                out.append("".join(cur))
                if len(out) >= MAX_TOKENS:
                    return out
            cur = []
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
