"""README.md is assembled from docs/: the intro, the generated configuration table, and the
operator, performance and reliability sections. Run after editing any of them."""

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
PARTS = ["readme_intro.md", "configuration.md", "operations.md", "performance.md", "reliability.md"]


def main() -> None:
    sections = []
    for name in PARTS:
        path = DOCS / name
        if path.exists():
            text = path.read_text().strip()
            if text.startswith("<!--"):
                text = text.split("-->", 1)[1].strip()
            sections.append(text)
    (DOCS.parent / "README.md").write_text("\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
