"""The viewer in a real browser: Debian's headless Chromium, driven by Playwright.

A kept counterexample's page is loaded from a file, stepped with the keyboard to the step
where the property breaks, and what the page shows there is asserted: the highlighted node,
the thread's program counter, the held blocks, the violation text. A screenshot goes to the
test's tmp dir (its path is printed; ``pytest -s`` shows it). ``.ci/run`` installs Chromium;
without /usr/bin/chromium these tests are skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nbbs.check import modelcheck, viewer

CHROMIUM = os.environ.get("NBBS_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DATA = Path(__file__).parent / "data" / "counterexamples"

pytestmark = pytest.mark.skipif(
    not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and shutil.which("chromium") is None,
    reason=f"no Chromium at {CHROMIUM}: `apt-get install chromium` (.ci/run does) to run the browser tests",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the module, with a fresh profile, no network of its own."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    exe = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=exe,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        # The page is self-contained: any request beyond its own file is a bug. Record and refuse it.
        requests: list[str] = []

        def refuse(route: Any) -> None:
            url = route.request.url
            if url.startswith("file://"):
                route.continue_()
            else:
                requests.append(url)
                route.abort()

        context.route("**/*", refuse)
        yield Browser(context, requests)
        context.close()


@dataclass
class Browser:
    """The browser context, and every request a page made beyond its own file (none expected)."""

    context: Any
    requests: list[str]


def open_page(browser: Browser, path: Path) -> tuple[Any, list[str]]:
    """A tab showing the page at ``path``, and the script errors it reports."""
    tab = browser.context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.goto(path.as_uri())
    tab.wait_for_selector("body[data-ready='1']")
    return tab, errors


def test_stepping_to_the_overlap_shows_the_node_the_pc_and_the_violation(
    browser: Browser, tmp_path: Path
) -> None:
    cx = modelcheck.load_counterexample(DATA / "corrected-a.json")
    trace = viewer.from_counterexample(cx)
    page = viewer.write(trace, tmp_path / "corrected-a.html")
    tab, errors = open_page(browser, page)
    assert tab.inner_text("#position") == f"step 0 / {len(trace.steps)}"
    assert "breaks at step 39" in tab.inner_text("#violation")

    # Step with the keyboard: right arrow to the first step, then on to the breaking one.
    tab.keyboard.press("ArrowRight")
    first = trace.steps[0]
    assert tab.get_attribute(".node.current", "data-node") == str(first.node)
    assert tab.inner_text(f".thread[data-thread='{first.thread}'] td.pc") == dict(first.state)["pc"]
    for i, st in enumerate(trace.steps[1:], start=2):
        tab.keyboard.press("ArrowRight")
        # At every step: the node it accessed is the one highlighted, its thread's pc is shown.
        assert tab.get_attribute(".node.current", "data-node") == str(st.node), f"step {i}"
        assert tab.inner_text(f".thread[data-thread='{st.thread}'] td.pc") == dict(st.state)["pc"]
    assert tab.inner_text("#position") == "step 39 / 39"

    # At the breaking step: thread 0's occupy of the root succeeds, its alloc returns node 1...
    last = trace.steps[-1]
    assert (last.thread, last.node, last.pc) == (0, 1, "alloc:occupy")
    assert tab.get_attribute(".node.current", "data-node") == "1"
    assert "T0 cas" in tab.inner_text(".node.current .tag")
    access = tab.inner_text("#access")
    assert "Step 39: T0 cas node 1" in access and "[alloc:occupy]" in access and "10011" in access
    assert tab.inner_text(".thread[data-thread='0'] td.pc") == "done:ok"
    assert tab.inner_text(".thread[data-thread='1'] td.pc") == "free:unmark-load"
    # ...while thread 2 holds page 11: both held blocks shown, both marked as overlapping.
    held = tab.locator(".bar.held.overlap")
    assert sorted(held.all_inner_texts()) == ["T0: node 1, pages 0-7", "T2: node 11, page 3"]
    # The tree rings the two overlapping blocks (nodes 1 and 11).
    ringed = tab.eval_on_selector_all(".node.clash", "els => els.map(e => e.dataset.node)")
    assert sorted(ringed) == ["1", "11"] and tab.inner_text(".node[data-node='11'] .why") == "overlap"
    violation = tab.inner_text("#violation")
    assert "Violated here: (a) no two held blocks overlap: held blocks 11 and 1 overlap" in violation
    shot = tmp_path / "corrected-a-step-39.png"
    tab.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000

    # Home goes back to the start, End to the last step; one step back the violation is ahead.
    tab.keyboard.press("Home")
    assert tab.inner_text("#position") == "step 0 / 39" and tab.locator(".node.current").count() == 0
    tab.keyboard.press("End")
    tab.keyboard.press("ArrowLeft")
    assert tab.inner_text("#position") == "step 38 / 39"
    assert "breaks at step 39" in tab.inner_text("#violation")
    assert errors == [] and browser.requests == []


def test_a_lost_cas_is_marked_on_its_node_and_in_the_access(browser: Browser, tmp_path: Path) -> None:
    trace = viewer.from_schedule("d2-m2-counted:a0@0,a0@0:abab")
    page = viewer.write(trace, tmp_path / "lost-cas.html")
    tab, errors = open_page(browser, page)
    for _ in range(4):
        tab.keyboard.press("ArrowRight")
    assert tab.get_attribute(".node.current.failed", "data-node") == "4"
    assert "CAS FAILED" in tab.inner_text("#access") and "T1 cas (FAILED) node 4" in tab.inner_text("#access")
    assert "all checks passed" in tab.inner_text("#violation")
    assert "[alloc(order 0, hint 0)] cas (FAILED) node 4" in tab.inner_text(".thread[data-thread='1'] .last")
    shot = tmp_path / "lost-cas.png"
    tab.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
    assert errors == [] and browser.requests == []


def test_play_steps_on_by_itself_until_a_key_stops_it(browser: Browser, tmp_path: Path) -> None:
    trace = viewer.from_schedule("d3-m3-corrected:a1@0+f0+a3@0,a0@2+f0,a0@3:a14b14c7b4a4")
    page = viewer.write(trace, tmp_path / "overlap.html")
    tab, errors = open_page(browser, page)
    tab.keyboard.press("p")
    tab.wait_for_function("document.getElementById('slider').value >= 2", timeout=10_000)
    tab.keyboard.press("p")
    stopped = tab.inner_text("#position")
    tab.wait_for_timeout(1000)
    assert tab.inner_text("#position") == stopped != "step 0 / 43"
    # The explorer's overlap names its blocks: ringed from the breaking step on.
    tab.keyboard.press("End")
    assert "Violated here: overlap: thread 0 got block 1 while thread 2 holds block 11" in tab.inner_text(
        "#violation"
    )
    ringed = tab.eval_on_selector_all(".node.clash", "els => els.map(e => e.dataset.node)")
    assert sorted(ringed) == ["1", "11"]
    assert errors == [] and browser.requests == []
