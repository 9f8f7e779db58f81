"""Errors a user can act on. Each message is written for the person who caused it.

The CLI prints `str(error)` on one line; the Slack bot posts it in the thread.
"""

from __future__ import annotations


class CitebotError(Exception):
    """Base class: the message is safe and useful to show to the user."""


class NotAPdf(CitebotError):
    pass


class EmptyFile(CitebotError):
    pass


class PdfTooLarge(CitebotError):
    """A file over CITEBOT_MAX_PDF_MB, said one way wherever it is found (file, download, Slack)."""

    @classmethod
    def of(cls, what: str, size: int | None, limit: int) -> PdfTooLarge:
        """``size`` None: the size is only known to be over the limit (a download cut off)."""
        if size is None:
            return cls(f"{what} is larger than the limit of {limit / 2**20:.1f} MiB.")
        return cls(f"{what} is {size / 2**20:.1f} MiB; the limit is {limit / 2**20:.1f} MiB.")


class TooManyPages(CitebotError):
    pass


class EncryptedPdf(CitebotError):
    pass


class NoExtractableText(CitebotError):
    pass


class CorruptPdf(CitebotError):
    pass


class DownloadFailed(CitebotError):
    pass


class InvalidArxivId(CitebotError):
    pass


class ArxivNotFound(CitebotError):
    pass


class ArxivUnavailable(CitebotError):
    pass


class StoreFailed(CitebotError):
    pass


class EmbeddingModelMismatch(CitebotError):
    pass


class ModelUnavailable(CitebotError):
    pass


class DocumentNotFound(CitebotError):
    pass


class EmptyQuestion(CitebotError):
    pass


class PdfTooSlow(CitebotError):
    """Parsing outlived the per-document time budget (its worker was killed)."""


class PdfTooComplex(CitebotError):
    """Parsing needed more memory than a parse worker may use (its worker died)."""


class TooMuchText(CitebotError):
    """More text than one document may index (the chunk cap)."""


class NotARegularFile(CitebotError):
    """A path that is a FIFO, a device, a socket or a folder where a PDF file was expected."""


class TooManyIds(CitebotError):
    """More arXiv IDs in one request than citebot takes at a time."""


class WeaviateUnavailable(CitebotError):
    """The embedded Weaviate cannot be started or reached (another program holds it, ports)."""
