"""The admin at 1366x768 in a real browser (headless Chromium): the audit list, the approvals
queue, an action's page and a job's page fit the width with no sideways scroll (a screenshot of
each is saved in the test's tmp dir), and the auditor's errand of issue 16 takes a few clicks:
find every held gmail.send of a workspace, read one as a message, approve it with one click,
and the trail still says why it was held and who approved it."""

import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from audit.models import ActionAudit
from tests import factories
from tests.actions.test_approvals import propose
from tests.audit.test_admin_browser import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS

pytestmark = pytest.mark.django_db(transaction=True)

Status = ActionAudit.Status
WIDTH, HEIGHT = 1366, 768
PASSWORD = "correct-horse-battery-2"
LONG = "x" * 180  # one unbroken token, as model output often is (URLs, base64, ids)


@pytest.fixture(scope="module")
def browser():
    for program in (CHROMIUM, CHROMEDRIVER):
        assert Path(program).exists(), f"{program} missing: run `make test` (installs it)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--window-size={WIDTH},{HEIGHT}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_window_size(WIDTH, HEIGHT)
    yield driver
    driver.quit()


class Session:
    """One person's browser session against the live server."""

    def __init__(self, browser, base_url: str, tmp_path: Path) -> None:
        self.browser = browser
        self.base_url = base_url
        self.tmp_path = tmp_path

    def log_in(self, username: str) -> None:
        self.browser.get(f"{self.base_url}/admin/login/")
        self.browser.delete_all_cookies()
        self.browser.get(f"{self.base_url}/admin/login/")
        self.browser.find_element(By.NAME, "username").send_keys(username)
        self.browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        self.click(self.browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))

    def open(self, path: str) -> None:
        self.browser.get(f"{self.base_url}{path}")

    def click(self, element) -> None:
        page = self.browser.find_element(By.TAG_NAME, "html")
        element.click()
        wait = WebDriverWait(self.browser, 10, ignored_exceptions=[WebDriverException])
        wait.until(staleness_of(page))

    def fits(self, name: str) -> None:
        """No sideways scroll at 1366 px; the screenshot is kept for a human to look at."""
        self.browser.save_screenshot(str(self.tmp_path / f"{name}.png"))
        width, inner = self.browser.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert inner <= WIDTH, inner  # positive control: the window is what we asked for
        assert width <= inner, f"{name}: page is {width}px wide in a {inner}px window"
        # Nor inside the page: Django wraps the list's table in a box that scrolls sideways.
        boxes = self.browser.execute_script(
            "return Array.from(document.querySelectorAll('.results, #content-main, fieldset'))"
            ".filter(e => e.scrollWidth > e.clientWidth + 1)"
            ".map(e => `${e.className || e.id}: ${e.scrollWidth} > ${e.clientWidth}`)"
        )
        assert boxes == [], f"{name}: sideways scroll inside {boxes}"

    def text(self, selector: str) -> str:
        return self.browser.find_element(By.CSS_SELECTOR, selector).text


@pytest.fixture
def session(browser, live_server, tmp_path) -> Session:
    return Session(browser, live_server.url, tmp_path)


def make_user(username: str, *permissions: str):
    user = factories.make_staff_user(username, *permissions)
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def busy_trail():
    """Two workspaces with long names, long recipients, long reasons, held and final rows."""
    ws = factories.make_workspace("workspace-with-a-rather-long-identifier-" + "a" * 20)
    ws.approval_required = ["gmail.send"]
    ws.recipient_domains = ["acme.com"]
    ws.save()
    mail = {
        "to": [f"{'someone.with.a.long.name' * 2}@acme.com"],
        "cc": ["outsider@far-away-domain-with-a-long-name.example"],
        "subject": "Quarterly figures " + LONG,
        "body": "Dear all,\nplease find " + LONG + "\nRegards",
    }
    held = [propose(ws, arguments=mail, action="gmail_send") for _ in range(3)]
    job = factories.make_job(
        ws,
        client_request_id="request-" + "r" * 100,
        transcript=[
            {"role": "user", "content": "Write to " + LONG},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "function": {"name": "gmail_send", "arguments": json.dumps(mail)}}
                ],
            },
        ],
    )
    for index in range(30):
        factories.make_audit(
            job,
            call_key=f"1.{index}",
            status=Status.DENIED,
            reason="recipient_outside_allowed_domains",
            arguments=mail,
        )
    return {"workspace": ws, "held": held, "job": job}


