"""One typed API over LLM providers: OpenAI, Anthropic, Gemini, Vertex AI, xAI, HuggingFace, Ollama
(and any OpenAI-compatible server)::

    import aixpy.llm as llm

    model = llm.new("anthropic:claude-sonnet-4-5")        # or "gpt-4o", "llama3.1:8b", an AgentConfig...
    reply = model.chat("Hello", system="Be brief.")
    print(reply.text, reply.usage, reply.cost_usd)

    with model.stream("Tell me a story") as s:            # async: ``async with model.astream(...)``
        for event in s:
            print(event.text, end="")
    print(s.response.cost_usd)                              # usage and cost on streams too

Layers: provider-neutral types (:mod:`aixpy.llm.types`), pure wire codecs (:mod:`aixpy.llm.codecs`),
thin providers (:mod:`aixpy.llm.providers`), policies as wrappers (:mod:`aixpy.llm.policies`: retry,
cascade fallback), a per-call :class:`Deadline`, prices (:mod:`aixpy.llm.pricing`) and in-memory
models for tests (:mod:`aixpy.llm.testing`). Every name below is imported on first use, so
``import aixpy.llm`` costs almost nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aixpy._lazy import attach

if TYPE_CHECKING:
    from aixpy.llm._new import new
    from aixpy.llm.model import AsyncChatStream, Capabilities, ChatModel, ChatStream, StreamInterruptedError
    from aixpy.llm.policies import FallbackModel, InstrumentedModel, RetryModel, RetryPolicy
    from aixpy.llm.pricing import PRICES_AS_OF, Cost, Price, cost_of, price_for, register_price
    from aixpy.llm.registry import ProviderSettings, detect_provider, provider_names, register
    from aixpy.llm.testing import FunctionModel, TestModel
    from aixpy.llm.types import (
        AssistantMessage,
        ChatRequest,
        ChatResponse,
        ImagePart,
        Message,
        ResponseFormat,
        StreamEvent,
        SystemMessage,
        TextPart,
        ToolCall,
        ToolMessage,
        ToolSpec,
        Usage,
        UserMessage,
        fold_stream,
        tool_from_function,
    )
    from aixpy.policy.deadline import Clock, Deadline, DeadlineExceededError, ManualClock, SystemClock

__all__ = [
    "PRICES_AS_OF",
    "AssistantMessage",
    "AsyncChatStream",
    "Capabilities",
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "ChatStream",
    "Clock",
    "Cost",
    "Deadline",
    "DeadlineExceededError",
    "FallbackModel",
    "FunctionModel",
    "ImagePart",
    "InstrumentedModel",
    "ManualClock",
    "Message",
    "Price",
    "ProviderSettings",
    "ResponseFormat",
    "RetryModel",
    "RetryPolicy",
    "StreamEvent",
    "StreamInterruptedError",
    "SystemClock",
    "SystemMessage",
    "TestModel",
    "TextPart",
    "ToolCall",
    "ToolMessage",
    "ToolSpec",
    "Usage",
    "UserMessage",
    "cost_of",
    "detect_provider",
    "fold_stream",
    "new",
    "price_for",
    "provider_names",
    "register",
    "register_price",
    "tool_from_function",
]

__getattr__, __dir__ = attach(__name__, attributes={
    ".types": ("AssistantMessage", "ChatRequest", "ChatResponse", "ImagePart", "Message", "ResponseFormat",
               "StreamEvent", "SystemMessage", "TextPart", "ToolCall", "ToolMessage", "ToolSpec", "Usage",
               "UserMessage", "fold_stream", "tool_from_function"),
    ".model": ("AsyncChatStream", "Capabilities", "ChatModel", "ChatStream", "StreamInterruptedError"),
    ".deadline": ("Clock", "Deadline", "DeadlineExceededError", "ManualClock", "SystemClock"),
    ".registry": ("ProviderSettings", "detect_provider", "provider_names", "register"),
    "._new": ("new",),
    ".policies": ("FallbackModel", "InstrumentedModel", "RetryModel", "RetryPolicy"),
    ".pricing": ("PRICES_AS_OF", "Cost", "Price", "cost_of", "price_for", "register_price"),
    ".testing": ("FunctionModel", "TestModel"),
})
