"""`citebot forget` (issue 17, item 6): the same meaningful-match rule as /forget in Slack.
Before, `citebot forget e` removed the only document whose id starts with "e"."""

from __future__ import annotations

import json

import pytest

from tests.paths import PDFS
from tests.test_cli import cli_environment, run


@pytest.fixture(scope="module")
def env(weaviate, tmp_path_factory) -> dict[str, str]:
    return cli_environment(weaviate, tmp_path_factory.mktemp("cli-forget"), "CliForget")


def docs(env: dict[str, str]) -> dict[str, str]:
    """Title -> document id of the documents listed."""
    return {d["title"]: d["document_id"] for d in json.loads(run(env, "--json", "docs").stdout)}


def test_forget_needs_a_meaningful_match(env) -> None:
    added = run(env, "ingest", str(PDFS / "1111.2011.pdf"), str(PDFS / "1412.6980.pdf"))
    assert added.returncode == 0, added.stderr
    before = docs(env)
    adam = before["Adam: A Method for Stochastic Optimization"]
    bethe = before["Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit"]

    # One id character, punctuation, part of a word: refused, nothing removed (the bot test tries more).
    for vague in (bethe[0], "*", "Adam optim"):
        result = run(env, "forget", vague)
        assert result.returncode == 1, (vague, result.stdout)
        assert result.stderr.startswith("citebot: No document here matches"), result.stderr
        assert "at least 6 characters of its id" in result.stderr and "Traceback" not in result.stderr
    assert docs(env) == before

    assert run(env, "forget", bethe[:6]).returncode == 0
    assert list(docs(env).values()) == [adam]
    forgot = run(env, "forget", "adam: a METHOD for stochastic optimization")  # whole title words, any case
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.strip() == "Forgot: Adam: A Method for Stochastic Optimization"
    assert docs(env) == {}
