"""End to end through the Dagster UI: `dagster dev` (webserver + daemon) on 127.0.0.1, driven by
Debian's headless Chromium like a user would: open an asset group's graph, open the Launchpad
for its chain, pick the partition (and type run config), launch; then see the runs succeed, the
blocking checks passed and the scenario preview image on the asset pages; or, with a broken code
override, the failed check's reason and the lineage back to the script, plan and prompts.

Both code locations run each partition's chain in one process (``in_process_executor``), which
keeps a chain launched from the UI under a minute here.
Screenshots land in the test's tmp folder and in ``test-output/ui/`` (git-ignored).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from resources.paths import PROJECT_ROOT
from tests.webserver import CHROMIUM, CHROMIUM_ARGS, graphql, running_dagster_dev

EPISODE = "pick_cup_place_tray"
SCENARIO_CHECKS = ("compilation_check", "geometry_check", "mjcf_schema_check", "stability_check", "solvability_check")
SCREENSHOTS = PROJECT_ROOT / "test-output" / "ui"
RUN_TIMEOUT_S = 240
RUN_STATUS = """query ($id: ID!) { runOrError(runId: $id) { __typename ... on Run {
    status stepStats { stepKey status } } } }"""
RUN_FAILURES = """query ($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
    __typename ... on ExecutionStepFailureEvent { stepKey error { message } }
    ... on AssetCheckEvaluationEvent { evaluation { checkName success description } } } } } }"""


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory):
    """``dagster dev`` on a temp DAGSTER_HOME with the project's instance settings (queued runs →
    the daemon launches them), two scenario requests (tier 1 peg_in_hole, 1 variant: one to pass,
    one to break with a code override) and one shipped OXE episode, all added as dynamic partitions;
    and a headless Chromium. Yields (url, chromium, {"good"|"broken"|"episode": partition})."""
    from dagster import DagsterInstance
    from playwright.sync_api import sync_playwright

    from benchgen_assets.defs.partitions import SCENARIOS
    from benchgen_assets.manager import make_requests
    from benchgen_assets.pipeline import save_request
    from teacher_assets.defs.assets import episodes_partitions

    tmp = tmp_path_factory.mktemp("ui")
    home, datasets = tmp / "dagster_home", tmp / "datasets"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    shutil.copytree(PROJECT_ROOT / "datasets" / "oxe" / EPISODE, datasets / "oxe" / EPISODE)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCHGEN_DATASETS", str(datasets))
        mp.setenv("DAGSTER_HOME", str(home))  # the project's dagster.yaml reads it
        good, broken = make_requests(tier=1, family="peg_in_hole", prompt=None, count=2, seed=0, variants=1)
        for request in (good, broken):
            save_request(request)
        with DagsterInstance.get() as instance:
            instance.add_dynamic_partitions(SCENARIOS, [good.scenario_id, broken.scenario_id])
            instance.add_dynamic_partitions(episodes_partitions.name, [EPISODE])
    env = {"BENCHGEN_DATASETS": str(datasets), "BENCHGEN_EPISODES_DIR": str(datasets / "oxe"),
           "MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with running_dagster_dev(home, tmp / "dagster_dev.log", env) as url, sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield url, chromium, {"good": good.scenario_id, "broken": broken.scenario_id, "episode": EPISODE}
        finally:
            chromium.close()


@contextmanager
def browser_page(chromium, url: str, out: Path, prefix: str):
    """A fresh page; on any failure a last screenshot is taken before the error propagates."""
    from playwright.sync_api import expect

    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(60_000)
    expect.set_options(timeout=60_000)
    ui = Browser(page, url, out, prefix)
    try:
        yield ui
    except Exception:
        ui.shot("failure")
        raise
    finally:
        page.close()
    assert all(p.stat().st_size > 10_000 for p in ui.shots), ui.shots


class Browser:
    """One Chromium page on the webserver; every screenshot goes to tmp and to test-output/ui/."""

    def __init__(self, page, url: str, out: Path, prefix: str):
        self.page, self.url, self.out, self.prefix = page, url, out, prefix
        out.mkdir(parents=True, exist_ok=True)
        self.shots: list[Path] = []
        # Dagster's "Join the community" dialog pops up once per fresh browser profile, at any time.
        page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())

    def goto(self, path: str) -> None:
        self.page.goto(self.url + path)

    def shot(self, name: str) -> Path:
        path = self.out / f"{self.prefix}{len(self.shots) + 1:02d}_{name}.png"
        self.page.screenshot(path=str(path))
        shutil.copyfile(path, SCREENSHOTS / path.name)
        self.shots.append(path)
        return path

    def launch_chain_from_launchpad(self, location: str, group: str, last_asset: str, partition: str,
                                    config: str | None = None) -> str:
        """Asset group graph → filter to ``last_asset`` and its upstream → Materialize ▾ → Open launchpad
        → partition → (``config``: replace the config editor's YAML) → Materialize. Returns the run id
        (the UI opens the run)."""
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
        if config is not None:
            launchpad.locator(".CodeMirror").first.click()
            page.keyboard.press("Control+A")
            page.keyboard.insert_text(config)  # as a paste: no auto-indent of the typed lines
        launchpad.get_by_text("No errors").wait_for()
        self.shot(f"{group}_launchpad")
        launchpad.get_by_role("button", name="Materialize").click()
        page.wait_for_url("**/runs/*", timeout=60_000)
        return page.url.rstrip("/").split("/runs/")[-1].split("?")[0]

    def open_checks(self, asset: str, detail: str) -> None:
        self.goto(f"/assets/{asset}?view=checks")
        self.page.get_by_text(detail, exact=True).first.click()
        self.page.get_by_text("Latest execution").wait_for()

    def expect_checks(self, asset: str, statuses: dict[str, str], selected: str, partition: str) -> None:
        """The asset's Checks tab lists each check with its latest status ("Succeeded", "Failed");
        ``selected`` is opened, its latest execution for ``partition``."""
        from playwright.sync_api import expect

        self.open_checks(asset, selected)
        for check, status in statuses.items():
            entry = self.page.get_by_text(check, exact=True).first.locator(
                "xpath=ancestor::*[contains(., 'Succeeded') or contains(., 'Failed') or contains(., 'Not evaluated')][1]")
            expect(entry).to_have_text(re.compile(rf"^(?:{check}\s*)+{status}$"))
        expect(self.page.get_by_text(partition, exact=True).first).to_be_visible()

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
def test_materialize_a_scenario_and_an_episode_from_the_ui(dagster_ui, tmp_path):
    from playwright.sync_api import expect

    url, chromium, partitions = dagster_ui
    scenario_id = partitions["good"]
    with browser_page(chromium, url, tmp_path / "a", "a") as ui:
        page = ui.page
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
        ui.expect_checks("validated_scenario", dict.fromkeys(SCENARIO_CHECKS, "Succeeded"), "stability_check", scenario_id)
        expect(page.get_by_text("Passed", exact=True)).to_be_visible()
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
        ui.expect_checks("bt_xml", dict.fromkeys(("bt_schema_check", "btcpp_load_check", "executability_check",
                                                  "pal_compliance_check"), "Succeeded"), "pal_compliance_check", EPISODE)
        expect(page.get_by_text("Passed", exact=True)).to_be_visible()
        ui.shot("bt_xml_checks")
        ui.goto(f"/assets/bt_score?partition={EPISODE}")
        expect(page.get_by_role("row").filter(has_text="episode_status")).to_contain_text("accepted")
        ui.shot("bt_score")


# A block let go 30 cm above the table: it compiles, its geometry and MJCF are valid, and it is
# still falling when the stability check wants it at rest.
DROPPED_BLOCK = """\
from build123d import Align, Box, Pos
from benchgen_assets.scene import Part, Scene

BOTTOM = (Align.CENTER, Align.CENTER, Align.MIN)


def build(seed, scale):
    table = Box(200, 200, 10, align=BOTTOM)
    block = Pos(0, 0, 300) * Box(40, 40, 40, align=BOTTOM)
    return Scene(name="dropped_block", description="A block dropped from 30 cm.", parts=[
        Part("table", table, role="fixture"),
        Part("block", block, role="object", joint="free"),
    ])
"""


@pytest.mark.browser
@pytest.mark.slow
def test_a_failed_check_shows_its_reason_and_leads_back_to_script_plan_and_prompt(dagster_ui, tmp_path):
    """A code override typed into the Launchpad breaks the scene: the run fails on the blocking
    stability check, which says why and links the report and script; lineage leads from there to
    the script, the plan and the prompt files behind them. (Runs after the test above, whose check
    list assertions read the latest evaluation.)"""
    from playwright.sync_api import expect

    url, chromium, partitions = dagster_ui
    scenario_id = partitions["broken"]
    # What a user types: the module as a YAML block scalar.
    override = "ops:\n  scenario_script:\n    config:\n      code_override: |\n" + "".join(
        f"        {line}\n" if line else "\n" for line in DROPPED_BLOCK.splitlines())
    assert yaml.safe_load(override)["ops"]["scenario_script"]["config"]["code_override"] == DROPPED_BLOCK
    with browser_page(chromium, url, tmp_path / "b", "b") as ui:
        page = ui.page
        run_id = ui.launch_chain_from_launchpad("benchgen_assets", "scenario_generator", "scenario_preview",
                                                scenario_id, config=override)
        assert wait_for_run(url, run_id) == "FAILURE", run_failures(url, run_id)
        ui.open_run(run_id, scenario_id)
        expect(page.get_by_text("Failure", exact=True).first).to_be_visible()
        ui.shot("run_failed")

        # The failed check, its reason, and the links to the report and the script it ran.
        ui.expect_checks("validated_scenario", {**dict.fromkeys(SCENARIO_CHECKS, "Succeeded"), "stability_check": "Failed",
                                                 "solvability_check": "Failed"},  # not reached
                         "stability_check", scenario_id)
        reason = page.get_by_role("row").filter(has_text="first_error")
        expect(reason).to_contain_text(re.compile(r"v00: stability: still moving after 0\.2 s: \|qvel\| [\d.]+ > 0\.5"))
        expect(page.get_by_role("row").filter(has_text="failed_report")).to_contain_text(
            f"staging/{scenario_id}/v00/validation.json")
        expect(page.get_by_role("row").filter(has_text="script_origin")).to_contain_text("code_override")
        ui.shot("stability_check_failed")

        # The blocking check kept the preview from running: its planned materialization failed.
        ui.goto("/assets/scenario_preview")
        expect(page.get_by_text(re.compile(rf"Failed in\s*{run_id[:8]}")).first).to_be_visible()

        # Lineage from the checked asset: the script, the plan, the request and the prompt files.
        ui.goto("/assets/validated_scenario?view=lineage&lineageScope=upstream")
        page.get_by_role("button", name="All", exact=True).click()  # graph depth: all the way up
        for upstream in ("scenario_script", "scenario_plan", "generation_request",
                         "coder_prompt", "reviewer_prompt", "planner_prompt"):
            expect(page.get_by_text(upstream, exact=True).first).to_be_visible()
        expect(page.get_by_text(re.compile(r"^Loading"))).to_have_count(0)
        ui.shot("failed_lineage")

        # The script behind it, for this partition: the override, as the run used it.
        ui.goto(f"/assets/scenario_script?view=partitions&partition={scenario_id}")
        expect(page.get_by_role("row").filter(has_text=re.compile(r"^\s*source"))).to_contain_text("override")
        ui.shot("scenario_script_override")
        # And a prompt node: its file, version and text.
        ui.goto("/assets/coder_prompt")
        expect(page.get_by_text(re.compile(r"^coder@"))).to_be_visible()
        expect(page.get_by_text("benchgen_assets/authoring/prompts/coder.md").first).to_be_visible()
        ui.shot("coder_prompt")
