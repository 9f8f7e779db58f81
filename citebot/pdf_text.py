"""PDF bytes → page texts with page numbers (pypdf), and the checks that turn bad PDFs into
errors a user can act on. Plain functions, picklable, so page ranges can be extracted in
worker processes."""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass, replace

from pypdf import PasswordType, PdfReader
from pypdf._codecs import adobe_glyphs
from pypdf.errors import DependencyError, FileNotDecryptedError
from pypdf.generic import NameObject

from citebot.errors import CorruptPdf, EmptyFile, EncryptedPdf, NotAPdf, PdfTooLarge, TooManyPages, TooMuchText
from citebot.text_hygiene import clean_field, without_surrogates

# A page with an image and fewer characters than this is a scan, not text (the scanned test
# file has a 6-character hidden OCR layer).
SCANNED_PAGE_MAX_CHARS = 40


@dataclass(frozen=True)
class PageText:
    number: int  # 1-based
    text: str
    has_images: bool = False
    cut_from: int = 0  # characters the page had when its text was cut to the per-page cap (0: not cut)


@dataclass(frozen=True)
class PdfOverview:
    """What ingestion needs to know about a PDF before reading its pages (read in a worker)."""

    pages: int
    title: str = ""
    author: str = ""
    first_page_title: str = ""


def check_pdf_bytes(data: bytes, max_bytes: int) -> None:
    if not data:
        raise EmptyFile("The file is empty (0 bytes).")
    if len(data) > max_bytes:
        raise PdfTooLarge.of("The PDF", len(data), max_bytes)
    if b"%PDF-" not in data[:1024]:
        raise NotAPdf("That file is not a PDF (it does not start with %PDF-).")


def open_pdf(data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt("")
            except (DependencyError, NotImplementedError) as error:
                raise EncryptedPdf(
                    "The PDF is encrypted in a way citebot cannot open; share an unprotected copy."
                ) from error
            if unlocked == PasswordType.NOT_DECRYPTED:
                raise EncryptedPdf("The PDF is password-protected; share a copy without a password.")
        len(reader.pages)  # forces the page tree to parse
        return reader
    except (EncryptedPdf, FileNotDecryptedError) as error:
        if isinstance(error, EncryptedPdf):
            raise
        raise EncryptedPdf("The PDF is password-protected; share a copy without a password.") from error
    except Exception as error:  # pypdf raises many types for broken files
        raise CorruptPdf(f"The PDF is damaged and cannot be read ({_reason(error)}).") from error


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:120]


def page_count(reader: PdfReader, max_pages: int) -> int:
    count = len(reader.pages)
    if count > max_pages:
        raise TooManyPages(f"The PDF has {count} pages; the limit is {max_pages} pages.")
    if count == 0:
        raise CorruptPdf("The PDF has no pages.")
    return count


def _has_images(page) -> bool:
    try:
        return any(_resolved(x).get("/Subtype") == "/Image" for x in _page_xobjects(page).values())
    except Exception:
        return False


def _page_xobjects(page) -> dict:
    """The page's images and forms by resource name (none: an empty dictionary)."""
    return _resolved(_resolved(page.get("/Resources")).get("/XObject"))


def _resolved(obj) -> dict:
    """A PDF object with its reference followed; an empty dictionary for none."""
    obj = obj.get_object() if obj is not None else {}
    return obj if isinstance(obj, dict) else {}


# A font whose /ToUnicode map contradicts every glyph name its /Encoding gives (at least this
# many): the map is broken and the glyph names are read instead. A tool that re-encoded the Adam
# paper's math fonts mapped /alpha to "↵", /beta to U+0000 and /epsilon1 to "✏", so "α = 0.001,
# β1 = 0.9" was extracted as "↵=0.001, \x001=0.9".
BROKEN_TO_UNICODE_MIN_NAMES = 2
_CMAP_BLOCK = re.compile(rb"begin(bfchar|bfrange)(.*?)end\1", re.DOTALL)
_CMAP_HEX = re.compile(rb"<([0-9A-Fa-f]*)>|\[|\]")


