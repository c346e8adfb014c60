"""Install test plugins as real distributions (a ``.dist-info`` with entry points) on a path."""

from __future__ import annotations

from pathlib import Path


def write_distribution(folder: Path, name: str, entry_points: dict[str, str], version: str = "1.0") -> Path:
    """Create ``<name>-<version>.dist-info`` in ``folder`` declaring ``portal`` entry points."""
    dist_info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    lines = "\n".join(f"{key} = {value}" for key, value in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[portal]\n{lines}\n", encoding="utf-8")
    return dist_info
