"""What a browser shows when Kilde is embedded by a site that KILDE_ALLOWED_ORIGINS does not list.

The rules themselves stay in ui/security.py (CSP `frame-ancestors`, CORS, the origin check); this module
only turns a silent failure into a readable one, with nothing of the app in it:

- an `<iframe>` on such a site: when the browser names the frame (`Sec-Fetch-Dest: iframe`) and the page
  (`Referer`), Kilde answers with a small static page that any site may frame, saying which setting to
  change. Without those headers the real page is sent and the browser blocks it (`frame-ancestors`).
- `<gradio-app>` on such a site: `/gradio.js` (a module script, so the browser sends `Origin`) is answered
  with a script that only shows the same notice in place of the app.
- any other refusal of a page the browser navigates to (a form posted from elsewhere, a request from
  another address in auth mode `none`, …) is an HTML page with the refusal's message, not raw JSON.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

FRAME_DESTINATIONS = ("iframe", "frame", "embed", "object")
SETTING = "KILDE_ALLOWED_ORIGINS"

# The notice page: static text, no script, no form, no link into the app. Framing it harms nobody, so it
# is the one response any site may frame.
NOTICE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors *; base-uri 'none'; form-action 'none'"
)
PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0;padding:1rem;color:#18181b;background:#fffbeb;"
    "line-height:1.45}h1{font-size:1.1rem;margin:0 0 .5rem}code{background:#fef3c7;padding:0 .2rem;"
    "overflow-wrap:anywhere}p{margin:.4rem 0}"
)


def page_origin(url: str | None) -> str | None:
    """`https://intranet.example.org/page?x` -> `https://intranet.example.org`; None unless http(s)."""
    try:
        parts = urlsplit(url or "")
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def framing_origin(method: str, headers) -> str | None:
    """The origin of the page framing this request, when the browser says it is a frame and who asks."""
    if method != "GET" or headers.get("sec-fetch-dest", "") not in FRAME_DESTINATIONS:
        return None
    return page_origin(headers.get("referer"))


def is_navigation(headers) -> bool:
    """A page the browser is navigating to (so a person reads the answer), not a script's request."""
    mode = headers.get("sec-fetch-mode")
    if mode:
        return mode == "navigate"
    return headers.get("accept", "").startswith("text/html")


def html_page(title: str, paragraphs: list[str]) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head>"
        f'<body><main role="alert"><h1>{html.escape(title)}</h1>{body}</main></body></html>'
    ).encode()


def blocked_frame_page(origin: str) -> bytes:
    site = html.escape(origin)
    return html_page(
        "Kilde cannot be shown on this site",
        [
            f"This page (<code>{site}</code>) is not allowed to embed Kilde.",
            f"To allow it, add <code>{site}</code> to <code>{SETTING}</code> on the Kilde server "
            f"(comma-separated, scheme://host:port) and restart Kilde.",
            f"Kilde kan ikke vises her: legg <code>{site}</code> til i <code>{SETTING}</code> "
            "på Kilde-serveren.",
        ],
    )


def refusal_page(status: int, message: str) -> bytes:
    return html_page(f"Kilde: {status}", [html.escape(message)])


# A notice in place of a `<gradio-app>` (a page not allowed, a policy that stops the widget): its first line bold,
# every line set with textContent.
NOTICE_BOX_JS = """const kildeNotice = (className, texts, style) => {
  const box = document.createElement('div');
  box.setAttribute('role', 'alert');
  box.className = className;
  box.style.cssText = 'font-family:system-ui,sans-serif;border:1px solid #f59e0b;background:#fffbeb;' +
    'color:#18181b;border-radius:8px;padding:0.8rem;line-height:1.45' + style;
  texts.forEach((text, i) => {
    const p = document.createElement(i === 0 ? 'strong' : 'p');
    p.textContent = text;
    p.style.display = 'block';
    p.style.margin = '0.3rem 0';
    box.appendChild(p);
  });
  return box;
};
"""

# In place of Gradio's loader for a page whose origin is not allowed: `<gradio-app>` shows the notice.
# Everything it shows is set with textContent; the origin is the page's own, read in the browser.
BLOCKED_SCRIPT = (
    """// Kilde: this site is not in KILDE_ALLOWED_ORIGINS, so the widget is not loaded here.
"""
    + NOTICE_BOX_JS
    + """const lines = (origin) => [
  'Kilde cannot be shown on this site.',
  `This page (${origin}) is not allowed to embed Kilde. To allow it, add ${origin} to SETTING on the ` +
    'Kilde server (comma-separated, scheme://host:port) and restart Kilde.',
  `Kilde kan ikke vises her: legg ${origin} til i SETTING på Kilde-serveren.`,
];
class KildeNotAllowed extends HTMLElement {
  connectedCallback() {
    this.replaceChildren(kildeNotice('kilde-not-allowed', lines(window.location.origin), ''));
  }
}
if (!customElements.get('gradio-app')) customElements.define('gradio-app', KildeNotAllowed);
"""
).replace("SETTING", SETTING)
