"""What every benchmark writes: the machine it ran on and its figures as JSON."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def write_json(path: Path, data: Any) -> None:
    """Write `data` as indented JSON (creating the folder) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"written to {path}")


ML100K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-100k"
"""MovieLens 100K beside the repository (never copied into it)."""


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """p50, p99, mean and max of durations given in seconds, in milliseconds."""
    import numpy as np

    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "max_ms": round(float(ms.max()), 3),
    }
