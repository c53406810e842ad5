#!/usr/bin/env python3
"""Open every page of the built book in a real, offline, headless browser.

    python scripts/browser_check.py [_build/html] [--screenshots _build/screenshots]

1. Static pass (always, no browser needed): no page or stylesheet references a
   remote script, stylesheet, image, font or frame; every internal link
   (``href`` to a local file, with its ``#anchor``) resolves.
2. Browser pass (Debian ``chromium`` + ``chromedriver`` driven by selenium over the
   DevTools protocol): the site is served by ``http.server`` on 127.0.0.1 and
   chromium runs with every non-loopback request blocked (host-resolver rules
   plus a dead proxy), so a CDN dependency shows up as a failure. On every page:
   every ``<img>`` has loaded (``naturalWidth > 0``); if the page has maths,
   MathJax has typeset it (``mjx-container`` elements, no raw ``\\(``, ``\\[``,
   ``$$`` left outside code); no Python traceback or error output; no request
   left the machine, none got a 404, the console shows no errors; every link in
   the rendered DOM resolves. Screenshots of the landing page and the first
   chapter go to ``--screenshots``.

If chromium, chromedriver or selenium is missing, the browser pass is skipped
with a message (exit 0) unless ``--require-browser`` or ``BROWSER_CHECK_REQUIRED=1``.
Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--window-size=1280,900",
    "--lang=en-US",
    # Offline: no name resolves except the loopback server, and anything that
    # still tries to leave (e.g. a literal IP) goes to a dead proxy.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1",
]

REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)  # http://, https://, //host
CSS_REMOTE = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*((?:https?:)?//[^'")\s]+)""", re.I)
RESOURCE_ATTRS = {
    "script": ["src"],
    "img": ["src", "srcset"],
    "iframe": ["src"],
    "source": ["src", "srcset"],
    "video": ["src", "poster"],
    "audio": ["src"],
    "embed": ["src"],
    "object": ["data"],
}
LINK_RESOURCE_RELS = {"stylesheet", "preload", "modulepreload", "icon", "shortcut", "manifest",
                      "prefetch", "preconnect", "dns-prefetch", "apple-touch-icon"}


# ------------------------------------------------------------------ static pass
class PageParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.remote: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        for key in ("id", "name"):
            if key in a and (key == "id" or tag == "a"):
                self.ids.add(a[key])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        for attr in RESOURCE_ATTRS.get(tag, []):
            for url in _urls(a.get(attr, ""), attr):
                if REMOTE.match(url):
                    self.remote.append(f"<{tag} {attr}={url}>")
        if tag == "link":
            rels = set(a.get("rel", "").lower().split())
            if rels & LINK_RESOURCE_RELS and REMOTE.match(a.get("href", "")):
                self.remote.append(f"<link rel={a.get('rel')} href={a['href']}>")


def _urls(value: str, attr: str) -> list[str]:
    if not value:
        return []
    if attr == "srcset":
        return [part.strip().split()[0] for part in value.split(",") if part.strip()]
    return [value.strip()]


