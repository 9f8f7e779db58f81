"""The Slack bot: a thin layer that turns Slack events into ``dataflows.app.Citebot`` calls.

``bot.app.build_app`` wires listeners (``bot/listeners/``), ``bot.runner.serve`` runs it
(Socket Mode with ``SLACK_APP_TOKEN``, HTTP mode otherwise). ``bot.incoming`` parses each payload
once, ``bot.guard`` is every listener's preamble; docs/slack.md lists the Slack limits kept to.
"""
