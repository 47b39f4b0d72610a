"""The fuzzed shop's settings: Quire's own, with a fast password hash (as tests/conftest.py uses).

A deliberately slow hash protects real passwords; under the fuzzer it only spent the stage's time
(a second of CPU per sign-in, registration or password change).
"""

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
