"""The bot-like process bench.memory samples: ``python -m bench.memory_child PDF WORKSPACE/CHANNEL``.

Settings come from the environment, as the bot's do. Protocol on stdout: ``idle``, ``ingest``,
``done <IngestResult JSON>``; then it waits for a line on stdin and exits.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    from citebot.domain import Provenance, Scope
    from citebot.settings import Settings
    from dataflows.app import Citebot

    path = Path(sys.argv[1])
    workspace, _, channel = sys.argv[2].partition("/")
    with Citebot(Settings.from_env()) as bot:
        # A bot that has run for a while has its parsing pool started: start it here too, so the
        # ingest is timed as the bot would do it, and idle memory includes the workers.
        bot._parse_pool().start_workers()
        print("idle", flush=True)
        time.sleep(3.0)
        data = path.read_bytes()
        print("ingest", flush=True)
        result = bot.ingest_pdf(data, Provenance(scope=Scope(workspace, channel), user="bench", filename=path.name))
        print("done " + json.dumps(result.to_dict()), flush=True)
        sys.stdin.readline()


if __name__ == "__main__":
    main()
