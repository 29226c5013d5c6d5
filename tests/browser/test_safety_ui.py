"""Model output is untrusted: nothing in a message or a tool result may run in the page."""

from __future__ import annotations

import re

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.browser.helpers import new_session, open_session, send, wait_idle

pytestmark = pytest.mark.browser

PAYLOAD = (
    "Look: <script>window.__pwned = 'script'</script>\n\n"
    "<img src=x onerror=\"window.__pwned = 'img'\">\n\n"
    "<svg onload=\"window.__pwned = 'svg'\"><circle r=1></circle></svg>\n\n"
    "<a href=\"javascript:window.__pwned = 'href'\">js link</a> and "
    "<a href=\"https://example.org/\" onclick=\"window.__pwned = 'click'\">a link</a>\n\n"
    "<iframe src=\"javascript:parent.__pwned = 'iframe'\"></iframe>"
    "<form action=\"/api/sessions\"><button>go</button></form>\n\n"
    "[markdown link](https://example.org/docs) <b onmouseover=\"window.__pwned = 'hover'\">bold</b>\n"
)


@pytest.mark.parametrize("csp", ["with-csp", "without-csp"])
def test_script_and_handlers_in_output_do_nothing(csp: str, ui: str, api: httpx.Client,
                                                  new_page, scripted: ScriptedProvider,
                                                  opencode: EmbeddedOpencode,
                                                  script_key: str) -> None:
    target = opencode.directory / f"{script_key}.html"
    marker = scripted.script(script_key, [
        [{"reasoning": PAYLOAD}, {"text": PAYLOAD},
         {"tool": "write", "args": {"filePath": str(target), "content": PAYLOAD}}],
        [{"text": "Written."}],
    ])
    sid = new_session(api)
    page = new_page()
    if csp == "without-csp":
        # The sanitiser alone must hold: serve index.html without its Content-Security-Policy.
        def strip(route) -> None:
            response = route.fetch()
            html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", response.text())
            route.fulfill(response=response, body=html)
        page.route(re.compile(r"^[^?]*://[^/]+/(\?.*)?$"), strip)
    open_session(page, ui, sid)
    send(page, f"Show me {marker}")
    wait_idle(page)
    page.locator("[data-testid=part-reasoning] summary").first.click()  # renders reasoning too
    page.locator("[data-testid=part-text] b").first.hover()
    page.locator("[data-testid=part-text] a", has_text="a link").first.click(modifiers=["Alt"])
    page.wait_for_timeout(300)

    assert page.evaluate("() => window.__pwned") is None
    report = page.evaluate("""() => {
      const root = document.querySelector('[data-testid=transcript]');
      const all = [...root.querySelectorAll('*')];
      return {
        scripts: root.querySelectorAll('script, iframe, form, object, embed').length,
        handlers: all.flatMap(e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on')),
        jsLinks: [...root.querySelectorAll('a[href]')].filter(a => /^\\s*javascript:/i.test(a.getAttribute('href'))).length,
        links: [...root.querySelectorAll('a[href^=http]')].map(a => a.getAttribute('rel') || ''),
        remoteImages: [...root.querySelectorAll('img[src]')].filter(i => !i.getAttribute('src').startsWith('data:')).length,
        text: root.textContent,
      };
    }""")
    assert report["scripts"] == 0
    assert report["handlers"] == []
    assert report["jsLinks"] == 0
    assert report["links"] and all("noopener" in rel for rel in report["links"]), report["links"]
    assert report["remoteImages"] == 0
    # The write card shows the payload as text, not as markup.
    card = page.locator("[data-testid=part-tool][data-tool=write]")
    assert card.locator("details").get_attribute("open") is not None  # opens on its diff
    assert "<script>window.__pwned = 'script'</script>" in card.inner_text()
    assert len(page.context.pages) == 1
    page.errors.check()
