"""Where the shared test material is: ../shared/testdata beside the repository (or $CITEBOT_TESTDATA)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("CITEBOT_TESTDATA", REPO.parent / "shared" / "testdata"))
PDFS = TESTDATA / "pdfs"
NASTY = TESTDATA / "nasty"
SLACK = TESTDATA / "slack"
