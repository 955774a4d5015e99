"""Ready pipeline specs: ``vtzoo run <name>`` or ``Pipeline.from_yaml(catalog_path(<name>))``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def catalog_names() -> list[str]:
    root = Path(str(resources.files(__name__)))
    return sorted(p.stem for p in root.glob("*.yaml"))


def catalog_path(name: str) -> Path:
    """The path of a catalog spec by name (``text_video_index``), or ``name`` itself if it is a file."""
    if Path(name).is_file():
        return Path(name)
    candidate = Path(str(resources.files(__name__))) / f"{name.replace('-', '_')}.yaml"
    if candidate.is_file():
        return candidate
    from vtzoo.pipelines.spec import SpecError

    raise SpecError(name, "<file>", f"is neither a spec file nor a catalog pipeline (catalog: {', '.join(catalog_names())})")
