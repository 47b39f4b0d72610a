"""Create the RS256 key pair for customer JWTs in /keys once (compose only; k8s uses Secrets)."""

import os
from pathlib import Path

from config.keys import generate_key_pair

keys = Path(os.environ.get("KEYS_DIR", "/keys"))
private, public = keys / "jwt-private.pem", keys / "jwt-public.pem"
if not public.exists():
    private_pem, public_pem = generate_key_pair()
    private.write_text(private_pem)
    public.write_text(public_pem)
    # The services run as the image's `quire` user: let it read them (the volume is this app's only).
    os.chmod(private, 0o644)
    print(f"created {private} and {public}")
else:
    print(f"{public} exists: kept")
