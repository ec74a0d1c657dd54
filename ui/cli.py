"""The `kilde serve` and `kilde demo` verbs (registered by assistant/cli.py)."""

from __future__ import annotations

from assistant.core.config import add_reader_option

EXAMPLES = {
    "serve": """examples:
  kilde serve                                   # http://127.0.0.1:7860 (chat), /widget, /docs (API)
  kilde serve --port 8000
  KILDE_AUTH_MODE=proxy KILDE_TRUSTED_PROXIES=10.0.0.5 kilde serve --host 0.0.0.0
  KILDE_ALLOWED_ORIGINS=https://intranet.example.org kilde serve   # may embed /widget

  Needs an index: kilde ingest corpus/""",
    "mcp": """examples:
  kilde mcp                                     # stdio: for an assistant that launches it (see docs/integrations.md)
  kilde mcp --transport http --port 7861        # streamable HTTP at http://127.0.0.1:7861/mcp""",
    "demo": """examples:
  kilde ingest corpus/ && kilde demo            # what `make demo` does""",
}


MCP_PORT = 7861


def _add_server_options(p) -> None:
    p.add_argument(
        "--host", help="address to bind (env KILDE_HOST, default 127.0.0.1; localhost: 127.0.0.1 and ::1)"
    )
    p.add_argument(
        "--port", type=int, help="port (env KILDE_PORT, default 7860; 0: a free one, named when it starts)"
    )
    add_reader_option(p)


def register(sub, command) -> None:
    p = command("serve", "Serve the chat UI, the embeddable widget and the HTTP API.")
    p.epilog = EXAMPLES["serve"]
    _add_server_options(p)
    p.set_defaults(handler=cmd_serve)

    p = command("mcp", "Serve the archive to MCP clients: search and ask tools, articles as resources.")
    p.epilog = EXAMPLES["mcp"]
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio", help="default stdio")
    p.add_argument(
        "--host",
        help="address to bind with --transport http (default 127.0.0.1; localhost: 127.0.0.1 and ::1)",
    )
    p.add_argument(
        "--port",
        type=int,
        help=f"port with --transport http (default {MCP_PORT}; 0: a free one, named when it starts)",
    )
    add_reader_option(p)
    p.set_defaults(handler=cmd_mcp)

    p = command("demo", "Serve the chat on the ingested samples and print where to open it.")
    p.epilog = EXAMPLES["demo"]
    _add_server_options(p)
    p.set_defaults(handler=cmd_demo)


def _settings(args):
    from assistant.core.config import settings_from

    return settings_from(args, host=args.host, port=args.port)


def cmd_serve(args) -> int:
    from ui.server import serve

    return serve(
        _settings(args),
        banner=lambda url: f"Kilde is serving {url}/ (widget: /widget/, API: /docs). Ctrl-C stops it.",
    )


def cmd_mcp(args) -> int:
    from assistant.core.errors import ConfigError
    from ui.mcp_server import run

    if args.transport == "stdio":
        # Both were dropped unseen: `kilde mcp --port 7861` served stdio, waiting on a terminal for JSON.
        for flag, value in (("--host", args.host), ("--port", args.port)):
            if value is not None:
                raise ConfigError(
                    f"{flag} is for --transport http; stdio, the default transport, listens on no address "
                    f"(kilde mcp --transport http {flag} {value})"
                )
    elif args.port is None:
        args.port = MCP_PORT
    return run(_settings(args), args.transport)


def cmd_demo(args) -> int:
    from ui.server import serve

    return serve(
        _settings(args),
        banner=lambda url: (
            f"\nKilde is ready: open {url}/\n"
            f"  try: What does Article 4 commit each side to?  (click [1] to see the highlighted quote)\n"
            f"  widget: {url}/widget/   API: {url}/docs   health: {url}/readyz\n"
            "Ctrl-C stops it.\n"
        ),
    )
