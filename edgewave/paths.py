"""Where the shipped non-Python trees live: edgewave/<name> in a wheel, <repo>/<name> in a checkout."""

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def package_dir(name: str) -> Path:
    """templates/ or firmware/."""
    return next((p for p in (_HERE / name, _HERE.parent / name) if p.is_dir()), _HERE.parent / name)
