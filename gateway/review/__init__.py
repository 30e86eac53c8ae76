"""The web review console: held mail reviewed in a browser, within each reviewer's scope.

`app.py` builds the Starlette application (pages in `pages.py`, sign-in in `signin.py` and
`oidc.py`, the security headers and CSRF in `security.py`); `server.py` serves it with uvicorn.
It reads and acts on the same store as the daemon, and releases through the same code as
`gateway quarantine release`.
"""