@functools.cache
def parse_page(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def html_pages(site: Path) -> list[Path]:
    skip = {"_static", "_sources", "_images", "_downloads"}
    return sorted(
        p for p in site.rglob("*.html")
        if not (set(p.relative_to(site).parts[:-1]) & skip)
    )


def check_link(site: Path, page: Path, href: str) -> str | None:
    """None if *href* (as written in *page*) resolves inside *site*, else a message."""
    href = href.strip()
    if not href or REMOTE.match(href) or re.match(r"^[a-z][a-z0-9+.-]*:", href, re.I):
        return None  # external (launch buttons, arXiv, mailto:, javascript:) — not loaded
    parts = urllib.parse.urlsplit(href)
    target = (page.parent / urllib.parse.unquote(parts.path)).resolve() if parts.path else page
    return check_target(site, target, urllib.parse.unquote(parts.fragment), href)


def check_url(site: Path, url: str) -> str | None:
    """Like :func:`check_link` for an absolute URL on the local server."""
    parts = urllib.parse.urlsplit(url)
    target = (site / urllib.parse.unquote(parts.path).lstrip("/")).resolve()
    return check_target(site, target, urllib.parse.unquote(parts.fragment), url)


def check_target(site: Path, target: Path, frag: str, href: str) -> str | None:
    site = site.resolve()
    if target.is_dir():
        target = target / "index.html"
    try:
        rel = target.relative_to(site)
    except ValueError:
        return f"{href!r} points outside the site"
    if not target.is_file():
        return f"{href!r}: no such file {rel}"
    if frag and target.suffix == ".html" and frag not in parse_page(target).ids:
        return f"{href!r}: no anchor #{frag} in {rel}"
    return None


def static_checks(site: Path) -> list[str]:
    errors = []
    for page in html_pages(site):
        rel = page.relative_to(site)
        parsed = parse_page(page)
        for item in parsed.remote:
            errors.append(f"{rel}: remote resource {item}")
        for href in parsed.links:
            msg = check_link(site, page.resolve(), href)
            if msg:
                errors.append(f"{rel}: broken link {msg}")
    for css in site.rglob("*.css"):
        for url in CSS_REMOTE.findall(css.read_text(encoding="utf-8", errors="replace")):
            errors.append(f"{css.relative_to(site)}: remote url {url}")
    return errors


# ------------------------------------------------------------------ server
class _Handler(http.server.SimpleHTTPRequestHandler):
    failures: list[tuple[str, str]]  # (message, Referer: the page that asked)

    def log_message(self, fmt, *args):  # quiet
        pass

    def send_error(self, code, message=None, explain=None):
        if not self.path.endswith("/favicon.ico"):
            self.failures.append((f"HTTP {code} for {self.path}", self.headers.get("Referer") or ""))
        super().send_error(code, message, explain)


def serve(site: Path):
    failures: list[tuple[str, str]] = []
    handler = type("Handler", (_Handler,), {"failures": failures})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(site))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, failures


# ------------------------------------------------------------------ browser pass
def find_browser() -> tuple[str | None, str | None, str]:
    chromium = next((shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome",
                                                "google-chrome-stable") if shutil.which(c)), None)
    driver = shutil.which("chromedriver")
    if driver is None and os.environ.get("CHROMEWEBDRIVER"):  # GitHub's runners
        candidate = Path(os.environ["CHROMEWEBDRIVER"]) / "chromedriver"
        driver = str(candidate) if candidate.is_file() else None
    try:
        import selenium  # noqa: F401
    except ImportError:
        return chromium, driver, "the Python package selenium is not installed"
    if not chromium:
        return None, driver, "chromium not found (apt-get install chromium chromium-driver)"
    if not driver:
        return chromium, None, "chromedriver not found (apt-get install chromium-driver)"
    return chromium, driver, ""


PAGE_PROBE = r"""
const done = arguments[arguments.length - 1];
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const t0 = Date.now();
  while (document.readyState !== "complete" && Date.now() - t0 < 30000) await sleep(50);
  for (const img of document.images) { if (img.loading === "lazy") img.loading = "eager"; }
  let mathjax = "absent";
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    try { await window.MathJax.startup.promise; mathjax = "ready"; }
    catch (e) { mathjax = "error: " + e; }
  } else if (window.MathJax) {
    mathjax = "configured but not loaded";
  }
  while ([...document.images].some(i => !i.complete) && Date.now() - t0 < 30000) await sleep(50);
  const body = document.body.cloneNode(true);
  body.querySelectorAll("pre, code, script, style, textarea, mjx-container, .highlight, " +
                        ".cell_input, .output, .cell_output").forEach(e => e.remove());
  const text = body.textContent;
  const origin = location.origin;
  done({
    url: location.href,
    title: document.title,
    images: [...document.images].map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth,
                                            complete: i.complete})),
    mathNodes: document.querySelectorAll(".math").length,
    mjx: document.querySelectorAll("mjx-container").length,
    mjxErrors: document.querySelectorAll("mjx-merror, [data-mjx-error]").length,
    mathjax: mathjax,
    rawMath: ["\\(", "\\[", "$$"].filter(s => text.includes(s)),
    traceback: document.body.innerText.includes("Traceback (most recent call last)"),
    errorOutputs: document.querySelectorAll(
        ".output.traceback, .output.error, div.traceback, .cell_output .traceback").length,
    links: [...document.querySelectorAll("a[href]")]
             .map(a => a.href).filter(h => h.startsWith(origin + "/")),
    remote: performance.getEntriesByType("resource").map(e => e.name)
             .filter(n => !n.startsWith(origin + "/") && !n.startsWith("data:")
                          && !n.startsWith("blob:")),
    resources: [location.href, ...performance.getEntriesByType("resource").map(e => e.name),
                ...[...document.images].map(i => i.currentSrc || i.src)],
  });
})();
"""


