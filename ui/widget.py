"""The embeddable widget (`/widget`), its embed snippets, the loader `/gradio.js` sends, and a sample host page.

The widget is the chat in compact form. A host page embeds it with an `<iframe>` or with Gradio's
`<gradio-app>` web component; the Kilde server decides who may do so (KILDE_ALLOWED_ORIGINS, enforced
by CORS and CSP `frame-ancestors`), so the host page holds no secret.

`python -m ui.widget --kilde http://127.0.0.1:7860 --port 8080` serves the sample host page from
another origin, to try the embed (add http://127.0.0.1:8080 to KILDE_ALLOWED_ORIGINS first).
"""

from __future__ import annotations

import argparse
import contextlib
import html
import http.server
from pathlib import Path

from ui.app import STARTED_EVENT, build_app
from ui.embed_notice import NOTICE_BOX_JS, page_origin

STATIC = Path(__file__).with_name("static")
HOST_PAGES = {"iframe": STATIC / "host-iframe.html", "web-component": STATIC / "host-web-component.html"}


# What `/gradio.js` sends a host page: Gradio's loader, after a guard for the host page's language. Gradio's i18n
# sets `<html lang>` to the browser's locale when its first app starts: in a host page that is the host's own
# language (a page in `nb` became `en` in an English browser). The guard puts back the host's value at each such
# write until a Kilde widget says it has started (STARTED_EVENT, ui/app.py); Gradio writes it only before that, and
# from then on the host's own changes stand. The widget says its language on its `<gradio-app>` element instead.
KEEP_HOST_LANG_JS = """{
  const root = document.documentElement;
  const hostLang = root.getAttribute('lang');
  const keep = new MutationObserver(() => {
    if (root.getAttribute('lang') === hostLang) return;
    if (hostLang === null) root.removeAttribute('lang');
    else root.setAttribute('lang', hostLang);
  });
  keep.observe(root, {attributes: true, attributeFilter: ['lang']});
  document.addEventListener('STARTED', () => keep.disconnect(), {once: true});
}
""".replace("STARTED", STARTED_EVENT)


# A host page's Content-Security-Policy can stop the widget outright: without 'unsafe-eval' Gradio's HTML components
# cannot compile their templates, without Kilde's server in connect-src the app cannot load, and either way the
# `<gradio-app>` showed "Loading..." for ever. The browser reports each refusal (`securitypolicyviolation`); one
# of those that stops Kilde's own scripts puts a notice in place of each of Kilde's `<gradio-app>`s, naming what the
# policy lacks and the `<iframe>` embed, which the host page's policy does not reach (but for frame-src).
CSP_NOTICE_JS = (
    """{
"""
    + NOTICE_BOX_JS
    + """  const kilde = new URL(import.meta.url).origin;
  const ours = (url) => typeof url === 'string' && url.startsWith(kilde + '/');
  const lines = (need) => [
    'Kilde cannot run on this page.',
    `This page's Content-Security-Policy blocks what the widget needs (${need}). Embed Kilde with the ` +
      `<iframe> snippet instead (the page then needs only frame-src ${kilde}), or allow ${need}.`,
    `Kilde kan ikke kjøre på denne siden: sidens Content-Security-Policy stopper widgeten (${need}). ` +
      'Bruk <iframe>-koden i stedet.',
  ];
  const show = (app, need) => app.replaceChildren(kildeNotice('kilde-csp-notice', lines(need), ';direction:ltr'));
  document.addEventListener('securitypolicyviolation', (event) => {
    if (event.disposition !== 'enforce') return;
    let need = null;
    if (event.blockedURI === 'eval' && ours(event.sourceFile)) need = `${event.effectiveDirective} 'unsafe-eval'`;
    else if (event.effectiveDirective === 'connect-src' && ours(event.blockedURI)) need = `connect-src ${kilde}`;
    if (need === null) return;
    for (const app of document.querySelectorAll('gradio-app')) {
      if (ours(new URL(app.getAttribute('src') || '', document.baseURI).href) &&
          !app.querySelector(':scope > .kilde-csp-notice')) show(app, need);
    }
  });
}
"""
)


