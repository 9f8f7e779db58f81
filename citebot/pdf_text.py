"""PDF bytes → page texts with page numbers (pypdf), and the checks that turn bad PDFs into
errors a user can act on. Plain functions, picklable, so page ranges can be extracted in
worker processes."""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from dataclasses import dataclass

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from citebot.errors import CorruptPdf, EmptyFile, EncryptedPdf, NotAPdf, PdfTooLarge, TooManyPages

logging.getLogger("pypdf").setLevel(logging.ERROR)

# A page with an image and fewer characters than this is a scan, not text (the scanned test
# file has a 6-character hidden OCR layer).
SCANNED_PAGE_MAX_CHARS = 40


@dataclass(frozen=True)
class PageText:
    number: int  # 1-based
    text: str
    has_images: bool = False


def check_pdf_bytes(data: bytes, max_bytes: int) -> None:
    if not data:
        raise EmptyFile("The file is empty (0 bytes).")
    if len(data) > max_bytes:
        raise PdfTooLarge(f"The PDF is {len(data) / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB.")
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
        xobjects = page.get("/Resources", {}).get_object().get("/XObject", {})
        return any(x.get_object().get("/Subtype") == "/Image" for x in xobjects.get_object().values())
    except Exception:
        return False


def extract_pages(data: bytes, start: int, end: int) -> list[PageText]:
    """Text of pages [start, end) (0-based), numbered from 1."""
    reader = open_pdf(data)
    pages = []
    for index in range(start, end):
        page = reader.pages[index]
        try:
            text = page.extract_text() or ""
        except Exception:  # one bad page must not lose the document
            text = ""
        pages.append(PageText(number=index + 1, text=normalise(text), has_images=_has_images(page)))
    return pages


def pdf_info(reader: PdfReader) -> dict[str, str]:
    try:
        meta = reader.metadata or {}
        return {"title": str(meta.get("/Title") or "").strip(), "author": str(meta.get("/Author") or "").strip()}
    except Exception:
        return {"title": "", "author": ""}


_HYPHEN_BREAK = re.compile(r"(\w)-\n\s*(\w)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0]+")


def normalise(text: str) -> str:
    """NFKC (ligatures ﬁ→fi), end-of-line hyphenation joined, whitespace tidied (lines kept)."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub("", text)
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    text = _SPACES.sub(" ", text)
    return "\n".join(line.strip() for line in text.splitlines()).strip()


def is_text_page(page: PageText) -> bool:
    chars = len(re.sub(r"\s", "", page.text))
    if page.has_images:
        return chars >= SCANNED_PAGE_MAX_CHARS
    return chars > 0


def largest_text_on_first_page(reader: PdfReader) -> str:
    """The text drawn in the largest upright font on page 1 (a paper's title, usually);
    rotated text such as arXiv's margin stamp is ignored."""
    runs: list[tuple[float, str]] = []

    def visit(text: str, cm, tm, font, size) -> None:
        if not text.strip() or any(abs(m[i]) > 1e-3 for m in (cm, tm) for i in (1, 2)):
            return
        runs.append((round(size * (abs(tm[3]) or 1) * (abs(cm[3]) or 1), 1), text.strip()))

    try:
        reader.pages[0].extract_text(visitor_text=visit)
    except Exception:
        return ""
    sized = [size for size, text in runs if len(text) > 3]
    if not sized:
        return ""
    biggest = max(sized)
    return normalise(" ".join(text for size, text in runs if abs(size - biggest) < 0.6))[:300]
