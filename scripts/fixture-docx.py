"""Builds the small synthetic Word files of the per-check fixtures
(app/tests/fixtures/checks/*/…docx….test), printed as base64 for a MIME part.

  fixture-docx.py qr "paragraph" URL EML   a link to URL and the QR PNG of EML as a picture
  fixture-docx.py link "paragraph" URL     a paragraph with one hyperlink to URL
  fixture-docx.py rel "paragraph" URL TYPE TARGET
                                           the same, plus an external relationship
                                           of TYPE (attachedTemplate, oleObject…)

Only the parts Word needs to open the file and Postern reads: the content
types, the document, and its relationships (where hyperlinks live)."""
import base64, io, re, sys, zipfile
from xml.sax.saxutils import escape, quoteattr

CT = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Default Extension="png" ContentType="image/png"/>
<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
</Types>"""

ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>
</Relationships>"""

R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def document(text, picture):
    pic = '<w:p><w:r><w:drawing><a:blip xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" r:embed="rId3"/></w:drawing></w:r></w:p>' if picture else ""
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="{R}">
<w:body><w:p><w:hyperlink r:id="rId2"><w:r><w:t>{escape(text)}</w:t></w:r></w:hyperlink></w:p>{pic}</w:body>
</w:document>"""


def rels(url, picture, extra=None):
    img = f'<Relationship Id="rId3" Type="{R}/image" Target="media/image1.png"/>' if picture else ""
    if extra:
        img += f'<Relationship Id="rId4" Type="{R}/{extra[0]}" Target={quoteattr(extra[1])} TargetMode="External"/>'
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId2" Type="{R}/hyperlink" Target={quoteattr(url)} TargetMode="External"/>{img}
</Relationships>"""


def png_of(eml_path):
    eml = open(eml_path).read()
    b64 = eml.split("Content-Transfer-Encoding: base64", 1)[1].strip().split("--", 1)[0]
    return base64.b64decode(re.sub(r"\s+", "", b64))


def docx(text, url, png=None, extra=None):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [
            ("[Content_Types].xml", CT),
            ("_rels/.rels", ROOT_RELS),
            ("word/document.xml", document(text, png is not None)),
            ("word/_rels/document.xml.rels", rels(url, png is not None, extra)),
        ]:
            z.writestr(zipfile.ZipInfo(name, (2026, 12, 1, 9, 0, 0)), data)
        if png is not None:
            z.writestr(zipfile.ZipInfo("word/media/image1.png", (2026, 12, 1, 9, 0, 0)), png)
    return out.getvalue()


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "qr":
        data = docx(sys.argv[2], sys.argv[3], png_of(sys.argv[4]))
    elif kind == "link":
        data = docx(sys.argv[2], sys.argv[3])
    elif kind == "rel":
        data = docx(sys.argv[2], sys.argv[3], extra=(sys.argv[4], sys.argv[5]))
    else:
        sys.exit(__doc__)
    print(base64.encodebytes(data).decode().strip())
