"""Generated PDFs that are slow for pypdf to read, deterministically, while being small and legitimate.

Each page shows a few real sentences, then draws ``empty_shows`` empty text-show operators
(``() Tj``): they add no text but pypdf's ``extract_text`` interprets each one (roughly 100,000
a second on one core). The content stream is Flate-compressed, so a document that takes
seconds to parse is a few kilobytes. Page 1 has no padding (the title is read from it in the
calling process); with at least 8 pages the rest is parsed in the worker processes, as a real
book's is. ``seed`` makes the bytes (and so the document id) unique.
"""

from __future__ import annotations

import io
import zlib

SENTENCES = (
    "Fair queueing gives every channel its turn.",
    "A question is answered while long documents are indexed.",
    "The ingest queue is bounded and visible to the people who wait.",
)


def slow_pdf(*, seed: int, pages: int = 8, empty_shows: int = 30_000, title: str = "Slow test document") -> bytes:
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    def stream(data: bytes) -> int:
        packed = zlib.compress(data, 9)
        return add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream")

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    contents = []
    for number in range(1, pages + 1):
        lines = [title if number == 1 else f"Section {number} of document {seed}", *SENTENCES, f"Page {number}, id {seed}."]
        body = b"BT /F1 12 Tf 72 720 Td 16 TL\n" + b"\n".join(b"(%s) '" % line.encode("ascii") for line in lines)
        if number > 1:
            body += b"\n" + b"() Tj\n" * empty_shows
        contents.append(stream(body + b"\nET"))
    pages_id = len(objects) + pages + 1
    kids = [
        add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> "
            b"/Contents %d 0 R >>" % (pages_id, font, content)
        )
        for content in contents
    ]
    add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), pages))
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref))
    return out.getvalue()
