"""citebot: answers with citations from the PDFs and arXiv papers a team shares."""

__version__ = "0.1.0"
