"""The explore notebook in a real browser: JupyterLab on 127.0.0.1 with a token, headless Debian
Chromium driven by Playwright. Runs all cells in the smoke profile, drags a loss-weight slider,
presses retrain and checks that a new grid and new numbers appear and that no widget error shows,
also after saving and reloading the page. Screenshots go to ``tests/artifacts/`` (ignored by git).

Skipped, with the reason, when Chromium, Playwright or JupyterLab is missing. The browser is the
system's (``apt-get install chromium``); Playwright never downloads one here.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from netinv_core.notebooks import NOTEBOOK_DIR

pytestmark = [pytest.mark.notebooks, pytest.mark.browser]

CHROMIUM = next((p for p in (os.environ.get("NETINV_CHROMIUM"), "/usr/bin/chromium",
                             shutil.which("chromium"), shutil.which("chromium-browser")) if p
                 and Path(p).exists()), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
RUN_TIMEOUT_MS = int(os.environ.get("NETINV_BROWSER_TIMEOUT_S", 400)) * 1000  # a busy 2-core machine: kernel start, classifier, first generator


def _skip_reason():
    if CHROMIUM is None:
        return "no Chromium installed (Debian: apt-get install -y chromium; or set NETINV_CHROMIUM)"
    try:  # e.g. Ubuntu's chromium is a snap stub that does not run in a container
        subprocess.run([CHROMIUM, "--version"], capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as e:
        return f"{CHROMIUM} does not run here ({type(e).__name__}); install Debian's chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing (pip install -e '.[dev]')"
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "JupyterLab is missing (pip install -e '.[notebooks]')"
    return None


if _skip_reason():
    pytest.skip(_skip_reason(), allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 (random free port, a token) serving a folder with the
    explore notebook, its profile set to smoke; yields (base url, token, folder)."""
    import papermill

    root = tmp_path / "lab"
    root.mkdir()
    # papermill only writes the parameters cell here (prepare_only): nothing is executed
    papermill.execute_notebook(str(NOTEBOOK_DIR / "explore_inversion.ipynb"),
                               str(root / "explore_inversion.ipynb"),
                               parameters={"profile": "smoke"}, prepare_only=True,
                               progress_bar=False)
    port, token = _free_port(), uuid.uuid4().hex
    home = tmp_path / "jupyter"
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH")) if p),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("MPLBACKEND", None)  # the kernel uses the inline backend, as for a user
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n"
                                + (tmp_path / "jupyterlab.log").read_text()[-3000:])
                time.sleep(1)
        yield base, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _dismiss_dialogs(page):
    """A fresh JupyterLab may ask for the kernel and about news; answer both."""
    from playwright.sync_api import TimeoutError as Timeout
    for name in ("Select Kernel", "No"):
        try:
            page.get_by_role("button", name=name, exact=True).click(timeout=15_000)
        except Timeout:
            pass


def _run_all(page):
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def _grid_src(page) -> str:
    # the last run's grid: the last image of the results row (the preview and compare come first)
    return page.locator(".netinv-explorer-grid img, img.netinv-explorer-grid").last.get_attribute("src")


def test_explore_notebook_in_chromium(lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base, token, root = lab
    ARTIFACTS.mkdir(exist_ok=True)
    console = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=FLAGS, viewport={"width": 1400, "height": 1000})
        try:
            page = ctx.new_page()
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.goto(f"{base}/lab/tree/explore_inversion.ipynb?token={token}")
            page.locator(".jp-Notebook").first.wait_for(timeout=120_000)
            _dismiss_dialogs(page)
            expect(page.get_by_role("button", name="Python 3 (ipykernel) | Idle")).to_be_visible(
                timeout=180_000)
            _run_all(page)

            status = page.locator(".netinv-explorer-status")
            expect(status).to_contain_text("done: #1", timeout=RUN_TIMEOUT_MS)
            retrain = page.get_by_role("button", name="retrain generator")
            expect(retrain).to_be_enabled()
            table = page.locator("table.netinv-metrics")
            expect(table).to_contain_text("inversion accuracy")
            first_grid, first_table = _grid_src(page), table.inner_text()
            assert first_grid
            page.locator(".netinv-explorer").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "explore_browser_first.png"), full_page=True)

            # drag the cosine slider's handle to the left
            gamma = page.locator(".widget-hslider", has_text="cosine (gamma)")
            before = gamma.locator(".widget-readout").inner_text()
            handle = gamma.locator(".noUi-handle")
            box = handle.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] - 60, box["y"] + box["height"] / 2, steps=8)
            page.mouse.up()
            expect(gamma.locator(".widget-readout")).not_to_have_text(before, timeout=10_000)
            moved = gamma.locator(".widget-readout").inner_text()

            retrain.click()
            expect(page.get_by_role("button", name="training...")).to_be_disabled(timeout=30_000)
            expect(page.get_by_role("button", name="stop")).to_be_enabled()
            assert _grid_src(page) == first_grid  # the old grid stays while the new one trains
            expect(status).to_contain_text("done: #2", timeout=RUN_TIMEOUT_MS)
            expect(table).to_contain_text("#2")
            assert _grid_src(page) != first_grid
            assert table.inner_text() != first_table
            expect(page.locator("table.netinv-history")).to_contain_text(f"{float(moved):g}"[:3])
            page.screenshot(path=str(ARTIFACTS / "explore_browser.png"), full_page=True)
            shutil.copy(ARTIFACTS / "explore_browser.png", tmp_path / "explore_browser.png")
            text = page.locator("body").inner_text()
            assert "Error displaying widget" not in text and "model not found" not in text

            # save, reload: every widget output must still render (the kernel is alive)
            page.keyboard.press("Control+s")
            page.wait_for_timeout(2000)
            page.reload()
            page.locator(".jp-Notebook").first.wait_for(timeout=120_000)
            _dismiss_dialogs(page)
            expect(page.locator("table.netinv-metrics")).to_contain_text("#2", timeout=60_000)
            page.wait_for_timeout(3000)
            page.locator(".netinv-explorer").first.scroll_into_view_if_needed()
            text = page.locator("body").inner_text()
            assert "Error displaying widget" not in text and "model not found" not in text
            page.screenshot(path=str(ARTIFACTS / "explore_browser_reloaded.png"), full_page=True)
        finally:
            ctx.close()
    widget_errors = [t for kind, t in console if kind == "error" and "widget" in t.lower()]
    assert not widget_errors, widget_errors
