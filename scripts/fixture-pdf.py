"""Builds the small synthetic PDFs of the per-check fixtures
(app/tests/fixtures/checks/*/…pdf….test), printed as base64 for a MIME part.

  fixture-pdf.py link OUT "page text" URI     a page with one link annotation
  fixture-pdf.py js OUT "page text"           JavaScript run on open
  fixture-pdf.py plain OUT "page text"        an ordinary page
  fixture-pdf.py qr OUT "page text" EML       the QR PNG of EML drawn as a 1-bit image

Written by hand (objects and a cross-reference table) so that no PDF
library shapes what Postern's reader is tested on."""
import zlib, base64, struct, re, sys

def pdf(objects):
    """objects: list of bytes bodies (obj n = index+1). Returns a PDF with a correct xref."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for o in offsets:
        out += b"%010d 00000 n \n" % o
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)

def stream(dict_body, data):
    return b"<< " + dict_body + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"

def page_doc(text, extra_page=b"", extra_objs=(), catalog_extra=b""):
    content = b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> "
        + extra_page,
        stream(b"", content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    objs[2] += b">> >>"
    return objs + list(extra_objs)

def link_pdf(text, uri):
    objs = page_doc(text)
    objs[2] = objs[2][:-2] + b"/Annots [<< /Type /Annot /Subtype /Link /Rect [72 600 300 620] /A << /S /URI /URI (" + uri + b") >> >>] >>"
    return pdf(objs)

def js_pdf(text):
    return pdf(page_doc(text, catalog_extra=b"/OpenAction << /S /JavaScript /JS (app.alert\\('Loading'\\);) >> "))

def plain_pdf(text):
    return pdf(page_doc(text))

def png_1bit_rows(png):
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", None
    while pos < len(png):
        ln, typ = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + ln]
        if typ == b"IHDR":
            w, h, bd, ct = struct.unpack(">IIBB", data[:10])
            assert bd == 1 and ct == 0, (bd, ct)
        if typ == b"IDAT":
            idat += data
        pos += 12 + ln
    raw = zlib.decompress(idat)
    stride = (w + 7) // 8
    rows, prev = [], bytes(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 1] if i else 0
            b = prev[i]
            c = prev[i - 1] if i else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line)); prev = bytes(line)
    return w, h, b"".join(rows)

def qr_pdf(text, png):
    w, h, bits = png_1bit_rows(png)
    img = stream(b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /FlateDecode" % (w, h), zlib.compress(bits))
    objs = page_doc(text, extra_page=b"/XObject << /Im1 6 0 R >> ", extra_objs=[img])
    objs[3] = stream(b"", b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET q 200 0 0 200 72 400 cm /Im1 Do Q")
    return pdf(objs)

def b64(data):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76))

if __name__ == "__main__":
    kind, out = sys.argv[1], sys.argv[2]
    if kind == "link":
        data = link_pdf(sys.argv[3].encode(), sys.argv[4].encode())
    elif kind == "js":
        data = js_pdf(sys.argv[3].encode())
    elif kind == "plain":
        data = plain_pdf(sys.argv[3].encode())
    elif kind == "qr":
        eml = open(sys.argv[4]).read()
        m = re.search(r"Content-Transfer-Encoding: base64\n\n([A-Za-z0-9+/=\n]+)", eml)
        data = qr_pdf(sys.argv[3].encode(), base64.b64decode(m.group(1)))
    open(out, "w").write(b64(data) + "\n")
