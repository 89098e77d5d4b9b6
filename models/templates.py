"""Builds the augment tree for `train.py --augment DIR`: the text of
published e-mail templates, as legitimate mail written to customers.

Why: the corpus's modern ham is mailing lists, CI reports, bounces and 28
newsletters. Businesses writing to their customers ("your order", "your
account", "thank you for your donation") are almost absent from it, so the
text model learned that register as phishing: a plain newsletter or an
order notice scored P(phish) 0.95-0.99. These templates (receipts, order
and shipping notices, welcomes, newsletters, invitations, security
notices; from template collections, open-source products and public
bodies) are written by real senders for real customers.

Each repository is read at the pinned commit from a directory of git
clones named `<owner>+<name>` (a clone's `.git`, or a bare repository, at
`<owner>+<name>/repo`). The template syntax ({{ }}, {% %}, <% %>, JSX
expressions) is stripped, the visible text kept; texts of under 25 words or
mostly lorem ipsum are left out, and duplicates kept once. Output:
DIR/ham/templates/<owner>+<name>-NNNNN.eml, one text/plain message each.
None of this text is in this repository; the licences are those of the
repositories (MIT for most; see models/README.md).

    python3 models/templates.py --mirror /path/to/clones --out /tmp/tpl-ham
"""

import argparse
import hashlib
import html.parser
import os
import re
import subprocess
import sys
from email.message import EmailMessage

REPOS = {
    "ActiveCampaign/postmark-templates": "fa73527acb4eb59cf673a54572d213e908f1515c",
    "bratislava/email-templates": "da5fd8a999e11f825e2dc99297147ebb16ec9584",
    "colline-kooza/email-templates": "288524248c11c83c379c55582c26f2adabff93cb",
    "crest-summit/summit-email-templates": "9bc86be81b7a08b6a5b66bdcfde097bffb1c4b9c",
    "datum-cloud/email-templates": "bfe97380a34c6134efd8e59988b47e48c9bc3945",
    "denverprophitjr/whmcs-responsive-email-templates": "b03e3990b23c05d32661057da25c69adcf84a50a",
    "dubem-design/saas-email-templates": "dbcc4b4d0cde58090212d292ac8f5563c1b0a514",
    "edgeandnode/email-templates": "bb3621372ee412df1325a06f29d1bb051107706e",
    "fordhamumc/email-templates": "e33234819299ad1dfdffe218c348a8d7a44a2a75",
    "gov-cy/dsf-email-templates": "896220b59fb5ed90f130f7acc11ba778dcb64db8",
    "inboundemail/react-email-templates": "bb060704610b0e12c09a56ba1d34a822b6ad5940",
    "jpg013/email-templates": "d297d34f43d368f8c053bde2cfc98d18671e63c1",
    "leemunroe/responsive-html-email-template": "60b5b6ddf9600e4b7d7e1ef60e5a3a8f1e56e186",
    "luckyluke007/ucsc-email-templates": "01f53fd1639b2f47223dbcb909c5355820de4325",
    "mailgun/transactional-email-templates": "e05e59e8c1e0fa7ffbacc7a165a609fd37c590b5",
    "meetoseh/email-templates": "51de8801922c446bc993e5673b1cd5e41f2da7ad",
    "mjmlio/email-templates": "69b6157f1475fa20d529ee65da8f8caa00e8fa6b",
    "ocrotti/email-templates": "45cb2f1768e856164943792dc700cd18555da2dc",
    "oroinc/localized-email-templates-bundle": "20e7da774973e319237ff8e7c542e8c9f0411a61",
    "pagopa/io-app-email-templates": "77aec3972f6dcacc500b33a14cc6a1595786522b",
    "resend/react-email": "ffe605819782b31d7f946e30f938b1b63e6b239c",
    "sauryabhatt/email-templates": "4eb9be0280d6bef2292c1cea375a8ac971964fb1",
    "sendgrid/email-templates": "12f459a7848761c7dba024a5431c0ce468aca82d",
    "sirivatd/carta-email-templates": "052fbab3c024ed628ab5f719478aee8e0e665c5f",
    "sunlightlabs/email-templates": "3fe1a727b91992f6108e1fd1af8c5d1ce4b0759f",
    "visualbuilder/email-templates": "f586c93634e3b6616060474183079ffc8f416568",
    "wpexpertsio/wordpress-email-templates": "637386d1a8774aa0af15445022cb6355c31cbaf4",
    "zeropsio/email-templates": "39f01d678d1e7f4607862aea64d87cddd1970b40",
}