FENCE = "browser-check-fence"


def failed_requests(failures: list[tuple[str, str]], page: str, errors: list[str]) -> list[str]:
    """Drain the server's failed requests: those ``page`` made are returned, the others
    (a late request of an earlier page) go to ``errors`` under the page that made them,
    whose URL the browser sent as the Referer."""
    mine = []
    while failures:
        message, referer = failures.pop(0)
        owner = urllib.parse.unquote(urllib.parse.urlsplit(referer).path).lstrip("/") or page
        if owner == page:
            mine.append(message)
        else:
            errors.append(f"{owner}: {message}")
    return mine


def console_entries(driver, page: str, timeout: float = 10.0) -> list[dict]:
    """The console entries that arrived up to now, for the page ``page``.

    chromedriver delivers console entries asynchronously: an entry the page caused
    can reach the log only after the next navigation, and would then be blamed on the
    next page. So the page writes a fence message to its own console once it has
    been probed, and the log is drained until that fence arrives. The page's own
    console (JavaScript errors, console calls) is emitted in order, so all of it
    comes before the fence. A failed resource load ("URL - Failed to load
    resource"), however, is logged by the network service and may still come after
    the fence: the caller attributes those by URL to the page that requested them.
    """
    marker = f"{FENCE} {page} {time.monotonic_ns()}"
    driver.execute_script("console.info(arguments[0]);", marker)
    entries: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        for entry in driver.get_log("browser"):
            if marker in entry.get("message", ""):
                return entries
            entries.append(entry)
        if time.monotonic() > deadline:
            entries.append({"level": "SEVERE", "message": f"console fence of {page} never arrived "
                                                          f"({timeout:.0f} s): console log incomplete"})
            return entries
        time.sleep(0.05)


