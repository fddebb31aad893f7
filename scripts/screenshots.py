"""Write a screenshot of every dashboard page to docs/screenshots/ (``make screenshots``).

Runs the lifecycle demo into a temporary home (or uses ``--home`` if it already holds one), serves
it with authentication on, logs in through the form in Debian's chromium driven by Playwright, and
saves a full-page PNG of each page. The page list comes from the store, so every URL points at
real data.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def pages(client) -> list[tuple[str, str]]:
    """(file stem, path) of every page to capture, chosen from what the store holds."""
    from shipyard.demo import EXPERIMENT, MODEL_NAME

    found = [("overview", "/"), ("runs", "/runs")]
    experiment = client.get_experiment(EXPERIMENT)
    runs = client.search_runs(experiments=[experiment.id], order_by=["metrics.roc_auc DESC"], max_results=3).runs
    if runs:
        found.append(("run", f"/runs/{runs[0].id}"))
        found.append(("runs-compare", "/runs/compare?ids=" + ",".join(r.id for r in runs)))
    found += [("models", "/models"), ("model", f"/models/{MODEL_NAME}")]
    champion = client.get_version_by_alias(MODEL_NAME, "champion")
    found.append(("model-version", f"/models/{MODEL_NAME}/{champion.version}"))
    found.append(("datasets", "/datasets"))
    for dataset in client.list_datasets()[:1]:
        found.append(("dataset", f"/datasets/{dataset.name}"))
        found.append(("dataset-version", f"/datasets/{dataset.name}/1"))
    found.append(("pipelines", "/pipelines"))
    pipeline_runs = client.pipeline_runs()
    if pipeline_runs:
        found.append(("pipeline-run", f"/pipelines/{pipeline_runs[-1].id}"))
    found.append(("deployments", "/deployments"))
    for endpoint in client.list_endpoints()[:1]:
        found.append(("deployment", f"/deployments/{endpoint.name}"))
    found.append(("monitoring", "/monitoring"))
    for monitor in client.list_monitors()[:1]:
        found.append(("monitor", f"/monitoring/{monitor.name}"))
    found.append(("alerts", "/monitoring/alerts"))
    found += [("governance", "/governance"), ("audit", "/governance/audit"), ("policies", "/governance/policies")]
    found.append(("automations", "/automations"))
    found.append(("automation-rule", "/automations/closed-loop-retrain"))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="a Shipyard home that already holds the demo (default: run it afresh)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()

    import uvicorn
    from playwright.sync_api import sync_playwright
    from rich.console import Console

    from shipyard import Client
    from shipyard.api.app import create_app
    from shipyard.core.settings import Settings
    from shipyard.demo import run_demo
    from shipyard.governance.bootstrap import issue_admin_token

    scratch = None
    home = args.home
    if home is None:
        scratch = tempfile.mkdtemp(prefix="shipyard-screenshots-")
        home = str(Path(scratch) / "home")
        print(f"running the demo into {home} …")
        run_demo(home, console=Console(quiet=True))
    settings = Settings.resolve(home=home, remote_uri="")
    token = issue_admin_token(settings, name=f"screenshots-{int(time.time())}")
    client = Client("", home=home)
    wanted = pages(client)
    client.close()

    port = free_port()
    app = create_app(settings, require_auth=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as playwright:
            chromium = shutil.which("chromium") or "/usr/bin/chromium"
            browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.goto(base + "/login")
            page.screenshot(path=str(out / "login.png"))
            page.fill("#token", token)
            page.click("#login-submit")
            page.wait_for_load_state("networkidle")
            for stem, path in wanted:
                response = page.goto(base + path)
                page.wait_for_load_state("networkidle")
                status = response.status if response else "?"
                page.screenshot(path=str(out / f"{stem}.png"), full_page=True)
                print(f"{status}  {path:<60} → {out / (stem + '.png')}")
            browser.close()
    finally:
        server.should_exit = True
        app.state.services.close()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