EXT = re.compile(r"\.(html?|mjml|hbs|handlebars|txt|tsx|jsx|php|twig|liquid|njk|ejs)$", re.I)
SKIP = re.compile(
    r"(^|/)(node_modules|vendor|dist|build|test|tests|__tests__|spec|\.github|docs?)/|LICENSE|CHANGELOG|README|robots|requirements|package",
    re.I,
)
TEMPLATE_SYNTAX = re.compile(
    r"\{\{\{?.*?\}?\}\}|\{%.*?%\}|\{#.*?#\}|<%.*?%>|<\?php.*?\?>|\$\{[^}]*\}|@\w+(\([^)]*\))?|\[\[.*?\]\]|\*\|[A-Z_:]+\|\*|%[A-Za-z_]+%",
    re.S,
)
LOREM = re.compile(
    r"\b(lorem|ipsum|dolor|amet|consectetur|adipiscing|elit|sed|eiusmod|tempor|incididunt|labore|dolore|magna|aliqua|enim|minim"
    r"|veniam|nostrud|exercitation|ullamco|laboris|nisi|aliquip|commodo|consequat)\b",
    re.I,
)
MIN_WORDS = 25


class _Visible(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts, self.title, self.skip, self.in_title = [], [], 0, False

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head"):
            self.skip += 1
        if tag == "title":
            self.in_title = True

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head") and self.skip:
            self.skip -= 1
        if tag == "title":
            self.in_title = False

    def handle_data(self, data):
        if self.in_title:
            self.title.append(data)
        elif not self.skip:
            self.parts.append(data)


def text_of(name: str, src: str):
    """(subject, body) of one template file."""
    src = TEMPLATE_SYNTAX.sub(" ", src)
    lower = name.lower()
    if lower.endswith((".tsx", ".jsx")):
        # JSX: the text between tags only; code is not mail text.
        nodes = re.findall(r">\s*([^<>{}=;()]+?)\s*<", src)
        return "", " ".join(n.strip() for n in nodes if re.search(r"[A-Za-z]{3}", n))
    if lower.endswith(".txt"):
        return "", src
    p = _Visible()
    try:
        p.feed(src)
    except Exception:  # malformed markup: keep what was read
        pass
    return " ".join(p.title).strip(), " ".join(p.parts)


def git(gitdir, *args):
    return subprocess.run(["git", "--git-dir", gitdir, *args], capture_output=True, check=True).stdout


def gitdir_of(mirror, repo):
    base = os.path.join(mirror, repo.replace("/", "+"), "repo")
    return os.path.join(base, ".git") if os.path.isdir(os.path.join(base, ".git")) else base


def cli(source):
    """The command line both builders share: (arguments, OUT/ham/<source>)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirror", required=True, help="directory of clones named <owner>+<name>/repo")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    folder = os.path.join(args.out, "ham", source)
    os.makedirs(folder, exist_ok=True)
    return args, folder


def write_once(path_of, seen, subject, body, words):
    """Writes one text/plain message unless its words were written
    already (`seen`: their hashes); `path_of(n)` names the n-th file
    written. True when written."""
    key = hashlib.sha256(" ".join(w.lower() for w in words).encode()).hexdigest()
    if key in seen:
        return False
    seen.add(key)
    m = EmailMessage()
    m["Subject"] = re.sub(r"\s+", " ", subject)[:150]
    m["From"] = "template@example.invalid"
    m.set_content(body)
    with open(path_of(len(seen)), "wb") as fh:
        fh.write(bytes(m))
    return True


def main():
    args, folder = cli("templates")
    seen, n = set(), 0
    for repo, commit in sorted(REPOS.items()):
        gd = gitdir_of(args.mirror, repo)
        try:
            names = git(gd, "ls-tree", "-r", "--name-only", commit).decode().split("\n")
        except (subprocess.CalledProcessError, FileNotFoundError) as e:
            print(f"{repo}@{commit}: cannot read ({e})", file=sys.stderr)
            continue
        kept = 0
        for f in names:
            if not EXT.search(f) or SKIP.search(f):
                continue
            raw = git(gd, "show", f"{commit}:{f}")
            if len(raw) > 400_000:
                continue
            subject, body = text_of(f, raw.decode("utf-8", "replace"))
            body = re.sub(r"\s+", " ", body).strip()
            words = re.findall(r"[^\W\d_]{2,}", body)
            if len(words) < MIN_WORDS or len(LOREM.findall(body)) > 0.2 * len(words):
                continue
            stem = os.path.join(folder, repo.replace("/", "+"))
            if write_once(lambda i: f"{stem}-{i:05d}.eml", seen, subject, body, words):
                n += 1
                kept += 1
        print(f"{repo}: {kept}", file=sys.stderr)
    print(f"templates: {n}", file=sys.stderr)


if __name__ == "__main__":
    main()
