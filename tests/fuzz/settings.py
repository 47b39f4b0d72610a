"""The fuzzed shop's settings: Quire's own, with a fast password hash (as tests/conftest.py uses) and no rate limits.

A deliberately slow hash protects real passwords; under the fuzzer it only spent the stage's time
(a second of CPU per sign-in, registration or password change). The rate limits would answer the
fuzzer's hundreds of requests a minute from one address with 429 and hide what the operations do;
they have tests of their own (tests/web/test_throttling.py).
"""

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
THROTTLE_ENABLED = False
