"""Builds the augment tree's second source, `augment-locales`, for
`train.py --augment DIR`: the translated text of open-source products'
customer e-mails, as legitimate mail written in many languages.

Why: the corpus's ham is almost all English, while its phishing is not
(phishing_pot holds German, French, Spanish, Portuguese, Italian, Dutch ...
lures). A text model learns the language as evidence: written for this
check and never trained on, plain order, dispatch, billing and appointment
notices from small senders in German, French and Spanish scored
P(phish) 0.97-0.99 and were quarantined, their English twins passed.
These are the same notices in the products' shipped translations: order,
shipment, refund and account mails of shop software (Spree, Solidus), and
the account mails (confirm, reset, changed) of Devise and django-allauth.

Each repository is read at the commit pinned below from a directory of git
clones named `<owner>+<name>/repo` (as templates.py). Rails locale files
(YAML) give one message per mail: the strings under one `<x>_mailer`
entry; gettext catalogues (django-allauth, read with polib) give one per
e-mail template the strings come from. Placeholders and markup are
stripped; texts of under 12 words are left out, duplicates kept once.
Output: DIR/ham/locales/<owner>+<name>-<lang>-NNNNN.eml, one text/plain
message each. None of this text is in this repository; the licences are
the repositories' (MIT for devise-i18n and django-allauth, BSD 3-clause for spree_i18n and solidus_i18n; see models/README.md).

    python3 models/locales.py --mirror /path/to/clones --out /tmp/aug
"""

import os
import re
import sys

import polib
import yaml

from templates import cli, git, gitdir_of, text_of, write_once

REPOS = {
    # repository: (commit, folder of the catalogues, kind)
    "spree-contrib/spree_i18n": ("38ac26569130f3e872467c47898cdf3f698dd844", "config/locales/", "rails"),
    "solidusio/solidus_i18n": ("a262c6174aa6b913c4502e758cae46dd1f1df8ba", "config/locales/", "rails"),
    "tigrish/devise-i18n": ("6bc267898c3873b82a7463925160d5dbf85ee04d", "rails/locales/", "rails"),
    "pennersr/django-allauth": ("20f4bded2fd2e12d0d172d1321626a94c17ac97e", "allauth/locale/", "gettext"),
}
PLACEHOLDER = re.compile(r"%\{[^}]*\}|%\([^)]*\)[sd]|\{\{[^}]*\}\}|\{[^}]*\}|%[sd]")
MIN_WORDS = 12


def clean(s: str) -> str:
    s = PLACEHOLDER.sub(" ", s)
    if "<" in s:
        s = text_of("x.html", s)[1]
    return re.sub(r"\s+", " ", s).strip()


def leaves(node, path=()):
    """(path, string) of every string under a YAML node, in file order."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, path + (str(k),))
    elif isinstance(node, list):
        for v in node:
            yield from leaves(v, path)
    elif isinstance(node, str):
        yield path, node


def rails_mails(raw: bytes):
    """{(group): [(key, text)]} for one Rails locale file: a mail is the
    strings under a `*_mailer` / `mailer` entry, one level below it."""
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError:
        return "", {}
    if not isinstance(doc, dict) or len(doc) != 1:
        return "", {}
    (lang, tree), = doc.items()
    mails = {}
    for path, text in leaves(tree):
        idx = next((i for i, p in enumerate(path) if p == "mailer" or p.endswith("_mailer")), None)
        if idx is None:
            continue
        group = path[: idx + 2] if len(path) > idx + 2 else path[: idx + 1]
        mails.setdefault(group, []).append((path[-1], text))
    return str(lang), mails


ENGLISH = set("the your you has have been is are was to of and for we our please this with on in at by from be will can not".split())


def looks_english(text: str) -> bool:
    """A string left in English in a translation (solidus_i18n has no
    English file to compare with): a third or more of its words are common
    English ones."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    return len(words) >= 3 and sum(w in ENGLISH for w in words) * 3 >= len(words)


def english_of(gd, commit, names, kind):
    """The English strings of a Rails repository (path -> text), to leave
    out entries a translation copied untranslated: English shop and account
    text is the templates' source's to give, and here it taught the model
    that English offers read as ham (spam caught fell four points)."""
    if kind != "rails":
        return {}
    for f in names:
        if os.path.basename(f) in ("en.yml", "en-US.yml"):
            _, mails = rails_mails(git(gd, "show", f"{commit}:{f}"))
            return {(g, k): t for g, strings in mails.items() for k, t in strings}
    return {}


def gettext_mails(raw: bytes):
    """{template: [(key, text)]} for one catalogue: the translated strings
    of each e-mail template (its `#:` references under `/email/`)."""
    po = polib.pofile(raw.decode("utf-8", "replace"))
    lang = po.metadata.get("Language", "")
    mails = {}
    for e in po.translated_entries():
        for ref, _ in e.occurrences:
            if "/email/" not in ref:
                continue
            base = re.sub(r"_(subject|message)(\.\w+)*$", "", os.path.basename(ref).split(".")[0])
            key = "subject" if "_subject" in ref else "body"
            if e.msgstr.strip() != e.msgid.strip():
                mails.setdefault((base,), []).append((key, e.msgstr))
    return lang, mails


def main():
    args, folder = cli("locales")
    seen, n = set(), 0
    for repo, (commit, top, kind) in sorted(REPOS.items()):
        gd = gitdir_of(args.mirror, repo)
        try:
            names = git(gd, "ls-tree", "-r", "--name-only", commit, top).decode().split("\n")
        except Exception as e:  # a missing clone: said, and the rest goes on
            print(f"{repo}@{commit}: cannot read ({e})", file=sys.stderr)
            continue
        kept, langs = 0, set()
        english = english_of(gd, commit, names, kind)
        for f in names:
            if not f.endswith(".yml" if kind == "rails" else ".po"):
                continue
            lang, mails = (rails_mails if kind == "rails" else gettext_mails)(git(gd, "show", f"{commit}:{f}"))
            if lang.lower().startswith("en"):
                continue  # the English originals: the corpus has English
            for group, strings in mails.items():
                strings = [
                    (k, t) for k, t in strings if english.get((group, k), "").strip() != t.strip() and not looks_english(clean(t))
                ]
                subject = " ".join(clean(t) for k, t in strings if "subject" in k)
                body = "\n\n".join(clean(t) for k, t in strings if "subject" not in k)
                words = re.findall(r"[^\W\d_]{2,}", body)
                if len(words) < MIN_WORDS:
                    continue
                stem = os.path.join(folder, f"{repo.replace('/', '+')}-{lang}")
                if write_once(lambda i: f"{stem}-{i:05d}.eml", seen, subject, body, words):
                    n += 1
                    kept += 1
                    langs.add(lang)
        print(f"{repo}: {kept} mails in {len(langs)} languages", file=sys.stderr)
    print(f"locales: {n}", file=sys.stderr)


if __name__ == "__main__":
    main()