def _repair_fonts(page, checked: set[int]) -> None:
    """Drop the /ToUnicode map of each font on the page (and in its forms) that contradicts the
    font's own glyph names, so pypdf reads the glyph names. Fonts are shared between pages:
    each is checked once (``checked`` holds their object numbers, or ids). Never raises: a font
    that cannot be read is left as it is."""
    try:
        resources = [_resolved(page.get("/Resources"))]
        for xobject in _page_xobjects(page).values():
            form = _resolved(xobject)
            if form.get("/Subtype") == "/Form" and "/Resources" in form:
                resources.append(_resolved(form["/Resources"]))
        for res in resources:
            for ref in _resolved(res.get("/Font")).values():
                font = ref.get_object()
                number = getattr(ref, "idnum", None) or id(font)  # a font written into its page has no number
                if number in checked:
                    continue
                checked.add(number)
                if _contradicts_glyph_names(font):
                    del font[NameObject("/ToUnicode")]
    except MemoryError:
        raise
    except Exception:
        return


def _contradicts_glyph_names(font) -> bool:
    """A simple font's /ToUnicode maps none of the glyphs its /Differences name to what the name says."""
    encoding = font.get("/Encoding")
    encoding = encoding.get_object() if encoding is not None else None
    if "/ToUnicode" not in font or not isinstance(encoding, dict) or "/Differences" not in encoding:
        return False
    named: dict[int, str] = {}
    code = 0
    for item in encoding["/Differences"].get_object():
        if isinstance(item, int):
            code = item
            continue
        if str(item) in adobe_glyphs:
            named[code] = adobe_glyphs[str(item)]
        code += 1
    mapped = _to_unicode(font["/ToUnicode"].get_object().get_data())
    both = [c for c in named if c in mapped]
    norm = lambda t: unicodedata.normalize("NFKC", t)  # noqa: E731
    return len(both) >= BROKEN_TO_UNICODE_MIN_NAMES and all(norm(mapped[c]) != norm(named[c]) for c in both)


def _to_unicode(cmap: bytes) -> dict[int, str]:
    """A one-byte ToUnicode CMap's code -> text ("bfchar" pairs, "bfrange" runs and arrays)."""
    out: dict[int, str] = {}
    for kind, body in _CMAP_BLOCK.findall(cmap):
        tokens = [m.group(1) if m.group(1) is not None else m.group(0) for m in _CMAP_HEX.finditer(body)]
        i = 0
        while i < len(tokens):
            if kind == b"bfchar" and i + 1 < len(tokens):
                out[int(tokens[i] or b"0", 16)] = _utf16(tokens[i + 1])
                i += 2
            elif kind == b"bfrange" and i + 2 < len(tokens):
                low, high = int(tokens[i] or b"0", 16), int(tokens[i + 1] or b"0", 16)
                if tokens[i + 2] == b"[":
                    end = tokens.index(b"]", i + 3) if b"]" in tokens[i + 3 :] else len(tokens)
                    for offset, dest in enumerate(tokens[i + 3 : end]):
                        out[low + offset] = _utf16(dest)
                    i = end + 1
                else:
                    first = int(tokens[i + 2] or b"0", 16)
                    for offset in range(min(high - low, 255) + 1):
                        out[low + offset] = chr(min(first + offset, 0x10FFFF))
                    i += 3
            else:
                break
    return out


def _utf16(hex_text: bytes) -> str:
    data = bytes.fromhex(hex_text.decode("ascii")) if len(hex_text) % 2 == 0 else b""
    return data.decode("utf-16-be", "replace") if len(data) % 2 == 0 else data.decode("latin-1")


