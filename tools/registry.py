"""Recommender models by name, as the CLI and the evaluation harness refer to them."""

from __future__ import annotations

import importlib
from typing import Any

from core.errors import ConfigError
from tools.base import Recommender

# name -> "module:Class"; imported lazily so that listing names costs nothing.
MODELS: dict[str, str] = {
    "random": "tools.popularity:RandomRecommender",
    "pop": "tools.popularity:PopularityRecommender",
    "itemknn": "tools.itemknn:ItemKNN",
    "ease": "tools.ease:EASE",
    "default": "tools.default:DefaultRecommender",
}


def create(name: str, **params: Any) -> Recommender:
    """A new, unfitted model called `name` (see `MODELS`), built with `params`."""
    target = MODELS.get(name)
    if target is None:
        known = ", ".join(MODELS)
        raise ConfigError(f"unknown model {name!r}; known models: {known}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    model: Recommender = cls(**params)
    return model
