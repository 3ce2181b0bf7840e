"""The LLM resource through real litellm: the offline author and a local OpenAI-compatible server."""

import json

import pytest
from dagster import AssetExecutionContext, DynamicPartitionsDefinition, asset, materialize
from pydantic import BaseModel

from resources.dagster_resources import LLMResource
from resources.llm import LLMCallError, LLMClient, LLMSettings, FaultConfig, image_part, input_block, offline_role
from tests.llm_server import serving


class Sum(BaseModel):
    total: int
    words: list[str]


@offline_role("test.sum")
def _sum_handler(request):
    data = request.input
    return json.dumps({"total": sum(data["numbers"]), "words": sorted(data.get("words", []))})


def _messages(numbers, words=()):
    return [
        {"role": "system", "content": "You add numbers."},
        {"role": "user", "content": "Add these.\n" + input_block({"numbers": numbers, "words": list(words)})},
    ]


def _client(datasets_dir, **kw):
    settings = LLMSettings(backoff_s=0.01, backoff_max_s=0.05, **kw)
    return LLMClient(settings, asset="test_asset", partition="p1")


def _trace_lines(datasets_dir):
    files = list((datasets_dir / "traces" / "llm").rglob("*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_offline_call_parses_and_second_call_is_cache_hit(datasets_dir):
    client = _client(datasets_dir)
    assert client.settings.model == "offline/author"
    first = client.complete(role="test.sum", messages=_messages([1, 2, 3], ["b", "a"]), schema=Sum, prompt_version="v1")
    assert isinstance(first.value, Sum)
    assert first.value.total == 6 and first.value.words == ["a", "b"]
    assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    assert not first.usage.cache_hit

    again = _client(datasets_dir).complete(role="test.sum", messages=_messages([1, 2, 3], ["b", "a"]), schema=Sum, prompt_version="v1")
    assert again.usage.cache_hit
    assert again.usage.prompt_tokens == 0 and again.usage.completion_tokens == 0
    assert again.value == first.value

    # Anything that changes the answer changes the key: prompt version, inputs.
    other = _client(datasets_dir).complete(role="test.sum", messages=_messages([1, 2, 3], ["b", "a"]), schema=Sum, prompt_version="v2")
    assert not other.usage.cache_hit
    outcomes = [r["outcome"] for r in _trace_lines(datasets_dir)]
    assert outcomes.count("cache_hit") == 1 and outcomes.count("ok") == 2


def test_image_parts_enter_cache_key_by_hash(datasets_dir):
    def msgs(png):
        m = _messages([4])
        m[1] = {"role": "user", "content": [{"type": "text", "text": m[1]["content"]}, image_part(png)]}
        return m

    c = _client(datasets_dir)
    a = c.complete(role="test.sum", messages=msgs(b"\x89PNG-one"), schema=Sum, prompt_version="v1")
    b = c.complete(role="test.sum", messages=msgs(b"\x89PNG-two"), schema=Sum, prompt_version="v1")
    a2 = c.complete(role="test.sum", messages=msgs(b"\x89PNG-one"), schema=Sum, prompt_version="v1")
    assert (a.usage.cache_hit, b.usage.cache_hit, a2.usage.cache_hit) == (False, False, True)
    # Traces carry no inline image data.
    assert "base64" not in "".join(json.dumps(r) for r in _trace_lines(datasets_dir))


def test_injected_provider_faults_are_retried_and_succeed(datasets_dir):
    faults = FaultConfig(seed=11, timeout=0.4, rate_limit=0.4, malformed=0.3)
    client = _client(datasets_dir, faults=faults, max_retries=12, max_parse_attempts=6)
    for n in range(8):
        r = client.complete(role="test.sum", messages=_messages([n, n]), schema=Sum, prompt_version="v1")
        assert r.value.total == 2 * n
    outcomes = [r["outcome"] for r in _trace_lines(datasets_dir)]
    assert "provider_error" in outcomes, "some timeouts / rate limits should have been injected"
    assert "parse_error" in outcomes, "some malformed replies should have been injected"
    errors = " ".join(r["error"] or "" for r in _trace_lines(datasets_dir))
    assert "Timeout" in errors and "RateLimitError" in errors


def test_faults_are_reproducible_from_seed(datasets_dir, tmp_path):
    def run(sub):
        c = LLMClient(LLMSettings(backoff_s=0.0, max_retries=20, faults=FaultConfig(seed=5, timeout=0.5),
                                  cache_dir=str(tmp_path / sub / "c"), traces_dir=str(tmp_path / sub / "t")),
                      asset="a", partition="p")
        return [c.complete(role="test.sum", messages=_messages([i]), schema=Sum, prompt_version="v1").usage.attempts
                for i in range(6)]

    assert run("one") == run("two")


def test_permanent_fault_gives_clear_error_naming_agent_and_partition(datasets_dir):
    client = _client(datasets_dir, faults=FaultConfig(rate_limit=1.0), max_retries=2)
    with pytest.raises(LLMCallError) as err:
        client.complete(role="test.sum", messages=_messages([1]), schema=Sum, prompt_version="v1")
    text = str(err.value)
    assert "test.sum" in text and "p1" in text and "test_asset" in text and "3 attempts" in text

    always_malformed = _client(datasets_dir, faults=FaultConfig(malformed=1.0), max_parse_attempts=2)
    with pytest.raises(LLMCallError, match=r"'test.sum'.*partition p1.*no valid Sum after 2 replies"):
        always_malformed.complete(role="test.sum", messages=_messages([2]), schema=Sum, prompt_version="v1")


def test_unknown_role_or_handler_bug_is_a_clear_error_not_retried(datasets_dir):
    client = _client(datasets_dir)
    with pytest.raises(LLMCallError, match="no handler for agent role 'nobody.home'"):
        client.complete(role="nobody.home", messages=_messages([1]), schema=Sum, prompt_version="v1")
    with pytest.raises(LLMCallError, match="non-retryable.*handler for role 'test.sum' failed: KeyError"):
        client.complete(role="test.sum", messages=[{"role": "user", "content": input_block({"nums": [1]})}],
                        schema=Sum, prompt_version="v1")
    assert client.calls[-1].attempts == 1


# -- the hosted path, against a local OpenAI-compatible server ---------------------------------

SECRET = "sk-test-DO-NOT-LEAK-1234567890abcdef"


def _sum_reply(body: dict) -> str:
    user = body["messages"][-1]["content"]
    numbers = json.loads(user.split("```json input\n", 1)[1].rsplit("\n```", 1)[0])["numbers"]
    return json.dumps({"total": sum(numbers), "words": []})


@pytest.fixture
def openai_server():
    with serving(_sum_reply) as (base, handler):
        yield base, handler


def test_hosted_path_through_litellm_against_local_server(datasets_dir, openai_server, monkeypatch):
    base, handler = openai_server
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    handler.fail_first = 1  # one 503 first: retried
    client = _client(datasets_dir, model="openai/gpt-4o-mini", api_base=base)
    r = client.complete(role="test.sum", messages=_messages([20, 22]), schema=Sum, prompt_version="v1")
    assert r.value.total == 42
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (123, 17)
    assert r.usage.attempts == 2
    assert r.usage.cost_usd is not None and r.usage.cost_usd > 0  # litellm knows gpt-4o-mini's price
    assert handler.seen[-1]["auth"] == f"Bearer {SECRET}"  # the key went to the provider, from the env
    assert handler.seen[-1]["path"].endswith("/chat/completions")

    ok = [t for t in _trace_lines(datasets_dir) if t["outcome"] == "ok"]
    assert len(ok) == 1
    assert ok[0]["prompt_tokens"] == 123 and ok[0]["completion_tokens"] == 17
    assert ok[0]["model"] == "openai/gpt-4o-mini" and ok[0]["role"] == "test.sum"
    assert ok[0]["partition"] == "p1" and ok[0]["asset"] == "test_asset"

    again = _client(datasets_dir, model="openai/gpt-4o-mini", api_base=base).complete(
        role="test.sum", messages=_messages([20, 22]), schema=Sum, prompt_version="v1")
    assert again.usage.cache_hit and len(handler.seen) == 2


def test_no_api_key_in_traces_or_logs(datasets_dir, openai_server, monkeypatch, tmp_path):
    base, handler = openai_server
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    handler.fail_first = 99  # every attempt fails: errors are traced and raised
    client = _client(datasets_dir, model="openai/gpt-4o-mini", api_base=base, max_retries=1)
    with pytest.raises(LLMCallError) as err:
        client.complete(role="test.sum", messages=_messages([1]), schema=Sum, prompt_version="v1")
    assert SECRET not in str(err.value)
    handler.fail_first = 0
    client.complete(role="test.sum", messages=_messages([2]), schema=Sum, prompt_version="v1")

    for f in datasets_dir.rglob("*"):
        if f.is_file():
            assert SECRET not in f.read_text(errors="replace"), f


class _Config(BaseModel):
    pass


def test_resource_in_real_materialize_names_asset_and_partition(datasets_dir, tmp_path):
    parts = DynamicPartitionsDefinition(name="things")

    @asset(partitions_def=parts)
    def summed(context: AssetExecutionContext, llm: LLMResource) -> int:
        client = llm.client_for(context)
        r = client.complete(role="test.sum", messages=_messages([int(context.partition_key)] * 2), schema=Sum,
                            prompt_version="v1")
        context.add_output_metadata(client.usage_totals())
        return r.value.total

    from dagster import DagsterInstance

    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("things", ["21"])
        result = materialize([summed], partition_key="21", instance=instance,
                             resources={"llm": LLMResource(backoff_s=0.0)})
        assert result.success
        assert result.output_for_node("summed") == 42
        md = result.asset_materializations_for_node("summed")[0].metadata
        assert md["llm_calls"].value == 1 and md["llm_prompt_tokens"].value > 0
    traces = _trace_lines(datasets_dir)
    assert traces[-1]["asset"] == "summed" and traces[-1]["partition"] == "21"
