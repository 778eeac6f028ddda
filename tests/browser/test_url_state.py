"""The view in the URL, both ways: Back and Forward step through views inside the tab (and never leave
TensorBoard), a hash edited by hand or a pasted link shows its view, and the Link button gives the URL
of the view, also inside another site's iframe (where the page's own address is the embedder's)."""

import http.server
import threading
import time
import urllib.parse

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from .conftest import new_context

PLUGIN_FRAME = 'iframe[src*="plugin_entry.html?name=tb_plus"]'
STANDALONE = "/data/plugin/tb_plus/standalone"


def wait_for(predicate, page, what, timeout=45.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        page.wait_for_timeout(50)
    raise AssertionError("timed out waiting for " + what)


def charts(scope):
    """The tags of the charts shown, or None while the frame reloads (a view from the URL starts afresh:
    a locator read then finds its execution context destroyed)."""
    try:
        return scope.locator(".tbp-chart").evaluate_all("els => els.map(e => e.dataset.tag)")
    except PlaywrightError:
        return None


def test_back_and_forward_step_through_views_inside_the_tensorboard_tab(page, tensorboard_url):
    page.goto(tensorboard_url + "/#tb_plus")
    frame = page.frame_locator(PLUGIN_FRAME)
    frame.get_by_test_id("tag-train/loss").click()
    wait_for(lambda: "p.tb_plus.tag=train%2Floss" in page.url, page, what="first chart in the hash")
    frame.get_by_test_id("tag-eval/loss").click()
    wait_for(lambda: "p.tb_plus.tag=eval%2Floss" in page.url, page, what="second chart in the hash")
    expect(frame.locator(".tbp-chart")).to_have_count(2)

    page.go_back()
    wait_for(lambda: "eval%2Floss" not in page.url, page, what="Back")
    assert page.url.startswith(tensorboard_url) and "#tb_plus" in page.url  # still in TensorBoard, on the tab
    frame = page.frame_locator(PLUGIN_FRAME)
    frame.get_by_test_id("chart-train/loss").wait_for()
    wait_for(lambda: charts(frame) == ["train/loss"], page, what="the view before the second chart")

    page.go_forward()
    frame = page.frame_locator(PLUGIN_FRAME)
    wait_for(lambda: charts(frame) == ["train/loss", "eval/loss"], page, what="Forward")
    assert page.page_errors == []


def test_a_hash_edited_by_hand_shows_its_view(page, tensorboard_url):
    page.goto(tensorboard_url + "/#tb_plus")
    frame = page.frame_locator(PLUGIN_FRAME)
    frame.get_by_test_id("tag-train/loss").click()
    wait_for(lambda: "p.tb_plus.tag=train%2Floss" in page.url, page, what="state in the hash")
    page.evaluate("() => { location.hash = 'tb_plus&p.tb_plus.tag=train%2Facc&p.tb_plus.ylog=1'; }")
    frame = page.frame_locator(PLUGIN_FRAME)
    wait_for(lambda: charts(frame) == ["train/acc"], page, what="the hash's chart")
    expect(frame.get_by_test_id("ylog")).to_be_checked()
    assert page.page_errors == []


def test_back_in_the_standalone_page(page, tensorboard_url):
    page.goto(tensorboard_url + STANDALONE)
    page.get_by_test_id("tag-train/loss").click()
    wait_for(lambda: "tag=train%2Floss" in page.url, page, what="state in the URL")
    page.get_by_test_id("ylog").check()
    wait_for(lambda: "ylog=1" in page.url, page, what="log y in the URL")
    page.go_back()
    wait_for(lambda: "ylog" not in page.url, page, what="Back")
    page.get_by_test_id("chart-train/loss").wait_for()
    expect(page.get_by_test_id("ylog")).not_to_be_checked()
    assert page.page_errors == []


class _Embed(http.server.BaseHTTPRequestHandler):
    src = ""

    def do_GET(self):  # noqa: N802 - http.server's name
        body = ('<!doctype html><title>portal</title><iframe id="tb" src="%s" style="width:1300px;height:800px">'
                "</iframe>" % self.src).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_link_of_a_view_in_another_sites_iframe(page, browser, tensorboard_url):
    """localhost (the portal) frames 127.0.0.1 (TensorBoard): another site. Choices made in the iframe are
    in the Link's URL, which opens the same view in a fresh browser; the portal's address is untouched."""
    # (a view in the src: the iframe's storage may be blocked, and then it would open its first view)
    handler = type("Handler", (_Embed,), {"src": tensorboard_url + STANDALONE + "?tag=train%2Floss"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        portal = "http://localhost:%d/" % server.server_address[1]
        page.goto(portal)
        frame = page.frame_locator("#tb")
        frame.get_by_test_id("tag-eval/loss").click()
        frame.get_by_test_id("chart-eval/loss").wait_for()
        frame.get_by_test_id("share-link").click()
        url_box = frame.get_by_test_id("share-url")
        expect(url_box).to_be_visible()
        link = url_box.input_value()
        assert link.startswith(tensorboard_url + STANDALONE)
        tags = [v for k, v in urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query) if k == "tag"]
        assert tags == ["train/loss", "eval/loss"]
        assert page.url == portal
        assert page.page_errors == []
    finally:
        server.shutdown()
        server.server_close()
    ctx = new_context(browser, viewport={"width": 1300, "height": 850})
    try:
        fresh = ctx.new_page()
        fresh.goto(link)
        fresh.get_by_test_id("chart-eval/loss").wait_for()
        assert charts(fresh) == ["train/loss", "eval/loss"]
    finally:
        ctx.close()
