"""Run-time behaviour of a graph run, passed as LangGraph's `context_schema`.

Every field has a default, so a run (or LangGraph Studio's form) may override any of them.
An empty model name means the agent uses its offline brain.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents import prompts
from core.errors import ConfigError

PRESETS_DIR = Path(
    os.environ.get("AGENTREC_PRESETS_DIR") or Path(__file__).resolve().parent.parent / "configs"
)
"""Where preset files live: configs/ in the repository, or AGENTREC_PRESETS_DIR."""


@dataclass(kw_only=True)
class Context:
    catalog: str = "demo"
    """Name of the toolbox (catalog + fitted models) the agents work with."""
    memory: str = ""
    """Name of a registered `agents.memory.AgentMemory` (the service's Redis + Chroma);
    empty: the run remembers nothing between runs."""
    recall_k: int = 5
    """Long-term memories the User Analyst recalls per run."""

    model: str = ""
    """Chat model for every agent ("provider:model", e.g. "openai:gpt-4o-mini"); empty: offline."""
    manager_model: str = ""
    user_analyst_model: str = ""
    item_analyst_model: str = ""
    searcher_model: str = ""
    ranker_model: str = ""
    reflector_model: str = ""
    reply_model: str = ""
    """Chat model that writes the chat reply (streamed, then checked); empty: `model`, and
    the offline reply when that is empty too."""
    base_url: str = ""
    """An OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp); empty: the provider's own."""
    structured_output_method: str = "function_calling"
    """function_calling, json_schema or json_mode: local servers differ in what they support
    (json_schema goes through OpenAI's strict mode; function_calling works most widely)."""
    llm_timeout_s: float = 20.0
    llm_max_retries: int = 2

    max_steps: int = 12
    """Most Manager decisions in one run."""
    max_reflections: int = 1
    """Most Reflector critiques sent back to the Ranker."""
    top_k: int = 10
    """Items returned when the request does not say."""
    pool_size: int = 100
    """Candidates the Searcher puts on the blackboard."""
    diversity: float = 0.0
    """0 keeps the relevance order; up to 1 trades relevance for variety (MMR)."""

    manager_prompt: str = prompts.MANAGER_PROMPT
    user_analyst_prompt: str = prompts.USER_ANALYST_PROMPT
    item_analyst_prompt: str = prompts.ITEM_ANALYST_PROMPT
    searcher_prompt: str = prompts.SEARCHER_PROMPT
    ranker_prompt: str = prompts.RANKER_PROMPT
    reflector_prompt: str = prompts.REFLECTOR_PROMPT
    reply_prompt: str = prompts.REPLY_PROMPT

    def model_for(self, agent: str) -> str:
        """The chat model of `agent` ("" for the offline brain); "Reply" is the chat reply's
        writer."""
        specific = {
            "Manager": self.manager_model,
            "UserAnalyst": self.user_analyst_model,
            "ItemAnalyst": self.item_analyst_model,
            "Searcher": self.searcher_model,
            "Ranker": self.ranker_model,
            "Reflector": self.reflector_model,
            "Reply": self.reply_model,
        }.get(agent, "")
        return specific or self.model

    def uses_llm(self) -> bool:
        """Whether any agent, or the chat reply, has an LLM brain."""
        agents = ("Manager", "UserAnalyst", "ItemAnalyst", "Searcher", "Ranker", "Reflector")
        return any(self.model_for(agent) for agent in (*agents, "Reply"))

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> Context:
        """A context from a preset file (a name in configs/, or a path), then `overrides`."""
        path = Path(preset)
        if not path.suffix:
            path = PRESETS_DIR / f"{preset}.toml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.toml")))
            raise ConfigError(f"no preset {preset!r}; known presets: {known}")
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8")).get("context", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"{path}: unknown context field(s) {', '.join(unknown)}")
        try:
            return cls(**{**values, **overrides})
        except TypeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
