"""The operator web page in Debian's Chromium, driven the way a person uses it.

`OperatorPage` wraps one Playwright page: it collects console errors, records every value each job's
progress bar and the connection pill take (inside the page, with a MutationObserver installed before
anything happens, so no value is missed between two polls of the test), and saves screenshots.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Locator, Page

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("FERRY_TEST_ARTIFACTS", REPO / "test-artifacts")) / "e2e"
FINAL_STATES = ("succeeded", "failed", "canceled")

# Installed in every document before the page's own script runs.
RECORDER = """
(() => {
  const bars = {};        // job id -> every distinct aria-valuenow of its card's bar, in order
  const lines = {};       // job id -> every distinct status line of its card, in order
  const transport = [];   // every text the connection pill showed, in order
  const record = () => {
    for (const card of document.querySelectorAll('.job-card')) {
      const job = card.dataset.job;
      const bar = card.querySelector('[role="progressbar"]');
      if (!job || !bar) continue;
      const values = (bars[job] ??= []);
      const value = Number(bar.getAttribute('aria-valuenow'));
      if (values.at(-1) !== value) values.push(value);
      const said = (lines[job] ??= []);
      const line = card.querySelector('.stats')?.textContent;
      if (line && said.at(-1) !== line) said.push(line);
    }
    const pill = document.getElementById('transport')?.textContent;
    if (pill && transport.at(-1) !== pill) transport.push(pill);
  };
  window.__ferryRecord = { bars, lines, transport };
  new MutationObserver(record).observe(document, {
    subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['aria-valuenow'],
  });
})();
"""


class OperatorPage:
    def __init__(self, page: Page):
        self.page = page
        self.console_errors: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        page.on("pageerror", lambda error: self.console_errors.append(f"page error: {error}"))
        page.add_init_script(RECORDER)

    # -- what a person does ----------------------------------------------------------------------

    def sign_in(self, url: str, token: str) -> None:
        self.page.goto(url)
        self.page.get_by_label("Access token").fill(token)
        self.page.get_by_label("Access token").press("Enter")
        self.page.get_by_role("heading", name="New import").wait_for()
        self.page.locator("#transport").filter(
            has_text=re.compile("^(Live|Polling · websocket unavailable)$")
        ).wait_for(timeout=15_000)

    def upload(self, archive: Path) -> None:
        """Choose the file with the picker; the upload starts at once and must finish."""
        self.page.locator("#file").set_input_files(archive)
        self.page.get_by_text(re.compile(r"^Uploaded \d")).wait_for(timeout=60_000)

    def start_import(self, host: str, image: str) -> Locator:
        """Tick the host, name the image, press Import; returns the job's card."""
        self.page.get_by_label(host, exact=True).check()
        box = self.page.get_by_label("Image", exact=True)
        box.fill(image)
        self.page.get_by_role("button", name="Import", exact=True).click()
        card = self.card(image, host)
        card.wait_for()
        return card

    # -- what the page shows ---------------------------------------------------------------------

    def card(self, image: str, host: str) -> Locator:
        return self.page.locator(".job-card", has=self.page.get_by_text(f"{image} on {host}", exact=True))

    def job_id(self, card: Locator) -> str:
        return card.get_attribute("data-job")

    def wait_final(self, card: Locator, timeout_s: float = 90) -> str:
        handle = card.element_handle()
        self.page.wait_for_function(
            "([el, states]) => states.includes(el.dataset.state)",
            arg=[handle, list(FINAL_STATES)],
            timeout=timeout_s * 1000,
        )
        return card.get_attribute("data-state")

    def wait_percent(self, card: Locator, minimum: float, timeout_s: float = 60) -> float:
        bar = card.get_by_role("progressbar").element_handle()
        self.page.wait_for_function(
            "([bar, min]) => Number(bar.getAttribute('aria-valuenow')) >= min",
            arg=[bar, minimum],
            timeout=timeout_s * 1000,
        )
        return float(card.get_by_role("progressbar").get_attribute("aria-valuenow"))

    def bar_values(self, job_id: str) -> list[float]:
        """Every value the job's bar showed, in order (recorded in the page as they changed)."""
        return self.page.evaluate("id => window.__ferryRecord.bars[id] ?? []", job_id)

    def status_lines(self, job_id: str) -> list[str]:
        """Every status line the job's card showed, in order (recorded in the page as they changed)."""
        return self.page.evaluate("id => window.__ferryRecord.lines[id] ?? []", job_id)

    def transport_history(self) -> list[str]:
        return self.page.evaluate("() => window.__ferryRecord.transport")

    def transport(self) -> str:
        return self.page.locator("#transport").text_content()

    def catalog_table(self, host: str) -> Locator:
        return self.page.get_by_role("table", name=f"Images on {host}")

    def horizontal_overflow(self) -> list[str]:
        """Why the page scrolls sideways at the current viewport: empty when it does not (the document
        is no wider than the window and no element sticks out past it)."""
        return self.page.evaluate("""() => {
            const root = document.documentElement;
            const problems = root.scrollWidth > root.clientWidth ? [`scrollWidth ${root.scrollWidth} > clientWidth ${root.clientWidth}`] : [];
            for (const el of document.querySelectorAll('body *')) {
                if (!el.getClientRects().length || el.getBoundingClientRect().right <= root.clientWidth + 0.5) continue;
                problems.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} ends at ${Math.round(el.getBoundingClientRect().right)}`);
                if (problems.length > 5) break;
            }
            return problems;
        }""")

    def reload(self) -> None:
        """Reload the tab: the session (token, tracked jobs) lives in sessionStorage and survives it."""
        self.page.reload()
        self.page.get_by_role("heading", name="New import").wait_for()
        self.page.locator("#transport").filter(
            has_text=re.compile("^(Live|Polling · websocket unavailable)$")
        ).wait_for(timeout=15_000)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=path, full_page=True, animations="disabled")
        return path

    def unexpected_errors(self, *allowed: str) -> list[str]:
        """Console errors other than those matching one of the `allowed` patterns."""
        return [e for e in self.console_errors if not any(re.search(pattern, e) for pattern in allowed)]
