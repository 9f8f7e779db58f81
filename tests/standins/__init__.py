"""Stand-in servers that speak real HTTP protocols on 127.0.0.1 (OpenAI, arXiv; Slack later)."""
