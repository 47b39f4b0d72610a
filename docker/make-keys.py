"""Create the RS256 key pair for customer JWTs in KEYS_DIR (/keys) once (compose only; k8s uses Secrets).

Run as ``python docker/make-keys.py`` from the image's /app: Python then puts this file's directory,
not /app, first on the path, so the project root is added before ``config`` is imported.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.keys import generate_key_pair

# The image's `quire` user (docker/Dockerfile) is the only reader the keys need.
QUIRE_UID = QUIRE_GID = 10001

keys = Path(os.environ.get("KEYS_DIR", "/keys"))
private, public = keys / "jwt-private.pem", keys / "jwt-public.pem"
if public.exists() and private.exists():
    print(f"{public} exists: kept")
    sys.exit(0)
keys.mkdir(parents=True, exist_ok=True)
private_pem, public_pem = generate_key_pair()
private.write_text(private_pem)
public.write_text(public_pem)
os.chmod(private, 0o600)
os.chmod(public, 0o644)
if os.geteuid() == 0:  # the one-shot runs as root to write the volume; the services run as quire
    for path in (private, public):
        os.chown(path, QUIRE_UID, QUIRE_GID)
print(f"created {private} and {public}")