def _content_key(page) -> tuple | None:
    """What a page's text depends on, by object reference: pages with the same key have the same
    text (a crafted file can point hundreds of pages at one content stream). None when the page
    cannot be compared cheaply."""
    try:
        resources = page.raw_get("/Resources") if "/Resources" in page else ("inherited", page.raw_get("/Parent"))
        return (_shape(page.raw_get("/Contents")), _shape(resources), int(page.get("/Rotate", 0) or 0))
    except Exception:
        return None


def _shape(item, depth: int = 0):
    """A hashable picture of a (small) PDF object in which indirect objects are their references."""
    if depth > 4:
        raise ValueError("too deep to compare")
    if hasattr(item, "idnum"):
        return ("ref", item.idnum, item.generation)
    if isinstance(item, dict):
        if len(item) > 64:
            raise ValueError("too large to compare")
        return tuple(sorted((str(k), _shape(v, depth + 1)) for k, v in item.items()))
    if isinstance(item, list | tuple):
        if len(item) > 64:
            raise ValueError("too large to compare")
        return tuple(_shape(v, depth + 1) for v in item)
    if hasattr(item, "get_data"):  # a direct stream cannot be compared cheaply
        raise ValueError("stream")
    return repr(item)[:200]


@dataclass(frozen=True)
class TextCaps:
    """How much text one document may bring: ``page_chars`` per page (longer pages are cut, and
    the reply says so) and ``chunks`` chunks of about ``chunk_chars`` per document (more is refused,
    and nothing of the document kept). 0: no cap."""

    page_chars: int = 0
    chunks: int = 0
    chunk_chars: int = 1500

    @property
    def document_chars(self) -> int:
        return self.chunks * self.chunk_chars

    def too_much(self, counted_chunks: bool = False) -> TooMuchText:
        """The refusal: the text read so far is over ``document_chars``, or (``counted_chunks``)
        the document has more than ``chunks`` chunks."""
        found = f"over {self.chunks:,} chunks" if counted_chunks else f"over {self.document_chars:,} characters"
        return TooMuchText(
            f"The PDF has more text than citebot indexes per document ({found}; the limit is {self.chunks:,} chunks "
            f"of about {self.chunk_chars:,} characters). Split it into smaller files."
        )


def extract_pages(data: bytes, start: int, end: int, caps: TextCaps = TextCaps()) -> list[PageText]:
    """Text of pages [start, end) (0-based), numbered from 1, within ``caps`` (a page's text is
    cut, too much text in the range raises ``TooMuchText``). Pages drawing the same content
    stream are read once."""
    return OpenPdf(data).pages(start, end, caps)


class OpenPdf:
    """A PDF opened once and read page range by page range (a parse worker keeps the document it
    is reading open between ranges, so its objects and fonts are parsed once). Pages drawing the
    same content stream are read once, and ``caps`` count the text of every range read so far."""

    def __init__(self, data: bytes) -> None:
        self.reader = open_pdf(data)
        self._seen: dict[tuple, PageText] = {}
        self._total = 0
        self._first_page_text: str | None = None  # page 1's text, read by ``overview``
        self._fonts_checked: set[int] = set()  # fonts whose /ToUnicode was checked (``_repair_fonts``)

    def pages(self, start: int, end: int, caps: TextCaps = TextCaps()) -> list[PageText]:
        max_page_chars, max_chars = caps.page_chars, caps.document_chars
        pages: list[PageText] = []
        for index in range(start, end):
            page = self.reader.pages[index]
            key = _content_key(page)
            if key is not None and key in self._seen:
                pages.append(replace(self._seen[key], number=index + 1))
                continue
            _repair_fonts(page, self._fonts_checked)
            try:
                text = self._first_page_text if index == 0 and self._first_page_text is not None else page.extract_text()
                text = text or ""
            except MemoryError:  # over the worker's memory cap: refused as too complex, never read as empty
                raise
            except Exception:  # one bad page must not lose the document
                text = ""
            cut_from = len(text) if max_page_chars and len(text) > max_page_chars else 0
            if cut_from:
                text = text[:max_page_chars]
            read = PageText(number=index + 1, text=normalise(text), has_images=_has_images(page), cut_from=cut_from)
            self._total += len(read.text)
            if max_chars and self._total > max_chars:
                raise caps.too_much()
            if key is not None:
                self._seen[key] = read
            pages.append(read)
        return pages

    def overview(self, max_pages: int) -> PdfOverview:
        """Page count (checked against ``max_pages``), cleaned metadata and the first page's title."""
        count = page_count(self.reader, max_pages)
        info = pdf_info(self.reader)
        if count:
            _repair_fonts(self.reader.pages[0], self._fonts_checked)
        self._first_page_text, first_page_title = _read_first_page(self.reader)
        return PdfOverview(pages=count, title=info["title"], author=info["author"], first_page_title=first_page_title)