# Each of Kilde's `<gradio-app>`s, those on the page now and those added later, before Gradio's app reads them:
# - its colour scheme is the host page's, unless the snippet names one (Gradio's `theme_mode`: light, dark or
#   system). Gradio followed the browser, so a dark browser made the widget dark inside a light page. The host's
#   scheme is what its root declares (CSS `color-scheme`, else `<meta name="color-scheme">`): dark alone is dark,
#   light and dark together follow the browser, anything else (nothing declared) is light.
# - the snippet's fallback text (FALLBACK) goes: it is there for a page that never runs this script.
# Gradio reads `theme_mode` when the element is upgraded, which for an element added after Gradio has loaded is
# before any observer hears of it, so the property is set too: the app reads that once its styles have loaded.
# Gradio reads it once, and a host page may switch its scheme while the widget is open (a class or attribute on its
# root, a stylesheet or `<meta>` changed, or the browser's own scheme for a page that follows it): the widget follows,
# its conversation kept. Gradio's own dark mode is a `dark` class on the `<gradio-app>` (its `theme_mode` applied
# when the app starts), so the widget is given light or dark, never system, and this script alone switches it.
HOST_SCHEME_JS = """{
  const kilde = new URL(import.meta.url).origin;
  const browserDark = matchMedia('(prefers-color-scheme: dark)');
  const hostScheme = () => {
    let declared = getComputedStyle(document.documentElement).colorScheme;
    if (!declared || declared === 'normal') {
      const meta = document.querySelector('meta[name="color-scheme"]');
      declared = meta ? meta.content : '';
    }
    const words = declared.toLowerCase().split(/[\\s,]+/);
    if (!words.includes('dark')) return 'light';
    return words.includes('light') && !browserDark.matches ? 'light' : 'dark';
  };
  const following = new Set();  // the widgets whose snippet names no scheme
  const show = (app, scheme) => {
    app.setAttribute('theme_mode', scheme);
    app.theme_mode = scheme;
    app.classList.toggle('dark', scheme === 'dark');
  };
  const adopt = (app) => {
    if (!new URL(app.getAttribute('src') || '', document.baseURI).href.startsWith(kilde + '/')) return;
    for (const fallback of app.querySelectorAll(':scope > .FALLBACK')) fallback.remove();
    if (app.hasAttribute('theme_mode') && !following.has(app)) {
      app.theme_mode = app.getAttribute('theme_mode');
      return;
    }
    following.add(app);
    show(app, hostScheme());
  };
  const follow = () => {
    const scheme = hostScheme();
    for (const app of following) {
      if (app.getAttribute('theme_mode') !== scheme || app.classList.contains('dark') !== (scheme === 'dark')) {
        show(app, scheme);
      }
    }
  };
  document.querySelectorAll('gradio-app').forEach(adopt);
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== Node.ELEMENT_NODE) continue;
        if (node.matches('gradio-app')) adopt(node);
        node.querySelectorAll('gradio-app').forEach(adopt);
      }
    }
  }).observe(document, {childList: true, subtree: true});
  // What may change the host's scheme: its root's attributes (a class, a style, data-theme), its <head> (a
  // stylesheet or <meta> added, removed or changed) and the browser's scheme.
  const changes = new MutationObserver(follow);
  changes.observe(document.documentElement, {attributes: true});
  const watchHead = () => document.head && changes.observe(document.head, {childList: true, subtree: true,
    attributes: true, characterData: true});
  if (document.head) watchHead();
  else document.addEventListener('DOMContentLoaded', watchHead, {once: true});
  browserDark.addEventListener('change', follow);
}
""".replace("FALLBACK", "kilde-fallback")


