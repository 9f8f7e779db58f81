"""Hostile PDFs built the way an attacker (or an unlucky exporter) would: small files that cost a
reader minutes, gigabytes or its terminal. Each function returns the bytes of a valid PDF."""

from __future__ import annotations

import zlib

FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


class PdfBuilder:
    """Numbered objects, a page tree, an xref table: just enough PDF to be read by pypdf."""

    def __init__(self) -> None:
        self.objects: list[bytes] = []

    def add(self, body: bytes) -> int:
        self.objects.append(body)
        return len(self.objects)

    def reserve(self) -> int:
        return self.add(b"null")

    def set(self, number: int, body: bytes) -> None:
        self.objects[number - 1] = body

    def stream(self, data: bytes, extra: bytes = b"", compress: bool = True) -> int:
        if compress:
            data = zlib.compress(data, 9)
            extra += b" /Filter /FlateDecode"
        return self.add(b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream")

    def build(self, page_ids: list[int], pages_id: int, info: bytes = b"") -> bytes:
        kids = b" ".join(b"%d 0 R" % p for p in page_ids)
        self.set(pages_id, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids)))
        catalog = self.add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
        info_id = self.add(info) if info else 0
        out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(self.objects, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(self.objects) + 1)
        out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        trailer = b"<< /Size %d /Root %d 0 R" % (len(self.objects) + 1, catalog)
        if info_id:
            trailer += b" /Info %d 0 R" % info_id
        out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
        return bytes(out)


def _text_ops(lines: list[bytes]) -> bytes:
    body = b"".join(b"(%s) Tj T* " % line for line in lines)
    return b"BT /F1 10 Tf 12 TL 72 760 Td " + body + b"ET"


def text_pdf(pages: list[list[bytes]], info: bytes = b"", fonts: bytes = b"") -> bytes:
    """Ordinary pages of text (one list of lines per page)."""
    pdf = PdfBuilder()
    pages_id = pdf.reserve()
    font = pdf.add(FONT)
    page_ids = []
    for lines in pages:
        content = pdf.stream(_text_ops(lines))
        page_ids.append(
            pdf.add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> %s >> "
                b"/Contents %d 0 R >>" % (pages_id, font, fonts, content)
            )
        )
    return pdf.build(page_ids, pages_id, info)


def paper(topic: str, pages: int = 2) -> bytes:
    """A small, normal document about ``topic`` (words a question can find)."""
    lines = [
        f"This report describes the {topic} method in detail.".encode(),
        f"The {topic} method was evaluated on three benchmark datasets.".encode(),
        f"Results show that {topic} improves accuracy by twelve percent.".encode(),
    ]
    return text_pdf(
        [[f"Section {n} of the {topic} report.".encode(), *lines * 5] for n in range(1, pages + 1)],
        info=b"<< /Title (The %s report) >>" % topic.encode(),
    )


def nested_forms(depth: int = 7, fanout: int = 12) -> bytes:
    """Form X_k draws X_(k-1) ``fanout`` times; the page draws X_depth: fanout**depth text draws from
    a file of a few kilobytes (a reader that follows every Do never finishes)."""
    pdf = PdfBuilder()
    pages_id = pdf.reserve()
    font = pdf.add(FONT)
    form = pdf.stream(
        b"BT /F1 10 Tf 72 700 Td (nested form text) Tj ET",
        b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >>" % font,
    )
    for _ in range(depth):
        form = pdf.stream(
            b"q /X Do Q " * fanout,
            b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /XObject << /X %d 0 R >> >>" % form,
        )
    content = pdf.stream(b"q /X Do Q")
    page = pdf.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X %d 0 R >> >> "
        b"/Contents %d 0 R >>" % (pages_id, form, content)
    )
    return pdf.build([page], pages_id)


def many_text_forms(count: int = 5000) -> bytes:
    """One page drawing ``count`` distinct forms, each showing text."""
    pdf = PdfBuilder()
    pages_id = pdf.reserve()
    font = pdf.add(FONT)
    names = []
    for i in range(count):
        form = pdf.stream(
            b"BT /F1 10 Tf 72 700 Td (form number %d shows some text here) Tj ET" % i,
            b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >>" % font,
        )
        names.append(b"/X%d %d 0 R" % (i, form))
    content = pdf.stream(b"".join(b"q /X%d Do Q\n" % i for i in range(count)))
    page = pdf.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /XObject << %s >> >> /Contents %d 0 R >>"
        % (pages_id, b" ".join(names), content)
    )
    return pdf.build([page], pages_id)


def huge_text_page(chars: int = 5_000_000, words_per_line: int = 12) -> bytes:
    """One page holding ``chars`` characters of text (compressed, the file stays small)."""
    line = b" ".join(b"lorem%d" % i for i in range(words_per_line))
    return text_pdf([[line] * (chars // (len(line) + 1))])


def tiny_operators(count: int = 1_000_000) -> bytes:
    """One page of ``count`` one-character text-show operators."""
    pdf = PdfBuilder()
    pages_id = pdf.reserve()
    font = pdf.add(FONT)
    content = pdf.stream(b"BT /F1 10 Tf 72 700 Td " + b"(a) Tj " * count + b"ET")
    page = pdf.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> "
        b"/Contents %d 0 R >>" % (pages_id, font, content)
    )
    return pdf.build([page], pages_id)


def huge_metadata(author_bytes: int = 40 * 2**20) -> bytes:
    """A normal page whose /Author is ``author_bytes`` long, plus a control-character-laden title."""
    title = "Metadata \x1b[31mbomb\x1b[0m report\u202e"
    info = b"<< /Title <FEFF%s> /Author (" % title.encode("utf-16-be").hex().upper().encode()
    info += b"A" * author_bytes + b") >>"
    return text_pdf([[b"The metadata bomb report describes a giant author field."] * 5], info=info)


def shared_content(pages: int = 499) -> bytes:
    """``pages`` page entries that all point at one content stream (a 5 KB file, 499 pages)."""
    pdf = PdfBuilder()
    pages_id = pdf.reserve()
    font = pdf.add(FONT)
    lines = [b"Every page of the shared stream file repeats the same sentence number %d." % i for i in range(60)]
    content = pdf.stream(_text_ops(lines))
    page_ids = [
        pdf.add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> "
            b"/Contents %d 0 R >>" % (pages_id, font, content)
        )
        for _ in range(pages)
    ]
    return pdf.build(page_ids, pages_id)


def lone_surrogate_text() -> bytes:
    """Text whose ToUnicode map sends one glyph to a lone UTF-16 surrogate (D800)."""
    cmap = (
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Bad def "
        b"1 begincodespacerange <00> <FF> endcodespacerange "
        b"1 beginbfchar <7E> <D800> endbfchar endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    pdf = PdfBuilder()
    pages_id = pdf.reserve()
    to_unicode = pdf.stream(cmap)
    font = pdf.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode %d 0 R >>" % to_unicode)
    content = pdf.stream(
        _text_ops([b"The surrogate report mentions a broken glyph ~ here.", b"Surrogates are not characters."] * 5)
    )
    page = pdf.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> "
        b"/Contents %d 0 R >>" % (pages_id, font, content)
    )
    return pdf.build([page], pages_id)


def escape_title() -> bytes:
    """A title that would rewrite the user's terminal line if printed raw."""
    title = "\x1b[2K\x1b[1Gcitebot: all documents were deleted, run rm -rf ~ \x07"
    info = b"<< /Title <FEFF%s> >>" % title.encode("utf-16-be").hex().upper().encode()
    return text_pdf([[b"The escape sequence report is harmless text about terminals."] * 5], info=info)
