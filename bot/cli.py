"""The `citebot` command line: the same dataflows the Slack bot runs, for a terminal."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from citebot import logs
from citebot.arxiv_ids import check_id_count
from citebot.domain import CLI_SCOPE, Answer, Provenance, Scope
from citebot.downloads import read_pdf_file
from citebot.errors import CitebotError
from citebot.settings import Settings, SettingsError
from citebot.text_hygiene import terminal_safe


def say(*parts: object, file: Any = None, end: str = "\n") -> None:
    """Print text that may come from documents (titles, file names, excerpts) to the user with
    terminal escape sequences and control characters removed: a title must not rewrite the
    user's screen."""
    print(terminal_safe(" ".join(str(p) for p in parts)), file=file or sys.stdout, end=end, flush=file is sys.stderr)


def _scope(text: str) -> Scope:
    workspace, _, channel = text.partition("/")
    if not workspace or not channel:
        raise argparse.ArgumentTypeError("scope is WORKSPACE/CHANNEL, e.g. T0123/C0456")
    return Scope(workspace, channel)


def _common_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """--scope, --json and -v: accepted before the command and after it (`citebot ask Q --json`).
    The sub-commands' copies default to SUPPRESS, so they only override what was given."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--scope",
        type=_scope,
        default=default(CLI_SCOPE),
        help="act as if in this Slack WORKSPACE/CHANNEL (default: the CLI's own scope, local/cli)",
    )
    parser.add_argument("--json", action="store_true", default=default(False), help="machine-readable output")
    parser.add_argument("-v", "--verbose", action="store_true", default=default(False), help="log what happens")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citebot", description="Answers with citations from your PDFs and arXiv papers.")
    _common_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    class Sub:  # every sub-command also takes the common options
        @staticmethod
        def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
            return commands.add_parser(name, parents=[common], **kwargs)

    sub = Sub()

    p = sub.add_parser("ingest", help="index PDF files (or every PDF in the given folders)")
    p.add_argument("paths", nargs="+", type=Path)
    p = sub.add_parser("arxiv", help="fetch and index arXiv papers by ID")
    p.add_argument("ids", nargs="+")
    p = sub.add_parser("ask", help="ask a question; the answer cites the pages it comes from")
    p.add_argument("question")
    p.add_argument("--top-k", type=int, default=None, help="chunks to retrieve")
    p.add_argument("--alpha", type=float, default=None, help="0 = keyword search only, 1 = vector only")
    p.add_argument("--mode", choices=["answer", "summary"], default="answer")
    sub.add_parser("chat", help="ask questions interactively (one Weaviate start for many questions)")
    sub.add_parser("docs", help="list the documents visible here")
    p = sub.add_parser("forget", help="remove a document (ID prefix, arXiv ID or title words)")
    p.add_argument("doc")
    p = sub.add_parser("dag", help="render the Hamilton dataflows to image files")
    p.add_argument("--out", type=Path, default=Path("docs/dag"))
    p.add_argument("--format", default="png")
    sub.add_parser("serve", help="run the Slack bot (Socket Mode with SLACK_APP_TOKEN, else HTTP mode)")
    sub.add_parser("doctor", help="check configuration, Weaviate, Slack and the model endpoint")
    sub.add_parser("feedback", help="report the 👍/👎 feedback given on answers")
    sub.add_parser("up", help="start Weaviate Embedded once and leave it running: later commands answer in about a second")
    sub.add_parser("down", help="stop the Weaviate server `citebot up` started")
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # never die on a character the terminal cannot show
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    args = build_parser().parse_args(argv)
    logs.configure(logging.INFO if args.verbose else logging.WARNING)
    try:
        settings = Settings.from_env()
        return COMMANDS[args.command](args, settings)
    except (CitebotError, SettingsError) as error:
        say(f"citebot: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a connection refused, a server down: one line, not a traceback
        if args.verbose:
            raise
        say(
            f"citebot: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} "
            "(run with -v for details, or `citebot doctor`)",
            file=sys.stderr,
        )
        return 1


def _open(settings: Settings):
    from bot.weaviate_daemon import running
    from dataflows.app import Citebot

    daemon = None if settings.weaviate_url else running(settings)
    if daemon is not None:  # `citebot up` left Weaviate running for this data dir: use it as a server
        settings = replace(settings, weaviate_url=f"http://127.0.0.1:{daemon.port}", weaviate_grpc_port=daemon.grpc_port)
    return Citebot(settings)


def _pdfs(paths: list[Path]) -> Iterator[Path]:
    """The files to ingest: each path given, and every ``*.pdf`` under each folder given (any
    name, in any encoding; entries that are not regular files are yielded too, so that each is
    refused with its own message when read)."""
    for path in paths:
        if path.is_dir():
            found = []
            for folder, dirs, names in os.walk(path):  # unreadable sub-folders are skipped
                dirs.sort()
                found += [Path(folder, n) for n in names if n.lower().endswith(".pdf")]
            yield from sorted(found)
        elif path.exists() or path.is_symlink():
            yield path
        else:
            raise CitebotError(f"{terminal_safe(str(path))}: no such file or folder")


def _read(path: Path, settings: Settings) -> bytes:
    return read_pdf_file(path, settings.max_pdf_bytes)


def _progress(done: int, total: int, label: str) -> None:
    """A one-line progress bar on stderr when several documents are ingested in a terminal."""
    if total < 2 or not sys.stderr.isatty():
        return
    width = 24
    filled = width * done // total
    end = "\n" if done == total else ""
    label = terminal_safe(label)[:50]
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<50}", end=end, file=sys.stderr, flush=True)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    files = list(_pdfs(args.paths))
    if not files:
        raise CitebotError("no PDF files found")
    rows: list[dict[str, Any]] = []
    with _open(settings) as bot:
        for i, path in enumerate(files):
            _progress(i, len(files), path.name)
            try:
                result = bot.ingest_pdf(
                    _read(path, settings),
                    Provenance(
                        scope=args.scope, user="cli", source="file", link=path.resolve().as_uri(), filename=path.name
                    ),
                )
                rows.append({"file": str(path), **result.to_dict()})
                doc = result.document
                line = (
                    f"{path.name}: already indexed — {doc.title}"
                    if result.already_present
                    else f"{path.name}: {doc.title} — {doc.pages} pages, {doc.chunks} chunks, {result.seconds:.1f} s"
                )
                line += "".join(f"\n  note: {note}" for note in result.notes)
            except CitebotError as error:
                rows.append({"file": str(path), "error": str(error)})
                line = f"{path.name}: {error}"
            except Exception as error:  # one bad file never stops the rest of the folder
                logging.getLogger(__name__).debug("ingest of %s failed", path, exc_info=True)
                rows.append({"file": str(path), "error": f"{type(error).__name__}: {error}"})
                line = f"{path.name}: failed unexpectedly ({type(error).__name__}: {str(error)[:200]})"
            if not args.json:
                _progress(i, len(files), "")
                if len(files) > 1 and sys.stderr.isatty():
                    print("\r", end="")
                say(line)
        _progress(len(files), len(files), "done")
    if args.json:
        print(json.dumps(rows, indent=2))
    return 1 if any("error" in row for row in rows) else 0


def cmd_arxiv(args: argparse.Namespace, settings: Settings) -> int:
    ids = list(dict.fromkeys(args.ids))
    check_id_count(ids)  # before Weaviate starts
    with _open(settings) as bot:
        outcomes = bot.ingest_arxiv(ids, Provenance(scope=args.scope, user="cli", source="arxiv"))
    if args.json:
        print(json.dumps([o.to_dict() for o in outcomes], indent=2))
    for o in outcomes if not args.json else []:
        if o.result:
            doc = o.result.document
            state = "already indexed" if o.result.already_present else f"{doc.pages} pages, {doc.chunks} chunks"
            authors = ", ".join(doc.authors[:3]) + (" et al." if len(doc.authors) > 3 else "")
            say(f"{o.requested_id}: {doc.title} — {authors} ({state}) {doc.link}")
        else:
            say(f"{o.requested_id}: {o.error}", file=sys.stderr)
    return 1 if any(o.error for o in outcomes) else 0


def format_answer(answer: Answer) -> str:
    lines = [answer.text]
    if answer.citations:
        lines += ["", "Sources:"]
        for c in answer.citations:
            lines.append(f"  [{c.n}] {c.title} — {c.pages}{'  ' + c.link if c.link else ''}")
            lines.append(f"      “{c.excerpt}”")
    return "\n".join(lines)


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot import cli_service

    request = {"question": args.question, "scope": args.scope.key, "top_k": args.top_k, "alpha": args.alpha}
    reply = cli_service.ask(settings, {**request, "mode": args.mode})  # warm after `citebot up`
    if reply is not None:
        if "error" in reply:
            raise CitebotError(reply["error"])
        print(json.dumps(reply["answer"], indent=2, ensure_ascii=False) if args.json else reply["text"])
        return 0
    with _open(settings) as bot:
        answer = bot.ask(args.question, args.scope, top_k=args.top_k, alpha=args.alpha, mode=args.mode)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
    else:
        say(format_answer(answer))
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings) as bot:
        count = len(bot.documents(args.scope))
        say(f"citebot: {count} document(s) indexed here. Ask a question (empty line or Ctrl-D to quit).")
        print(
            "Add documents with `citebot ingest FILE` or `citebot arxiv ID` in another terminal... "
            "or here: `:ingest PATH`, `:arxiv ID`."
        )
        while True:
            try:
                line = input("? ").strip()
            except EOFError:
                break
            if not line:
                break
            try:
                if line.startswith(":ingest "):
                    for path in _pdfs([Path(p) for p in line.split()[1:]]):
                        try:
                            r = bot.ingest_pdf(
                                _read(path, settings), Provenance(scope=args.scope, user="cli", filename=path.name)
                            )
                            say(f"{path.name}: {r.document.title} — {r.document.pages} pages, {r.document.chunks} chunks")
                        except CitebotError as error:
                            say(f"{path.name}: {error}")
                elif line.startswith(":arxiv "):
                    ids = list(dict.fromkeys(line.split()[1:]))
                    for o in bot.ingest_arxiv(ids, Provenance(scope=args.scope, user="cli", source="arxiv")):
                        say(f"{o.requested_id}: {o.result.document.title if o.result else o.error}")
                else:
                    say(format_answer(bot.ask(line, args.scope)), "\n")
            except CitebotError as error:
                say(f"citebot: {error}")
    return 0


def cmd_docs(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings) as bot:
        docs = bot.documents(args.scope)
    if args.json:
        print(json.dumps([d.to_dict() for d in docs], indent=2))
        return 0
    if not docs:
        print("No documents here yet. `citebot ingest FILE.pdf` or `citebot arxiv 1706.03762` adds one.")
    for d in docs:
        say(f"{d.document_id[:12]}  {terminal_safe(d.title)[:70]:<70}  {d.source:<6} {d.pages:>4} p.  {d.added_at}")
    return 0


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings) as bot:
        removed = bot.forget(args.doc, args.scope)
    if args.json:
        print(json.dumps(removed.to_dict()))
    else:
        say(f"Forgot: {removed.title}")
    return 0


def cmd_dag(args: argparse.Namespace, settings: Settings) -> int:
    from dataflows.dag import render_dataflows

    for path in render_dataflows(args.out, args.format):
        print(path)
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.runner import serve

    serve(settings)
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from citebot.doctor import format_checks, run_checks

    checks = run_checks(settings)
    print(format_checks(checks))
    return 0 if all(c.ok for c in checks) else 1


def cmd_feedback(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings) as bot:
        rows = bot.feedback_report()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    up = sum(1 for r in rows if r["helpful"])
    print(f"{len(rows)} vote(s): {up} 👍, {len(rows) - up} 👎")
    for r in sorted(rows, key=lambda r: str(r.get("at")), reverse=True)[:50]:
        say(f"  {'👍' if r['helpful'] else '👎'}  {r.get('scope', '')}  {r.get('user', '')}  {r.get('question', '')[:80]}")
    return 0


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from bot import cli_service, weaviate_daemon

    daemon, started = weaviate_daemon.up(settings)
    service = cli_service.start(settings)  # keeps the model and drivers loaded for `citebot ask`
    if args.json:
        print(json.dumps({**daemon.__dict__, "started": started, "service_pid": service}))
    else:
        state = "started" if started else "already running"
        print(
            f"Weaviate {state} on {weaviate_daemon.HOST}:{daemon.port} (pid {daemon.pid}, data in {daemon.data_path}), "
            f"with citebot's warm service (pid {service}); `citebot down` stops both."
        )
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from bot import cli_service, weaviate_daemon

    cli_service.stop(settings)
    daemon = weaviate_daemon.down(settings)
    if args.json:
        print(json.dumps({"stopped": daemon.pid if daemon else None}))
    else:
        print(f"Weaviate stopped (pid {daemon.pid})." if daemon else "No Weaviate started by `citebot up` is running.")
    return 0


COMMANDS = {
    "ingest": cmd_ingest,
    "arxiv": cmd_arxiv,
    "ask": cmd_ask,
    "chat": cmd_chat,
    "docs": cmd_docs,
    "forget": cmd_forget,
    "dag": cmd_dag,
    "serve": cmd_serve,
    "doctor": cmd_doctor,
    "feedback": cmd_feedback,
    "up": cmd_up,
    "down": cmd_down,
}


if __name__ == "__main__":
    sys.exit(main())
