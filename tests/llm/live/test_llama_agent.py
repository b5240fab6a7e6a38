"""One agent step with a tool against the real ``llama-server`` (OpenAI and Anthropic wire), built from
config as a user would write it. Shape only: the tiny base model may or may not call the tool, and its
words are not judged; what is asserted is that the run's steps, tool calls and results are well formed
and paired, and that usage is summed over the steps."""

from __future__ import annotations

import textwrap

import pytest

from aixpy.agents import Agent, RunResult
from aixpy.config import load_config_str
from aixpy.errors import AgentError

from ._server import LlamaServer

pytestmark = pytest.mark.live


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_agent_step_with_a_tool(llama_server: LlamaServer, provider: str) -> None:
    endpoint = llama_server.openai_url if provider == "openai" else llama_server.base_url
    cfg = load_config_str(textwrap.dedent(f"""\
        agents:
          - name: live
            role: react
            model: {llama_server.model}
            provider: {provider}
            api_key: ${{LLAMA_KEY}}
            endpoint: {endpoint}
            prompt: Use the lookup tool to answer.
            max_tokens: 48
            timeout: 120s
            max_iterations: 2
            tools: [tests.agents._tools:lookup]
        """), "live.yaml", env={"LLAMA_KEY": llama_server.api_key})
    with Agent.from_config(cfg.agents[0], config=cfg) as agent:
        assert not agent.uses_react  # both wires take the native tool-calling path
        try:
            result: RunResult = agent.run("What is the weather in Paris?")
        except AgentError as e:  # a limit (2 model requests, or the tool's error budget) stopped it
            result = e.result
    assert isinstance(result, RunResult)
    assert 1 <= result.requests <= 2
    for step in result.steps:
        assert step.response.provider == provider
        assert step.response.usage is not None
        assert [r.call.id for r in step.tool_results] == [c.id for c in step.tool_calls if c.name == "lookup"] or \
            all(r.is_error for r in step.tool_results)
        for r in step.tool_results:
            assert r.is_error or r.content.startswith("sunny in ")
    assert result.usage.input_tokens == sum(s.response.usage.input_tokens for s in result.steps
                                            if s.response.usage is not None)
