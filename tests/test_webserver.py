"""Both code locations load in a real dagster-webserver (GraphQL) and render in Chromium."""

import pytest

from tests.webserver import CHROMIUM, CHROMIUM_ARGS, graphql, running_webserver

LOCATIONS_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name
    locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    with running_webserver(home, home / "webserver.log") as url:
        yield url


def test_both_code_locations_load_in_the_webserver(webserver):
    entries = graphql(webserver, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
    loaded = {e["name"]: e["locationOrLoadError"]["__typename"] for e in entries}
    assert loaded == {"benchgen_assets": "RepositoryLocation", "teacher_assets": "RepositoryLocation"}, entries


@pytest.mark.browser
def test_ui_lists_both_code_locations_in_chromium(webserver, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{webserver}/locations")
        for name in ("benchgen_assets", "teacher_assets"):
            page.get_by_role("link", name=name).wait_for(timeout=60_000)
        page.screenshot(path=str(tmp_path / "code_locations.png"))
        browser.close()
    assert (tmp_path / "code_locations.png").stat().st_size > 10_000
