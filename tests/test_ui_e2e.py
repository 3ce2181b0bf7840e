"""End to end through the Dagster UI: `dagster dev` (webserver + daemon) on 127.0.0.1, driven by
Debian's headless Chromium like a user would: open an asset group's graph, open the Launchpad
for its chain, pick the partition, launch; then see the runs succeed, the blocking checks passed
and the scenario preview image on the asset pages.

Both code locations run each partition's chain in one process (``in_process_executor``), which
keeps a chain launched from the UI under a minute here.
Screenshots land in the test's tmp folder and in ``test-output/ui/`` (git-ignored).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from resources.paths import PROJECT_ROOT
from tests.webserver import CHROMIUM, CHROMIUM_ARGS, graphql, running_dagster_dev

EPISODE = "pick_cup_place_tray"
SCREENSHOTS = PROJECT_ROOT / "test-output" / "ui"
RUN_TIMEOUT_S = 240
RUN_STATUS = """query ($id: ID!) { runOrError(runId: $id) { __typename ... on Run {
    status stepStats { stepKey status } } } }"""
RUN_FAILURES = """query ($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
    __typename ... on ExecutionStepFailureEvent { stepKey error { message } }
    ... on AssetCheckEvaluationEvent { evaluation { checkName success description } } } } } }"""


@pytest.fixture
def dagster_instance(tmp_path, datasets_dir, monkeypatch):
    """A temp DAGSTER_HOME with the project's instance settings (queued runs → the daemon launches
    them), one scenario request (tier 1 peg_in_hole, 1 variant) and one shipped OXE episode, both
    added as dynamic partitions."""
    from dagster import DagsterInstance

    from benchgen_assets.defs.partitions import SCENARIOS
    from benchgen_assets.manager import make_requests
    from benchgen_assets.pipeline import save_request
    from teacher_assets.defs.assets import episodes_partitions

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    shutil.copytree(PROJECT_ROOT / "datasets" / "oxe" / EPISODE, datasets_dir / "oxe" / EPISODE)
    [request] = make_requests(tier=1, family="peg_in_hole", prompt=None, count=1, seed=0, variants=1)
    save_request(request)
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the project's dagster.yaml reads it
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(SCENARIOS, [request.scenario_id])
        instance.add_dynamic_partitions(episodes_partitions.name, [EPISODE])
    return home, datasets_dir, request.scenario_id


class Browser:
    """One Chromium page on the webserver; every screenshot goes to tmp and to test-output/ui/."""

    def __init__(self, page, url: str, out: Path):
        self.page, self.url, self.out = page, url, out
        self.shots: list[Path] = []
        # Dagster's "Join the community" dialog pops up once per fresh browser profile, at any time.
        page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())

    def goto(self, path: str) -> None:
        self.page.goto(self.url + path)

    def shot(self, name: str) -> Path:
        path = self.out / f"{len(self.shots) + 1:02d}_{name}.png"
        self.page.screenshot(path=str(path))
        shutil.copyfile(path, SCREENSHOTS / path.name)
        self.shots.append(path)
        return path

    def launch_chain_from_launchpad(self, location: str, group: str, last_asset: str, partition: str) -> str:
        """Asset group graph → filter to ``last_asset`` and its upstream → Materialize ▾ → Open launchpad
        → partition → Materialize. Returns the run id (the UI opens the run)."""
        page = self.page
        self.goto(f"/locations/{location}/asset-groups/{group}")
        page.locator(".CodeMirror").first.click()  # the asset selection box
        page.keyboard.type(f'+key:"{last_asset}"')
        page.keyboard.press("Enter")
        materialize_all = page.get_by_role("button", name="Materialize all")
        materialize_all.wait_for()
        self.shot(f"{group}_graph")
        materialize_all.locator("xpath=../following-sibling::*").first.click()  # the ▾ next to it
        page.get_by_role("menuitem", name="Open launchpad").click()
        launchpad = page.get_by_role("dialog").filter(has_text="Launchpad")
        box = launchpad.get_by_placeholder("Partition")
        box.click()
        box.fill(partition)
        page.get_by_role("menuitem", name=partition).click()
        launchpad.get_by_text(f"partition: {partition}").wait_for()
        launchpad.get_by_text("No errors").wait_for()
        self.shot(f"{group}_launchpad")
        launchpad.get_by_role("button", name="Materialize").click()
        page.wait_for_url("**/runs/*", timeout=60_000)
        return page.url.rstrip("/").split("/runs/")[-1].split("?")[0]

    def open_checks(self, asset: str, detail: str) -> None:
        self.goto(f"/assets/{asset}?view=checks")
        self.page.get_by_text(detail, exact=True).first.click()
        self.page.get_by_text("Latest execution").wait_for()

    def check_in_list(self, check: str):
        """The entry of ``check`` in the asset's check list: its name and its latest status."""
        return self.page.get_by_text(check, exact=True).first.locator(
            "xpath=ancestor::*[contains(., 'Succeeded') or contains(., 'Failed') or contains(., 'Not evaluated')][1]")

    def open_run(self, run_id: str, partition: str) -> None:
        self.goto(f"/runs/{run_id}")
        self.page.get_by_text(f"partition: {partition}").wait_for()


