"""The course site as a reader sees it, in a real browser (headless Chromium, no network).

Every page: formulas typeset by MathJax, images loaded, nothing requested from outside the
site, no script errors; every animation plays and steps with its buttons; every link between
pages leads to a page. Chromium comes from the system (`apt install chromium` on Debian and
Ubuntu; `$COURSE_CHROMIUM` names another binary): without one the browser tests are skipped,
unless `COURSE_REQUIRE_BROWSER=1` (CI) makes that a failure.
"""

import json
import os
import re
import shutil
from urllib.parse import unquote, urlparse

import pytest

# MathJax 2 asks for its TeX fonts before it settles on the STIX-Web fonts that
# jupyter-server-mathjax ships (and uses); those two probes may fail, nothing else may.
_HARMLESS = re.compile(r"/_static/mathjax/fonts/HTML-CSS/TeX/|^about:blank$")
_TEX_IN_TEXT = re.compile(r"\\(?:frac|mathbb|mathcal|sum|int|log|sqrt|left|right|mathrm|text)"
                          r"\b|\$\$")


def _chromium():
    named = os.environ.get("COURSE_CHROMIUM")
    found = named or next(filter(None, map(shutil.which, (
        "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"))), None)
    if found:
        return found
    message = "no Chromium found: the site's browser tests are skipped (apt install chromium)"
    if os.environ.get("COURSE_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses to start as root with its sandbox (containers, CI).
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


def _pages(site):
    return sorted(json.loads((site / "site.json").read_text())["pages"])


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    problems = []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        ("file:", "data:")) else (problems.append(f"network: {route.request.url}"),
                                  route.abort()))
    page.on("requestfailed", lambda request: None if _HARMLESS.search(request.url) else
            problems.append(f"not loaded: {request.url}"))
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.goto(url)
    page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.isReady && "
                           "!MathJax.Hub.queue.pending && !MathJax.Hub.queue.running",
                           timeout=60_000)
    return page, problems


def test_every_page_renders_offline(site, browser):
    failures = {}
    for name in _pages(site):
        page, problems = _open(browser, (site / name).as_uri())
        text = page.evaluate("Array.from(document.querySelectorAll('.jp-MarkdownOutput'))"
                             ".map(e => e.innerText).join('\\n')")
        raw = sorted(set(_TEX_IN_TEXT.findall(text)))
        if raw:
            problems.append(f"formulas left as TeX: {raw[:5]}")
        if page.evaluate("document.querySelectorAll('.MathJax_Error, merror').length"):
            problems.append("MathJax reported an error in a formula")
        source = (site / name).read_text(encoding="utf-8")
        if "$" in source and "jp-MarkdownOutput" in source:
            typeset = page.evaluate("document.querySelectorAll('span.MathJax, "
                                    "div.MathJax_Display').length")
            font = page.evaluate("MathJax.OutputJax['HTML-CSS'] && "
                                 "MathJax.OutputJax['HTML-CSS'].fontInUse")
            if typeset and font != "STIX-Web":
                problems.append(f"formulas drawn with {font!r}, not the STIX-Web web fonts")
        broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && "
                               "i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 60))")
        problems += [f"image not shown: {alt}" for alt in broken]
        unnamed = page.evaluate("Array.from(document.images).filter(i => !i.alt).length")
        if unnamed:
            problems.append(f"{unnamed} image(s) without alternative text")
        page.close()
        if problems:
            failures[name] = problems
    assert not failures, json.dumps(failures, indent=1)


def test_animations_play_and_step(site, browser):
    pages = [name for name in _pages(site)
             if 'class="animation"' in (site / name).read_text(encoding="utf-8")]
    assert pages, "no page shows an animation: the executed copies lack their outputs"
    for name in pages:
        page, problems = _open(browser, (site / name).as_uri())
        animations = page.locator("div.animation")
        for number in range(animations.count()):
            animation = animations.nth(number)
            animation.scroll_into_view_if_needed()
            slider, image = animation.locator("input.anim-slider"), animation.locator("img")
            assert image.evaluate("i => i.complete && i.naturalWidth > 0"), name
            icons = animation.locator("button svg")
            assert icons.count() == 9, f"{name}: {icons.count()} button icons"
            assert all(icons.nth(i).bounding_box()["width"] > 0 for i in range(9)), name
            assert page.locator("[id^=_anim_note]").count() == 0, (
                f"{name}: the 'scripts are blocked' note is still shown")
            animation.locator("button[title='First frame']").click()
            first = image.get_attribute("src")
            animation.locator("button[title='Next frame']").click()
            assert slider.input_value() == "1", f"{name}: Next frame did not step"
            assert image.get_attribute("src") != first, f"{name}: the image did not change"
            animation.locator("button[title='Play']").click()
            for _ in range(50):  # up to 5 s; a short clip may loop past its last frame
                page.wait_for_timeout(100)
                if slider.input_value() != "1":
                    break
            animation.locator("button[title='Pause']").click()
            assert slider.input_value() != "1", f"{name}: Play did not advance the frames"
        assert not problems, problems
        page.close()


def test_links_between_pages_lead_to_pages(site):
    missing = []
    for name in _pages(site):
        text = (site / name).read_text(encoding="utf-8")
        for href in re.findall(r'<a [^>]*href="([^"]+)"', text):
            url = urlparse(href)
            if url.scheme or href.startswith("#") or not url.path:
                continue
            target = (site / name).parent / unquote(url.path)
            if not target.resolve().is_file():
                missing.append(f"{name} -> {href}")
    assert not missing, "\n".join(missing)
