"""The suite's additions to Locust's web UI as a person sees them, in a real Chromium."""

from __future__ import annotations

import time
from pathlib import Path

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from web_runs import web_ui_process

from reference_server.process import start_server_process

WAIT_SECONDS = 20.0


def button(browser, label: str):
    """The button showing ``label``."""
    return next(item for item in browser.find_elements(By.TAG_NAME, "button") if item.text.strip().upper() == label)


def replace_text(browser, name: str, text: str) -> None:
    """Type ``text`` into the form field ``name`` in place of what it holds."""
    field = browser.find_element(By.NAME, name)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE, text)


def strip_text(browser) -> str:
    """What the audit strip at the bottom of the page says ('' while hidden)."""
    strips = browser.find_elements(By.ID, "grpc-audit-strip")
    return strips[0].text if strips and strips[0].is_displayed() else ""


def test_the_audit_tab_and_strip_show_progress_then_the_verdict_by_themselves(browser, tmp_path):
    # Paced writes and a slow, steady store: the backlog at STOP takes seconds to store, in small batches, so the
    # audit is seen settling (never standing still for --audit-settle) before its verdict, on any machine.
    with start_server_process("--store-rate", "10", "--flush-batch", "5", "--flush-period", "0.2") as server, \
            web_ui_process(tmp_path, f"grpc://{server.target}", "--audit-settle", "3", "--target-rps", "40",
                           locustfile="locustfiles/single.py") as web:  # fmt: skip
        browser.get(f"{web.url}/")
        replace_text(browser, "userCount", "3")
        replace_text(browser, "spawnRate", "3")
        button(browser, "START").click()
        # React re-renders while the page polls: an element found a moment ago may be gone; look again.
        wait = WebDriverWait(browser, WAIT_SECONDS, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,))  # fmt: skip
        tabs = wait.until(lambda page: [tab.text.upper() for tab in page.find_elements(By.CSS_SELECTOR, "[role=tab]")]
                          if len(page.find_elements(By.CSS_SELECTOR, "[role=tab]")) > 3 else None)  # fmt: skip
        assert tabs.count("LOGS") == 1 and "LOGS PER RPC" in tabs and "DELIVERY AUDIT" in tabs, tabs
        next(tab for tab in browser.find_elements(By.CSS_SELECTOR, "[role=tab]") if tab.text.upper() ==
             "DELIVERY AUDIT").click()  # fmt: skip
        assert "tab=grpc-audit" in browser.current_url
        time.sleep(1.5)
        button(browser, "STOP").click()
        settling = wait.until(lambda page: strip_text(page) if "RUNNING: settling" in strip_text(page) else None)
        assert "acknowledged logs stored after" in settling
        wait.until(lambda page: "Delivery audit OK" in strip_text(page))
        verdict = wait.until(lambda page: next((cell.text for cell in page.find_elements(By.TAG_NAME, "td")
                                                if cell.text.startswith("Delivery audit OK")), None))  # fmt: skip
        assert "were stored" in verdict
        first_row = browser.find_element(By.CSS_SELECTOR, "tbody tr").text
        assert first_row.startswith("verdict Delivery audit OK"), first_row
        browser.save_screenshot(str(Path(tmp_path) / "audit-tab.png"))


def test_a_host_change_that_would_carry_credentials_is_refused_on_the_form(browser, tmp_path):
    with start_server_process("--flush-period", "0.1") as server, \
            web_ui_process(tmp_path, f"grpc://{server.target}", "--grpc-metadata", "tenant=blue") as web:  # fmt: skip
        browser.get(f"{web.url}/")
        replace_text(browser, "host", "grpc://127.0.0.1:1")
        button(browser, "START").click()
        alert = WebDriverWait(browser, WAIT_SECONDS).until(
            lambda page: next((item.text for item in page.find_elements(By.CSS_SELECTOR, "[role=alert]")), None)
        )
        assert "--host cannot be changed to 'grpc://127.0.0.1:1'" in alert
        assert server.stats()["calls"] == {}, "no call went anywhere"


def test_a_refused_option_is_shown_on_the_form_and_no_user_spawns(browser, tmp_path):
    with start_server_process("--flush-period", "0.1") as server, \
            web_ui_process(tmp_path, f"grpc://{server.target}", locustfile="locustfiles/single.py") as web:  # fmt: skip
        browser.get(f"{web.url}/")
        wait = WebDriverWait(browser, WAIT_SECONDS)
        # The suite's options are in the form's "Custom parameters" section, folded until opened.
        wait.until(lambda page: page.find_elements(By.XPATH, "//*[contains(text(), 'Custom parameters')]"))
        if not any(field.is_displayed() for field in browser.find_elements(By.NAME, "arrivalRate")):
            next(item for item in browser.find_elements(By.XPATH, "//*[contains(text(), 'Custom parameters')]")
                 if item.is_displayed()).click()  # fmt: skip
        wait.until(lambda page: any(field.is_displayed() for field in page.find_elements(By.NAME, "arrivalRate")))
        replace_text(browser, "arrivalRate", "abc")
        button(browser, "START").click()
        alert = wait.until(
            lambda page: next((item.text for item in page.find_elements(By.CSS_SELECTOR, "[role=alert]")), None)
        )
        assert "--arrival-rate='abc' is not valid; accepted: calls per second R > 0" in alert
        assert web.get("stats/requests")["state"] == "ready", "the test did not start"
        assert server.stats()["calls"] == {}, "no user spawned, no call went anywhere"


def test_a_target_that_does_not_answer_is_refused_on_the_form_and_no_test_starts(browser, tmp_path):
    dead = "grpc://127.0.0.1:1"
    with web_ui_process(tmp_path, dead, locustfile="locustfiles/single.py") as web:
        browser.get(f"{web.url}/")
        button(browser, "START").click()
        alert = WebDriverWait(browser, WAIT_SECONDS).until(
            lambda page: next((item.text for item in page.find_elements(By.CSS_SELECTOR, "[role=alert]")), None)
        )
        assert f"target {dead} is not serving the log service: UNAVAILABLE" in alert, alert
        assert web.get("stats/requests")["state"] == "ready", "the test did not start"