def pdf_overview(data: bytes, max_pages: int) -> PdfOverview:
    """Page count (checked against ``max_pages``), cleaned metadata and the first page's title."""
    return OpenPdf(data).overview(max_pages)


def pdf_info(reader: PdfReader) -> dict[str, str]:
    """Title and author from the PDF's metadata, cleaned and capped (they can be megabytes)."""
    try:
        meta = reader.metadata or {}
        return {"title": clean_field(meta.get("/Title")), "author": clean_field(meta.get("/Author"))}
    except MemoryError:  # over the worker's memory cap: the document is refused, not read without metadata
        raise
    except Exception:
        return {"title": "", "author": ""}


_HYPHEN_BREAK = re.compile(r"(\w)-\n\s*(\w)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0]+")
# A space lost where a math font's Greek letter meets the text font ("valuesβ2close to 1",
# "areα=0.001"): after a word of two or more letters, and between a numbered letter and a word.
_GLUED_GREEK = re.compile(r"(?<=[a-z]{2})(?=[\u03b1-\u03c9])|(?<=[\u03b1-\u03c9]\d)(?=[a-z]{2})")


def normalise(text: str) -> str:
    """NFKC (ligatures ﬁ→fi), end-of-line hyphenation joined, spaces lost around Greek letters
    put back, whitespace tidied (lines kept)."""
    text = unicodedata.normalize("NFKC", without_surrogates(text))
    text = _CONTROL.sub("", text)
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    text = _GLUED_GREEK.sub(" ", text)
    text = _SPACES.sub(" ", text)
    return "\n".join(line.strip() for line in text.splitlines()).strip()


def is_text_page(page: PageText) -> bool:
    chars = len(re.sub(r"\s", "", page.text))
    if page.has_images:
        return chars >= SCANNED_PAGE_MAX_CHARS
    return chars > 0


def _read_first_page(reader: PdfReader) -> tuple[str, str]:
    """Page 1's text as ``extract_text`` gives it ("" if that fails, as ``OpenPdf.pages`` reads a
    failing page) and the text drawn in its largest upright font (a paper's title, usually;
    rotated text such as arXiv's margin stamp is ignored)."""
    runs: list[tuple[float, str]] = []

    def visit(text: str, cm, tm, font, size) -> None:
        try:
            if not text.strip() or any(abs(m[i]) > 1e-3 for m in (cm, tm) for i in (1, 2)):
                return
            runs.append((round(size * (abs(tm[3]) or 1) * (abs(cm[3]) or 1), 1), text.strip()))
        except Exception:  # an odd matrix: not a title run (and the page's text is read as without a visitor)
            return

    try:
        page_text = reader.pages[0].extract_text(visitor_text=visit) or ""
    except MemoryError:
        raise
    except Exception:
        return "", ""
    sized = [size for size, text in runs if len(text) > 3]
    if not sized:
        return page_text, ""
    biggest = max(sized)
    return page_text, clean_field(normalise(" ".join(text for size, text in runs if abs(size - biggest) < 0.6)))