def browser_checks(site: Path, shots: Path | None, chromium: str, driver_path: str,
                   first_chapter: str | None) -> list[str]:
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium-manager download
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    errors: list[str] = []
    httpd, http_failures = serve(site)
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    profile = tempfile.mkdtemp(prefix="book-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(90)
        print(f"[browser] {driver.capabilities.get('browserVersion', '?')} on {base}")
        pages = html_pages(site)
        resource_page: dict[str, str] = {}  # resource URL -> first page that loaded it
        for page in pages:
            rel = page.relative_to(site).as_posix()
            driver.get_log("browser")  # drop anything left over (console_entries drains up to a fence)
            driver.get(base + rel)
            info = driver.execute_async_script(PAGE_PROBE)
            page_errors = []
            for img in info["images"]:
                if not img["w"]:
                    page_errors.append(f"image did not load: {img['src']}")
            if info["mathNodes"]:
                if info["mathjax"] != "ready":
                    page_errors.append(f"page has maths but MathJax is {info['mathjax']}")
                elif info["mjx"] < info["mathNodes"]:
                    page_errors.append(
                        f"only {info['mjx']} of {info['mathNodes']} maths elements typeset")
            if info["mjxErrors"]:
                page_errors.append(f"{info['mjxErrors']} MathJax errors")
            if info["rawMath"]:
                page_errors.append(f"raw TeX delimiters left in the text: {info['rawMath']}")
            if info["traceback"] or info["errorOutputs"]:
                page_errors.append("a Python traceback / error output is on the page")
            for url in info["remote"]:
                page_errors.append(f"non-loopback request: {url}")
            for link in sorted(set(info["links"])):
                msg = check_url(site, link)
                if msg:
                    page_errors.append(f"broken link {msg}")
            page_errors += failed_requests(http_failures, rel, errors)
            for url in info["resources"]:
                resource_page.setdefault(url, rel)
            mine = set(info["resources"])
            for entry in console_entries(driver, rel):
                message = entry.get("message", "")
                if entry.get("level") != "SEVERE" or "favicon.ico" in message:
                    continue
                # A failed load ("URL - Failed to load resource: ...") comes from the network
                # service and can overtake the fence: blame the page that requested URL.
                url = message.split(" ", 1)[0]
                owner = rel if entry.get("source") != "network" or url in mine else resource_page.get(url, rel)
                if owner == rel:
                    page_errors.append(f"console: {message}")
                else:
                    errors.append(f"{owner}: console: {message}")
            status = "ok" if not page_errors else "FAIL"
            print(f"[browser] {status:4} {rel}  (images {len(info['images'])}, "
                  f"maths {info['mathNodes']}/{info['mjx']} typeset, links {len(info['links'])})")
            errors += [f"{rel}: {e}" for e in page_errors]

        errors += [f"{rel}: {e}" for e in failed_requests(http_failures, rel, errors)]  # the last stragglers

        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            targets = [("landing", "index.html")]
            if first_chapter:
                targets.append((f"chapter-{Path(first_chapter).stem}", first_chapter))
            for name, rel in targets:
                driver.get(base + rel)
                driver.execute_async_script(PAGE_PROBE)
                height = driver.execute_script(
                    "return Math.max(document.body.scrollHeight, "
                    "document.documentElement.scrollHeight, 900)")
                driver.set_window_size(1280, min(int(height), 5000))
                time.sleep(0.3)
                out = shots / f"{name}.png"
                driver.save_screenshot(str(out))
                driver.set_window_size(1280, 900)
                print(f"[browser] screenshot {out}")
    finally:
        driver.quit()
        httpd.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return errors


def first_chapter_html(site: Path) -> str | None:
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bookinfo

        for nb in bookinfo.chapters():
            rel = nb.relative_to(bookinfo.ROOT).with_suffix(".html")
            if (site / rel).is_file():
                return rel.as_posix()
    except Exception:  # pragma: no cover - screenshots are a nicety
        pass
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("site", nargs="?", default=str(ROOT / "_build" / "html"))
    ap.add_argument("--screenshots", default=None, help="folder for PNG screenshots")
    ap.add_argument("--chapter", default=None,
                    help="page (relative to the site) for the chapter screenshot")
    ap.add_argument("--require-browser", action="store_true",
                    default=os.environ.get("BROWSER_CHECK_REQUIRED") == "1",
                    help="fail instead of skipping when chromium is unavailable")
    args = ap.parse_args(argv)

    site = Path(args.site).resolve()
    if not (site / "index.html").is_file():
        print(f"browser_check: no built book at {site} (run `make book` first)", file=sys.stderr)
        return 1

    errors = static_checks(site)
    print(f"[static] {len(html_pages(site))} pages: "
          f"{'ok' if not errors else f'{len(errors)} problem(s)'}")

    chromium, driver, why = find_browser()
    if why:
        msg = f"browser_check: SKIPPED the browser pass: {why}"
        if args.require_browser:
            errors.append(msg)
        else:
            print(msg)
    else:
        chapter = args.chapter or first_chapter_html(site)
        shots = Path(args.screenshots) if args.screenshots else None
        errors += browser_checks(site, shots, chromium, driver, chapter)

    if errors:
        print(f"\nbrowser_check: {len(errors)} problem(s):", file=sys.stderr)
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        return 1
    print("browser_check: all pages passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
