"""An auditor's session in a real browser (Debian's headless Chromium driven by Selenium): log
in, filter the audit list, open a row, export CSV, and find no control that changes anything."""

import csv
import io
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from django.contrib.auth.models import User
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.utils import timezone
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from audit.models import ActionAudit
from tests import factories

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Headless, and nothing that reaches the network or needs a GPU, a sandbox or a big /dev/shm.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct-horse-battery-1"


class AuditorInABrowserTests(StaticLiveServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for program in (CHROMIUM, CHROMEDRIVER):
            assert Path(program).exists(), f"{program} missing: run `make test` (installs it)"
        cls.downloads = Path(tempfile.mkdtemp(prefix="downloads-"))
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_experimental_option("prefs", {"download.default_directory": str(cls.downloads)})
        cls.browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        shutil.rmtree(cls.downloads, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        self.browser.get(f"{self.live_server_url}/admin/login/")
        self.browser.delete_all_cookies()
        ws_a = factories.make_workspace("ws-a")
        ws_b = factories.make_workspace("ws-b")
        job_a, job_b = factories.make_job(ws_a), factories.make_job(ws_b)
        self.denied = factories.make_audit(
            job_a,
            status="denied",
            reason="action_not_allowed",
            arguments={"to": ["=evil@example.com"], "subject": "<script>alert(1)</script>"},
        )
        self.sent = factories.make_audit(job_a)
        self.other = factories.make_audit(job_b, status="denied", reason="action_not_allowed")
        self.denied_task = factories.make_audit(job_a, action="task.create", status="denied")
        self.denied_long_ago = factories.make_audit(
            job_a, status="denied", created_at=timezone.now() - timedelta(days=10)
        )

    def log_in(self, username: str) -> None:
        self.browser.get(f"{self.live_server_url}/admin/login/")
        self.browser.find_element(By.NAME, "username").send_keys(username)
        self.browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        # Wait for the answer to the POST, or the next get() could race the session cookie.
        self.click_and_wait(self.browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))

    def click_and_wait(self, element) -> None:
        """Click a link or button and wait until the next page has replaced this one."""
        page = self.browser.find_element(By.TAG_NAME, "html")
        element.click()
        # Asked about a node while its document is being replaced, Chromium may answer "Node
        # with given id does not belong to the document" instead of "stale": ask again.
        wait = WebDriverWait(self.browser, 10, ignored_exceptions=[WebDriverException])
        wait.until(staleness_of(page))

    def listed_ids(self) -> set[int]:
        cells = self.browser.find_elements(By.CSS_SELECTOR, "#result_list tbody th a")
        return {int(cell.text) for cell in cells}

    def click_filter(self, query: str) -> None:
        link = self.browser.find_element(By.CSS_SELECTOR, f'#changelist-filter a[href*="{query}"]')
        self.click_and_wait(link)

    def no_controls_that_change(self) -> None:
        # Inside the page's content: the navigation sidebar offers other models' add links.
        for selector in ("a.addlink", "select[name=action]", "input[name=_save]", "a.deletelink"):
            assert not self.browser.find_elements(By.CSS_SELECTOR, f"#content {selector}"), selector
        assert self.browser.find_elements(By.CSS_SELECTOR, "#content"), "positive control"

    def test_an_auditor_filters_opens_and_exports_and_can_change_nothing(self):
        User.objects.create_superuser("auditor", "auditor@example.com", PASSWORD)
        self.log_in("auditor")
        self.browser.get(f"{self.live_server_url}/admin/audit/actionaudit/")
        assert len(self.listed_ids()) == 5

        # Every gmail.send denied last week in ws-a.
        self.click_filter("status__exact=denied")
        assert self.denied.pk in self.listed_ids() and self.other.pk in self.listed_ids()
        self.click_filter("workspace__id__exact=ws-a")
        assert self.other.pk not in self.listed_ids()
        self.click_filter("action=gmail.send")
        assert self.listed_ids() == {self.denied.pk, self.denied_long_ago.pk}
        self.click_and_wait(self.browser.find_element(By.LINK_TEXT, "Past 7 days"))
        assert self.listed_ids() == {self.denied.pk}
        self.no_controls_that_change()

        export_url = self.browser.find_element(By.CSS_SELECTOR, "a.export-csv")
        export_url.click()
        rows = self.wait_for_download()
        assert [int(row["id"]) for row in rows] == [self.denied.pk]
        assert rows[0]["recipients"] == "'=evil@example.com"

        self.click_and_wait(self.browser.find_element(By.LINK_TEXT, str(self.denied.pk)))
        assert f"/admin/audit/actionaudit/{self.denied.pk}/change/" in self.browser.current_url
        arguments = self.browser.find_element(By.CSS_SELECTOR, ".field-arguments_pretty pre")
        assert '"subject": "<script>alert(1)</script>"' in arguments.text  # shown, not run
        self.no_controls_that_change()
        assert ActionAudit.objects.get(pk=self.denied.pk).status == "denied"

    def wait_for_download(self) -> list[dict]:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            done = list(self.downloads.glob("*.csv"))
            if done:
                return list(csv.DictReader(io.StringIO(done[0].read_text())))
            time.sleep(0.1)
        raise AssertionError(f"no CSV downloaded: {list(self.downloads.iterdir())}")

    def test_a_user_who_is_not_staff_is_refused(self):
        User.objects.create_user("visitor", "visitor@example.com", PASSWORD)
        self.log_in("visitor")
        assert "staff account" in self.browser.find_element(By.CSS_SELECTOR, ".errornote").text
        self.browser.get(f"{self.live_server_url}/admin/audit/actionaudit/")
        assert "/admin/login/" in self.browser.current_url
        assert not self.browser.find_elements(By.ID, "result_list")
        # Positive control: the same steps as staff reach the list.
        User.objects.filter(username="visitor").update(is_staff=True, is_superuser=True)
        self.log_in("visitor")
        self.browser.get(f"{self.live_server_url}/admin/audit/actionaudit/")
        assert self.browser.find_elements(By.ID, "result_list")
