"""What every module shares for HTTP: who is calling (``web.auth``), the one error shape
(``web.problems``, RFC 9457), the base of every domain error (``web.errors``) and small API
helpers (``web.api``). It knows no module and never imports ``config``.
"""
