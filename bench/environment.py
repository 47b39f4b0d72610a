"""What every benchmark needs to run from a clean clone: the shared data, and production settings.

Benchmarks measure with production settings (``DEBUG=false``: no per-query debug log, JSON
logs), which refuse to start without a secret key and JWT keys. A clean clone has neither, so
:func:`production_settings` makes throwaway ones; keys set by the caller are used as they are.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
#: The data sets shared by the checkouts of this machine sit beside the repository (../shared/data).
SHARED_DATA = BASE_DIR.parent / "shared" / "data"
BOOKS_CSV = SHARED_DATA / "goodbooks-10k" / "books.csv"


def production_settings(directory: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """``DEBUG=false`` with a secret key and, unless ``environ`` has them, a JWT key pair under ``directory``.

    Returns only the variables to set; pass the result to a child's environment or ``os.environ``.
    """
    import sys

    environ = os.environ if environ is None else environ
    settings = {"DEBUG": "false", "SECRET_KEY": environ.get("SECRET_KEY") or uuid.uuid4().hex * 2}
    if not (environ.get("JWT_PUBLIC_KEY_FILE") or environ.get("JWT_PUBLIC_KEY")):
        sys.path.insert(0, str(BASE_DIR))
        from config.keys import generate_key_pair

        directory.mkdir(parents=True, exist_ok=True)
        for name, pem in zip(("JWT_PRIVATE_KEY_FILE", "JWT_PUBLIC_KEY_FILE"), generate_key_pair(), strict=True):
            path = directory / f"{name.lower()}.pem"
            path.write_text(pem)
            path.chmod(0o600)
            settings[name] = str(path)
    return settings