def gradio_loader(gradio_js: str) -> str:
    """Gradio's `gradio.js` (one dynamic import of its app) behind the guard for the host page's language, the
    notice for a Content-Security-Policy that stops the widget, and the host page's colour scheme."""
    return (
        "// Kilde: keep the host page's <html lang>; say when its CSP stops the widget; follow the host's colour"
        " scheme; then Gradio's loader.\n" + (KEEP_HOST_LANG_JS + CSP_NOTICE_JS + HOST_SCHEME_JS + gradio_js)
    )


def build_widget(assistant, settings, limiter, feedback):
    return build_app(assistant, settings, limiter, feedback, compact=True)


def iframe_snippet(kilde_url: str, height: int = 720, theme: str = "light") -> str:
    """The `<iframe>` a host page includes. The frame cannot see the page around it, so its colour scheme is named
    in its URL (Gradio's `__theme`): light by default, as most intranet pages are; `dark`; or `system`, which
    follows the browser."""
    query = "" if theme == "system" else f"?__theme={theme}"
    src = html.escape(kilde_url.rstrip("/") + "/widget/" + query, quote=True)
    return (
        f'<iframe src="{src}" title="Kilde" width="100%" height="{height}" '
        f'style="border: 1px solid #ddd; border-radius: 8px;" loading="lazy"></iframe>'
    )


# What `<gradio-app>` holds until Kilde's `/gradio.js` runs and removes it. A host page whose Content-Security-Policy
# leaves Kilde's server out of `script-src` refuses that script, so nothing of Kilde's runs to say why (the notice of
# CSP_NOTICE_JS needs it): this text, plain markup that needs no script, stays and says it. It reads true while the
# script is on its way too, which is all it shows on a page where the widget loads.
FALLBACK = {
    "en": "Kilde's widget is loading from {origin}. If this text stays, the widget could not load: this page's "
    "Content-Security-Policy must allow scripts from {origin} (script-src), and Kilde's server must be reachable. "
    "The <iframe> embed needs only frame-src {origin}.",
    "nb": "Kildes widget lastes fra {origin}. Blir denne teksten stående, kunne ikke widgeten lastes: sidens "
    "Content-Security-Policy må tillate skript fra {origin} (script-src), og Kilde-serveren må svare. "
    "<iframe>-koden trenger bare frame-src {origin}.",
}


def web_component_snippet(kilde_url: str, language: str = "en") -> str:
    """The `<script>` and `<gradio-app>` a host page includes; `language` (en or nb) is the host page's, for the
    text shown where the widget's script cannot run."""
    base = kilde_url.rstrip("/")
    fallback = html.escape(FALLBACK[language].format(origin=page_origin(base) or base), quote=False)
    base = html.escape(base, quote=True)
    return (
        f'<script type="module" src="{base}/gradio.js"></script>\n'
        f'<gradio-app src="{base}/widget/" eager="true">'
        f'<p class="kilde-fallback" role="status">{fallback}</p></gradio-app>'
    )


def host_page(kilde_url: str, kind: str = "iframe") -> str:
    """A sample intranet page embedding the widget from `kilde_url`."""
    # The sample pages are in Norwegian (`<html lang="nb">`).
    snippet = iframe_snippet(kilde_url) if kind == "iframe" else web_component_snippet(kilde_url, "nb")
    return HOST_PAGES[kind].read_text(encoding="utf-8").replace("<!-- KILDE_EMBED -->", snippet)


def host_server(kilde_url: str, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """A static server for the sample host pages: / (iframe) and /web-component."""
    pages = {
        "/": host_page(kilde_url, "iframe").encode(),
        "/web-component": host_page(kilde_url, "web-component").encode(),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path.split("?")[0])
            self.send_response(200 if body else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, *args):
            pass

    return http.server.ThreadingHTTPServer((host, port), Handler)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui.widget", description="Serve the sample host pages.")
    parser.add_argument("--kilde", default="http://127.0.0.1:7860", help="where Kilde runs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    server = host_server(args.kilde, args.host, args.port)
    print(
        f"sample host pages on http://{args.host}:{args.port}/ (iframe) and /web-component; "
        f"add http://{args.host}:{args.port} to KILDE_ALLOWED_ORIGINS on the Kilde server",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