def wait_for_run(url: str, run_id: str, timeout_s: float = RUN_TIMEOUT_S) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        run = graphql(url, RUN_STATUS, {"id": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return run["status"]
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {run['status']} after {timeout_s}s: {run['stepStats']}")
        time.sleep(2)


def run_failures(url: str, run_id: str) -> str:
    events = graphql(url, RUN_FAILURES, {"id": run_id})["logsForRun"]["events"]
    failed = [e for e in events if e.get("error") or (e.get("evaluation") and not e["evaluation"]["success"])]
    return json.dumps(failed, indent=1)[:4000]


@pytest.mark.browser
@pytest.mark.slow
def test_materialize_a_scenario_and_an_episode_from_the_ui(dagster_instance, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    home, datasets, scenario_id = dagster_instance
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    env = {"BENCHGEN_DATASETS": str(datasets), "BENCHGEN_EPISODES_DIR": str(datasets / "oxe"),
           "MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with running_dagster_dev(home, tmp_path / "dagster_dev.log", env) as url, sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = chromium.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        ui = Browser(page, url, tmp_path)
        try:
            # Both chains launched before waiting on either: they run side by side under the queue.
            scenario_run = ui.launch_chain_from_launchpad("benchgen_assets", "scenario_generator",
                                                          "scenario_preview", scenario_id)
            episode_run = ui.launch_chain_from_launchpad("teacher_assets", "agentic_teacher", "bt_score", EPISODE)
            for run_id in (scenario_run, episode_run):
                status = wait_for_run(url, run_id)
                assert status == "SUCCESS", f"run {run_id} {status}: {run_failures(url, run_id)}"
            for run_id, partition in ((scenario_run, scenario_id), (episode_run, EPISODE)):
                ui.open_run(run_id, partition)
                expect(page.get_by_text("Success", exact=True).first).to_be_visible()
                ui.shot(f"run_{partition}")

            # The four blocking validation checks on validated_scenario, passed for this partition.
            ui.open_checks("validated_scenario", "stability_check")
            for check in ("compilation_check", "geometry_check", "mjcf_schema_check", "stability_check"):
                expect(ui.check_in_list(check)).to_have_text(re.compile(rf"^(?:{check}\s*)+Succeeded$"))
            expect(page.get_by_text("Passed", exact=True)).to_be_visible()
            expect(page.get_by_text(scenario_id, exact=True).first).to_be_visible()
            ui.shot("validated_scenario_checks")
            # Lineage: from the validated scenario back to the script, plan and request behind it.
            ui.goto("/assets/validated_scenario?view=lineage&lineageScope=upstream")
            for upstream in ("scenario_script", "scenario_plan", "generation_request"):
                expect(page.get_by_text(upstream, exact=True).first).to_be_visible()
            expect(page.get_by_text(re.compile(r"^Loading"))).to_have_count(0)  # the nodes' live status
            ui.shot("validated_scenario_lineage")

            # The preview: a markdown table of PNGs inlined as data URIs, shown when opened.
            ui.goto(f"/assets/scenario_preview?partition={scenario_id}")
            previews = page.get_by_role("row").filter(has_text="previews")
            previews.get_by_text("[Show Markdown]").click()
            image = page.get_by_role("dialog").get_by_role("img", name="v00")
            expect(image).to_be_visible()
            assert image.evaluate("img => img.complete && img.naturalWidth") > 100, "the preview PNG did not decode"
            assert (image.get_attribute("src") or "").startswith("data:image/png;base64,")
            ui.shot("scenario_preview")

            # The teacher's blocking checks on bt_xml; the episode accepted and scored.
            ui.open_checks("bt_xml", "pal_compliance_check")
            for check in ("bt_schema_check", "btcpp_load_check", "executability_check", "pal_compliance_check"):
                expect(ui.check_in_list(check)).to_have_text(re.compile(rf"^(?:{check}\s*)+Succeeded$"))
            expect(page.get_by_text("Passed", exact=True)).to_be_visible()
            expect(page.get_by_text(EPISODE, exact=True).first).to_be_visible()
            ui.shot("bt_xml_checks")
            ui.goto(f"/assets/bt_score?partition={EPISODE}")
            expect(page.get_by_role("row").filter(has_text="episode_status")).to_contain_text("accepted")
            ui.shot("bt_score")
        except Exception:
            ui.shot("failure")
            raise
        finally:
            chromium.close()
    assert all(p.stat().st_size > 10_000 for p in ui.shots), ui.shots