def test_the_admin_fits_1366_px_without_sideways_scroll(session, busy_trail):
    make_user("vera", *factories.view_permissions())
    session.log_in("vera")

    session.open("/admin/audit/actionaudit/")
    assert session.browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    session.fits("audit-list")

    session.open("/admin/audit/pendingapproval/")
    assert len(session.browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 3
    session.fits("approvals-queue")

    row = busy_trail["held"][0]
    session.open(f"/admin/audit/actionaudit/{row.pk}/change/")
    assert "Quarterly figures" in session.text(".message")
    session.fits("action-detail")

    session.open(f"/admin/orchestrator/job/{busy_trail['job'].pk}/change/")
    assert "gmail_send" in session.text(".field-transcript_pretty")
    session.fits("job-detail")

    for name in ("audit-list", "approvals-queue", "action-detail", "job-detail"):
        assert (session.tmp_path / f"{name}.png").stat().st_size > 10_000, name


def test_an_auditor_finds_reads_and_approves_a_held_mail_and_the_trail_keeps_why(session):
    ws_a = factories.make_workspace("ws-a")
    ws_a.approval_required = ["gmail.send", "task.create"]
    ws_a.recipient_domains = ["acme.com"]
    ws_a.save()
    ws_b = factories.make_workspace("ws-b")
    ws_b.approval_required = ["gmail.send"]
    ws_b.save()
    outside = {
        "to": ["ann@acme.com"],
        "cc": ["eve@elsewhere.example"],
        "subject": "Contract draft",
        "body": "Hello Eve,\nthe draft is attached.\nBest, Ann",
    }
    inside = {"to": ["bob@acme.com"], "subject": "Lunch", "body": "Noon?"}
    held = {
        propose(ws_a, arguments=outside, action="gmail_send").pk,
        propose(ws_a, arguments=inside, action="gmail_send").pk,
    }
    propose(ws_a, arguments={"title": "Not a mail"})  # held, but a task
    propose(ws_b, arguments=inside, action="gmail_send")  # held, another workspace
    get_user_model().objects.create_user("bob", password=PASSWORD)
    call_command("grant_admin_role", "reviewer", "bob")

    session.log_in("bob")
    session.click(session.browser.find_element(By.PARTIAL_LINK_TEXT, "Pending approvals (4)"))
    session.click(
        session.browser.find_element(By.CSS_SELECTOR, '#changelist-filter a[href*="ws-a"]')
    )
    session.click(
        session.browser.find_element(
            By.CSS_SELECTOR, '#changelist-filter a[href*="action=gmail.send"]'
        )
    )
    links = session.browser.find_elements(By.CSS_SELECTOR, "#result_list td.field-short_id a")
    assert {int(link.text) for link in links} == held
    session.fits("queue-ws-a-gmail")

    (row,) = ActionAudit.objects.filter(pk__in=held, arguments__subject="Contract draft")
    session.click(session.browser.find_element(By.LINK_TEXT, str(row.pk)))
    assert session.text(".message-body") == "Hello Eve,\nthe draft is attached.\nBest, Ann"
    assert "eve@elsewhere.example" in session.text(".message-headers")
    assert "recipient_outside_allowed_domains" in session.text("#hold-reason")
    session.fits("review-page")

    session.click(session.browser.find_element(By.CSS_SELECTOR, "button.approve"))

    assert f"/admin/audit/actionaudit/{row.pk}/change/" in session.browser.current_url
    assert "recipient_outside_allowed_domains" in session.text(".field-hold_reason")
    assert "admin:bob" in session.text(".field-decided_by")
    assert "Approve" in session.text(".field-decision")
    stored = ActionAudit.objects.get(pk=row.pk)
    assert (stored.status, stored.hold_reason, stored.decision, stored.decided_by) == (
        Status.EXECUTING,
        "recipient_outside_allowed_domains",
        "approve",
        "admin:bob",
    )
    session.fits("trail-after-approval")
